"""`make deploy-api`: the dry run prints every command and runs none; a real run (against a
stand-in gcloud that records its arguments and stdin) runs exactly those, the API key only on
stdin; the Cloud Run service is the body google-cloud-run's own types accept, and the flags say
what it says (IAM-only, the key from Secret Manager, the API's own account, 0 to 2 instances, the
image just built); the Cloud Build config is a valid Build; the Dockerfile, read without docker,
installs api/requirements.txt, copies what the API imports, runs `python -m api` on $PORT as a
non-root user. (A request without the key is refused: tests/api/test_auth.py.)"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from api.settings import Settings, SettingsError
from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "deploy_api.py"
PROJECT, BUCKET = "pool-test-project", "gs://pool-data-test"
ACCOUNT = f"pool-api@{PROJECT}.iam.gserviceaccount.com"
FLAGS = ["--project", PROJECT, "--bucket", BUCKET, "--tag", "abc123def456"]
IMAGE = f"us-central1-docker.pkg.dev/{PROJECT}/pool-api/pool-api:abc123def456"

# Each call appends {"argv", "stdin"} to $CALLS; every `describe` says "absent" (exit 1).
FAKE = r'''#!{python}
import json, os, sys
argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps({{"argv": argv, "stdin": stdin}}) + "\n")
if "describe" in argv:
    sys.exit(1)
print("ok")
'''


@pytest.fixture
def cloud_sdk(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(FAKE.format(python=sys.executable))
    (bin_dir / "gcloud").chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POOL_CLASSIFIER_", "POOL_API_"))},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(tmp_path / "calls.jsonl")}
    return env, tmp_path / "calls.jsonl"


def deploy(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=120, stdin=subprocess.DEVNULL)


def printed(stdout: str, prefix: str) -> list[str]:
    return [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]


def _flag(command: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"{name}=")]
    assert len(values) == 1, (name, command)
    return values[0]


def test_the_dry_run_prints_every_command_and_runs_none(cloud_sdk):
    env, calls = cloud_sdk
    result = deploy(["--dry-run", *FLAGS, "--invoker", "group:analysts@example.com"], env)
    assert result.returncode == 0, result.stderr
    assert not calls.exists()
    lines = printed(result.stdout, "would run: ")
    assert [shlex.split(line.split(" || ")[-1].split("   #")[0])[3:5] for line in lines] == [
        ["services", "enable"], ["artifacts", "repositories"], ["iam", "service-accounts"],
        ["storage", "managed-folders"], ["storage", "managed-folders"], ["storage", "managed-folders"],
        ["storage", "managed-folders"], ["secrets", "create"],
        ["secrets", "versions"], ["secrets", "add-iam-policy-binding"], ["builds", "submit"], ["run", "deploy"],
        ["run", "services"]]
    build = shlex.split(lines[10])
    run = shlex.split(lines[11])
    # The image deployed is the image built, tagged as asked, in the region of the gcp settings.
    assert _flag(build, "--substitutions") == f"_IMAGE={IMAGE}" and _flag(build, "--config") == "api/cloudbuild.yaml"
    assert _flag(run, "--image") == IMAGE and _flag(run, "--region") == "us-central1"
    assert "--no-allow-unauthenticated" in run and "--allow-unauthenticated" not in run
    assert "--invoker-iam-check" in run and "--no-invoker-iam-check" not in run
    assert _flag(run, "--set-secrets") == "POOL_API_KEY=pool-api-key:latest"
    assert _flag(run, "--service-account") == ACCOUNT
    assert (_flag(run, "--min-instances"), _flag(run, "--max-instances")) == ("0", "2")
    assert (_flag(run, "--cpu"), _flag(run, "--memory")) == ("1", "1Gi") and "--cpu-throttling" in run
    # The account may read serving/ and activity/recent/ (managed folders) and the key, nothing else.
    grants = [shlex.split(line) for line in lines if "add-iam-policy-binding" in line]
    assert [(g[6] if g[3] == "storage" else g[5], _flag(g, "--role")) for g in grants[:3]] == [
        (f"{BUCKET}/serving/", "roles/storage.objectViewer"), (f"{BUCKET}/activity/recent/", "roles/storage.objectViewer"),
        ("pool-api-key", "roles/secretmanager.secretAccessor")]
    assert all(_flag(g, "--member") == f"serviceAccount:{ACCOUNT}" for g in grants[:3])
    assert _flag(grants[3], "--member") == "group:analysts@example.com" and _flag(grants[3], "--role") == "roles/run.invoker"
    assert "# dry run: nothing was run" in result.stdout


def test_a_real_run_runs_exactly_the_printed_commands_and_sends_the_key_on_stdin_only(cloud_sdk):
    env, calls = cloud_sdk
    result = deploy(FLAGS, env)
    assert result.returncode == 0, result.stderr
    ran = [json.loads(line) for line in calls.read_text().splitlines()]
    expected = []
    for line in printed(result.stdout, "$ "):
        expected += [shlex.split(part.split("   #")[0]) for part in line.split(" || ")]
    assert [c["argv"] for c in ran] == expected  # every describe said "absent": each creation ran
    keyed = [c for c in ran if c["stdin"]]
    assert [c["argv"][3:6] for c in keyed] == [["secrets", "versions", "add"]]
    key = keyed[0]["stdin"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
    assert key not in result.stdout + result.stderr and not any(key in " ".join(c["argv"]) for c in ran)


def test_a_real_run_without_its_settings_runs_nothing_and_names_them(cloud_sdk):
    env, calls = cloud_sdk
    result = deploy(["--project", PROJECT], env)
    assert result.returncode == 2 and not calls.exists() and "missing --bucket" in result.stderr
    result = deploy([*FLAGS, "--max-instances", "100"], env)
    assert result.returncode == 2 and not calls.exists() and "--max-instances='100'" in result.stderr


def _values(**changes):
    from scripts import deploy_api

    values, missing = deploy_api.resolve(deploy_api.parse_args([*FLAGS, *sum(
        ([f"--{k.replace('_', '-')}", v] for k, v in changes.items()), [])]), placeholders=False)
    assert not missing and not deploy_api.problems(values)
    return values


def test_the_service_is_a_valid_cloud_run_v2_service_and_the_flags_say_what_it_says():
    from google.cloud import run_v2

    from scripts import deploy_api

    body = deploy_api.service_body(_values(max_instances="3"))
    service = run_v2.Service(body)  # unknown or mistyped fields raise here
    template, container = service.template, service.template.containers[0]
    assert service.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL and not service.invoker_iam_disabled
    assert (template.scaling.min_instance_count, template.scaling.max_instance_count) == (0, 3)
    assert template.service_account == ACCOUNT and container.image == IMAGE
    secret = next(e for e in container.env if e.name == "POOL_API_KEY").value_source.secret_key_ref
    assert (secret.secret, secret.version) == ("pool-api-key", "latest")
    assert container.ports[0].container_port == 8080 and container.resources.cpu_idle
    flags = deploy_api.deploy_flags(body)
    assert "--max-instances=3" in flags and "--min-instances=0" in flags
    env_flag = next(f for f in flags if f.startswith("--set-env-vars="))[len("--set-env-vars=^|^"):]
    plain = dict(item.split("=", 1) for item in env_flag.split("|"))
    assert plain == {e.name: e.value for e in container.env if e.value}
    # The environment the service starts with is the gcp target's: without the key it refuses to
    # start; with the secret's value it starts with it.
    with pytest.raises(SettingsError, match="POOL_API_KEY"):
        Settings.from_env(plain)
    settings = Settings.from_env({**plain, "POOL_API_KEY": "from-secret-manager", "PORT": "8080", "HOST": "0.0.0.0"})
    assert (settings.bucket, settings.api_key, settings.port, settings.poll_seconds) == (
        BUCKET, "from-secret-manager", 8080, 60.0)


def test_the_cloud_build_config_is_a_valid_build_of_api_dockerfile():
    from google.cloud.devtools import cloudbuild_v1

    config = yaml.safe_load((PROJECT_ROOT / "api" / "cloudbuild.yaml").read_text())
    build = cloudbuild_v1.Build(config)
    (step,) = build.steps
    assert step.name == "gcr.io/cloud-builders/docker" and "DOCKER_BUILDKIT=1" in step.env
    assert step.args[:5] == ["build", "--file", "api/Dockerfile", "--tag", "${_IMAGE}"] and step.args[-1] == "."
    assert list(build.images) == ["${_IMAGE}"]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_installs_the_api_set_copies_what_it_imports_and_runs_it_unprivileged():
    steps = _instructions(PROJECT_ROOT / "api" / "Dockerfile")
    assert steps[0] == ("FROM", "python:3.11-slim")
    copies = [tuple(args.split()) for kind, args in steps if kind == "COPY"]
    assert ("api/requirements.txt", "api/requirements.txt") in copies
    assert ("api", "api") in copies and ("plugins/pool_classifier", "plugins/pool_classifier") in copies
    runs = [args for kind, args in steps if kind == "RUN"]
    assert any(re.search(r"pip install --no-cache-dir -r api/requirements\.txt", r) for r in runs)
    pins = (PROJECT_ROOT / "api" / "requirements.txt").read_text()
    assert re.search(r"^fastapi==0\.163\.", pins, re.M) and re.search(r"^uvicorn==", pins, re.M)
    env = " ".join(args for kind, args in steps if kind == "ENV")
    assert "PYTHONPATH=/app/plugins:/app" in env and "HOST=0.0.0.0" in env and "PORT=8080" in env
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [i for i, (kind, _) in enumerate(steps) if kind == "USER"][-1] < [
        i for i, (kind, _) in enumerate(steps) if kind == "CMD"][-1]
    (cmd,) = [json.loads(args) for kind, args in steps if kind == "CMD"]  # exec form: signals reach python
    assert cmd == ["python", "-m", "api"]
    # `python -m api` listens on $PORT: the settings take it from the environment.
    assert Settings.from_env({"POOL_API_BUCKET": "gs://b", "PORT": "9123", "POOL_API_REQUIRE_KEY": "off"}).port == 9123


def test_the_image_context_alone_imports_the_api(tmp_path):
    """api/ and plugins/pool_classifier, as api/Dockerfile.dockerignore lets them into the context,
    copied where the Dockerfile puts them: the API imports from there alone (no project root on the path)."""
    ignore = (PROJECT_ROOT / "api" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*"):ignore.index("*") + 3] == ["*", "!api", "!plugins/pool_classifier"]
    app = tmp_path / "app"
    for part in ("api", "plugins/pool_classifier"):
        shutil.copytree(PROJECT_ROOT / part, app / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    code = ("import sys, api.app, api.store, api.__main__, api.routers.addresses, pool_classifier.io.sharded_index; "
            "mods = [m.__file__ for m in list(sys.modules.values()) "
            "        if getattr(m, '__file__', None) and m.__name__.split('.')[0] in ('api', 'pool_classifier')]; "
            "print(len(mods)); print('\\n'.join(mods))")
    env = {**os.environ, "PYTHONPATH": f"{app / 'plugins'}:{app}", "POOL_API_BUCKET": "gs://b"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    count, *files = out.stdout.split("\n")
    assert int(count) >= 10 and all(f.startswith(str(app)) for f in files if f)
