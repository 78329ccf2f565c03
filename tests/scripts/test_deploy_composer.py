"""`make deploy-composer`: the dry run prints every command and runs none; a real run runs
exactly those (against stand-in gcloud/bq executables that record their arguments); the
code zip imports; the PyPI list is pinned as requirements.txt and leaves Airflow alone."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pool_classifier import datasets
from pool_classifier.targets import gcp as gcp_config
from tests.conftest import PROJECT_ROOT
from tests.orchestration.gcp_dag import BUCKET, SETTINGS

SCRIPT = PROJECT_ROOT / "scripts" / "deploy_composer.py"
FLAGS = ["--project", SETTINGS["project"], "--environment", "pools-prod", "--bucket", BUCKET,
         "--jobs-bucket", SETTINGS["jobs_bucket"], "--service-account", SETTINGS["service_account"]]

# Stand-ins for the Cloud SDK: each call appends its argv (JSON) to $CALLS; `describe`
# answers the environment's DAG folder; `bq show` says "absent"; `storage cp` keeps a copy.
FAKE = r'''#!{python}
import json, os, shutil, sys
name = os.path.basename(sys.argv[0])
argv = [name] + sys.argv[1:]
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(argv) + "\n")
if "describe" in argv:
    print("gs://us-central1-pools-prod-1a2b3c-bucket/dags")
if name == "bq" and "show" in argv:
    sys.exit(1)
if "cp" in argv:
    shutil.copy(argv[argv.index("cp") + 1], os.path.join(os.environ["COPIES"], os.path.basename(argv[argv.index("cp") + 1])))
'''


@pytest.fixture
def cloud_sdk(tmp_path):
    """A PATH where gcloud and bq only record their calls."""
    bin_dir, copies = tmp_path / "bin", tmp_path / "copies"
    bin_dir.mkdir()
    copies.mkdir()
    for name in ("gcloud", "bq"):
        (bin_dir / name).write_text(FAKE.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("POOL_CLASSIFIER_", "COMPOSER_"))},
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(tmp_path / "calls.jsonl"),
           "COPIES": str(copies)}
    return env, tmp_path / "calls.jsonl", copies


def deploy(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=120)


def printed_commands(stdout: str, prefix: str) -> list[str]:
    return [line[len(prefix):] for line in stdout.splitlines() if line.startswith(prefix)]


def test_the_dry_run_prints_every_command_and_runs_none(cloud_sdk):
    env, calls, _ = cloud_sdk
    result = deploy(["--dry-run", *FLAGS], env)
    assert result.returncode == 0, result.stderr
    assert not calls.exists()
    commands = printed_commands(result.stdout, "would run: ")
    expected = [
        "gcloud --project pool-test-project composer environments describe pools-prod",
        "(in Python) zip plugins/pool_classifier",
        "gcloud --project pool-test-project storage rsync spark_jobs gs://pool-jobs-test/pool_classifier/spark_jobs",
        "gcloud --project pool-test-project storage cp ",
        "gcloud --project pool-test-project storage cp include/pools/pools-v2.json",
        "bq --project_id=pool-test-project show --dataset pool-test-project:pool_classifier || bq",
        "bq --project_id=pool-test-project query --use_legacy_sql=false 'GRANT `roles/bigquery.dataEditor` "
        f'ON SCHEMA `pool-test-project.pool_classifier` TO "serviceAccount:{SETTINGS["service_account"]}"\'',
        "bq --project_id=pool-test-project show pool-test-project:pool_classifier.address_scores || bq",
        "bq --project_id=pool-test-project show pool-test-project:pool_classifier.block_pools || bq",
        "bq --project_id=pool-test-project show pool-test-project:pool_classifier.run_costs || bq",
        "gcloud --project pool-test-project composer environments update pools-prod --location us-central1 "
        "--update-pypi-packages-from-file=include/config/composer_requirements.txt",
        "gcloud --project pool-test-project composer environments update pools-prod --location us-central1 "
        "'--update-env-variables=^|^POOL_CLASSIFIER_TARGET=gcp|",
        "gcloud --project pool-test-project storage rsync plugins/pool_classifier 'gs://<composer-bucket>/plugins/pool_classifier'",
        "gcloud --project pool-test-project storage rsync include 'gs://<composer-bucket>/plugins/include'",
        "gcloud --project pool-test-project storage rsync dags 'gs://<composer-bucket>/dags'",
    ]
    assert len(commands) == len(expected)
    for command, start in zip(commands, expected):
        assert command.startswith(start), (command, start)


def test_a_real_run_runs_exactly_the_printed_commands(cloud_sdk):
    env, calls, copies = cloud_sdk
    result = deploy(["--skip-pypi", *FLAGS], env)
    assert result.returncode == 0, result.stderr
    ran = [json.loads(line) for line in calls.read_text().splitlines()]
    printed = printed_commands(result.stdout, "$ ")
    # Each printed command ran (an `a || b` line: `a` failed, so `b` ran too); none unprinted.
    expected = []
    for line in printed:
        if line.startswith("(in Python)"):
            continue
        expected += [shlex.split(part) for part in line.split(" || ")]
    assert ran == expected
    assert not any("update-pypi-packages" in " ".join(c) for c in ran)
    # The environment's bucket came from describe; the DAG went there last.
    assert ran[-1][-5:-3] == ["dags", "gs://us-central1-pools-prod-1a2b3c-bucket/dags"]
    # The variables: the Variable's JSON is the settings the tasks validate.
    update = next(c for c in ran if any(a.startswith("--update-env-variables=") for a in c))
    value = next(a for a in update if a.startswith("--update-env-variables="))[len("--update-env-variables="):]
    delimiter = re.match(r"\^(.+?)\^", value).group(1)
    variables = dict(item.split("=", 1) for item in value[len(delimiter) + 2:].split(delimiter))
    assert variables["POOL_CLASSIFIER_TARGET"] == "gcp" and variables["POOL_CLASSIFIER_BUCKET"] == BUCKET
    assert variables["POOL_CLASSIFIER_INCLUDE_DIR"] == gcp_config.COMPOSER_INCLUDE_DIR
    settings = gcp_config.GcpSettings.from_mapping(json.loads(variables["AIRFLOW_VAR_POOL_CLASSIFIER_GCP"]))
    assert (settings.project, settings.jobs_bucket) == (SETTINGS["project"], SETTINGS["jobs_bucket"])
    # The zip that was uploaded imports the package.
    assert zipfile.ZipFile(copies / datasets.CODE_ZIP_NAME).testzip() is None


def test_a_real_run_without_the_settings_runs_nothing_and_names_them(cloud_sdk):
    env, calls, _ = cloud_sdk
    result = deploy(["--project", SETTINGS["project"]], env)
    assert result.returncode == 2 and not calls.exists()
    assert "missing --environment, --bucket, --service-account" in result.stderr
    result = deploy([*FLAGS, "--service-account", "not-an-email"], env)
    assert result.returncode == 2 and not calls.exists()
    assert "service_account='not-an-email' is not a service account e-mail" in result.stderr


def test_the_code_zip_imports_the_package_alone_and_is_the_same_each_time(tmp_path):
    from scripts import deploy_composer

    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    names = deploy_composer.build_code_zip(first)
    deploy_composer.build_code_zip(second)
    assert first.read_bytes() == second.read_bytes()
    assert "pool_classifier/model/feature_spec.py" in names and not any("__pycache__" in n for n in names)
    # Nothing but the zip on the path (-I: no site, no PYTHONPATH), as the batch's driver sees it.
    code = (f"import sys; sys.path.insert(0, {str(first)!r}); "
            "from pool_classifier.model.feature_spec import FEATURE_COLUMNS; import pool_classifier.io.bucket_mirror; "
            "print(len(FEATURE_COLUMNS), pool_classifier.io.bucket_mirror.__file__)")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    count, origin = out.split()
    assert int(count) >= 26 and origin.startswith(str(first))


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_composer_gets_only_missing_packages_pinned_as_requirements_txt():
    composer = _pins(PROJECT_ROOT / "include" / "config" / "composer_requirements.txt")
    pinned = _pins(PROJECT_ROOT / "requirements.txt")
    assert composer, "composer_requirements.txt lists nothing"
    assert not {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"} & set(composer)
    for name, version in composer.items():
        assert version and pinned.get(name) == version, name
