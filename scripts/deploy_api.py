"""`make deploy-api`: the prediction API (api/) on Cloud Run, from the same image as anywhere else.

    make deploy-api ARGS="--dry-run"      # print every command, run none
    make deploy-api ARGS="--project … --bucket gs://…"

What it does, in order (each step is one printed command; `a || b`: b only when a fails):
  1. enables the APIs it needs (Cloud Run, Artifact Registry, Cloud Build, Secret Manager);
  2. creates the Artifact Registry repository of the image, the API's own service account, and
     the managed folder `serving/` of the data bucket if absent;
  3. lets that account read `serving/` only, and the hourly `activity/recent/` (roles/storage.objectViewer on the managed folders:
     it cannot read or write anything else of the bucket);
  4. creates the Secret Manager secret of the API key if absent, with a first version made of 32
     random bytes sent on stdin (never printed, never in an argument, never in the repo), and lets
     the account read that secret only;
  5. builds the image with Cloud Build (api/cloudbuild.yaml: api/Dockerfile), tagged with the git
     commit, into the repository;
  6. deploys the Cloud Run service: that image, that account, no unauthenticated access (Cloud Run
     IAM: callers need roles/run.invoker, granted to each --invoker), the key from the secret
     (POOL_API_KEY), 0 instances when idle, at most --max-instances, 1 vCPU and 1 GiB, CPU only
     while a request runs; the flags are rendered from the Cloud Run Admin API v2 Service body
     `service_body` (validated by google-cloud-run's own types in the tests).

Settings: flags, or the environment variables named in --help; the region defaults to the gcp
target's (targets/gcp.py, GcpSettings.region). Needs gcloud logged in (docs/gcp.md, "Serving the API").
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))

from pool_classifier import datasets  # noqa: E402
from pool_classifier.targets.gcp import _BUCKET, _EMAIL, _PROJECT, GcpSettings  # noqa: E402

CLOUDBUILD_CONFIG = "api/cloudbuild.yaml"
IMAGE_NAME = "pool-api"
CONTAINER_PORT = 8080  # api/Dockerfile's PORT
# The smallest shape that holds the sharded index's directory (64 MiB at 1 B addresses) and the
# snapshot's small DuckDB tables with room: 1 vCPU, 1 GiB. Requests are ~1 ms of CPU each, so 80
# at a time share the vCPU well (the default concurrency).
CPU, MEMORY, CONCURRENCY, TIMEOUT = "1", "1Gi", 80, "30s"
# A new day's snapshot appears once a day: reading its pointer every minute is 1,440 GETs a day at
# most (while an instance is up), instead of 43,200 at the local 2 s.
POLL_SECONDS = 60
SERVICES = ("run.googleapis.com", "artifactregistry.googleapis.com", "cloudbuild.googleapis.com",
            "secretmanager.googleapis.com")
# (flag, environment variable, default, help)
OPTIONS = [
    ("--project", "POOL_CLASSIFIER_PROJECT", None, "project of the service, the image and the secret"),
    ("--region", "POOL_CLASSIFIER_REGION", GcpSettings.region, "region of the service, the repository and the build"),
    ("--bucket", "POOL_CLASSIFIER_BUCKET", None, "gs:// data bucket whose serving/ the API reads"),
    ("--service", "POOL_API_SERVICE", "pool-api", "Cloud Run service name"),
    ("--repository", "POOL_API_REPOSITORY", "pool-api", "Artifact Registry repository (docker)"),
    ("--api-service-account", "POOL_API_SERVICE_ACCOUNT", None,
     "the API's own account (default pool-api@<project>.iam.gserviceaccount.com)"),
    ("--secret", "POOL_API_KEY_SECRET_NAME", "pool-api-key", "Secret Manager secret holding the API key"),
    ("--max-instances", "POOL_API_MAX_INSTANCES", "2", "most instances at once (the bill's ceiling)"),
    ("--tag", "POOL_API_IMAGE_TAG", None, "image tag (default: the git commit, +'-dirty' with local changes)"),
]
REQUIRED = ("project", "bucket")


@dataclass
class Step:
    """One command (argv); `unless`: run only when that command fails (an existence check);
    `stdin`: what to send on its standard input (a secret: never printed)."""

    what: str
    argv: list[str]
    unless: list[str] | None = None
    stdin: Callable[[], bytes] | None = None
    stdin_note: str = ""

    def show(self) -> str:
        text = shlex.join(self.argv)
        if self.stdin is not None:
            text += f"   # stdin: {self.stdin_note}"
        return f"{shlex.join(self.unless)} || {text}" if self.unless else text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Deploy the prediction API to Cloud Run (docs/gcp.md).",
                                     epilog="Each setting is a flag or the environment variable in brackets.")
    parser.add_argument("--dry-run", action="store_true", help="print every command, run none")
    parser.add_argument("--invoker", action="append", default=[],
                        help="a principal allowed to call the service (user:…, group:…, serviceAccount:…); repeat")
    for flag, env, default, text in OPTIONS:
        parser.add_argument(flag, default=os.environ.get(env) or default, help=f"{text} [{env}]")
    return parser.parse_args(argv)


def git_tag() -> str:
    """The commit the image is built from (a deployed revision names its code)."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=PROJECT_ROOT).stdout.strip()
    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def resolve(args: argparse.Namespace, placeholders: bool) -> tuple[dict, list[str]]:
    """The settings, the names of the required ones missing (placeholders in a dry run), and checks."""
    values = {flag.lstrip("-").replace("-", "_"): getattr(args, flag.lstrip("-").replace("-", "_"))
              for flag, _, _, _ in OPTIONS}
    values["invokers"] = list(args.invoker)
    missing = [name for name in REQUIRED if not values[name]]
    if placeholders:
        for name in missing:
            values[name] = "gs://<bucket>" if name == "bucket" else f"<{name}>"
    elif missing:
        return values, missing
    values["bucket"] = values["bucket"].rstrip("/")
    values["api_service_account"] = values["api_service_account"] or f"pool-api@{values['project']}.iam.gserviceaccount.com"
    values["tag"] = values["tag"] or git_tag()
    return values, missing


def problems(values: dict) -> list[str]:
    checks = [
        (_PROJECT.match(values["project"]), f"--project={values['project']!r} is not a project id"),
        (_BUCKET.match(values["bucket"]), f"--bucket={values['bucket']!r} is not gs://<bucket>"),
        (_EMAIL.match(values["api_service_account"]),
         f"--api-service-account={values['api_service_account']!r} is not a service account e-mail"),
        (re.match(r"^[a-z]+-[a-z]+\d$", values["region"]), f"--region={values['region']!r} is not a region"),
        (str(values["max_instances"]).isdigit() and 1 <= int(values["max_instances"]) <= 10,
         f"--max-instances={values['max_instances']!r} is not between 1 and 10 (the bill's ceiling)"),
        (re.match(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$", values["service"]), f"--service={values['service']!r} is not a name"),
        (all(re.match(r"^(user|group|serviceAccount|domain):\S+$", m) for m in values["invokers"]),
         f"--invoker {values['invokers']} must each be user:…, group:…, serviceAccount:… or domain:…"),
    ]
    return [message for ok, message in checks if not ok]


def image(values: dict) -> str:
    return f"{values['region']}-docker.pkg.dev/{values['project']}/{values['repository']}/{IMAGE_NAME}:{values['tag']}"


def environment(values: dict) -> dict[str, str]:
    """What the API reads at start (api/settings.py): the gcp target (a key required), the bucket."""
    return {"POOL_CLASSIFIER_TARGET": "gcp", "POOL_CLASSIFIER_BUCKET": values["bucket"],
            "POOL_API_BUCKET": values["bucket"], "POOL_API_POLL_SECONDS": str(POLL_SECONDS)}


def service_body(values: dict) -> dict:
    """The Cloud Run Admin API v2 `Service` the deploy makes (google.cloud.run_v2.Service's fields):
    the one description the `gcloud run deploy` flags are rendered from."""
    env = [{"name": k, "value": v} for k, v in environment(values).items()]
    env.append({"name": "POOL_API_KEY", "value_source": {"secret_key_ref": {"secret": values["secret"],
                                                                            "version": "latest"}}})
    return {
        "ingress": "INGRESS_TRAFFIC_ALL",
        "invoker_iam_disabled": False,  # Cloud Run IAM checks every call: roles/run.invoker
        "template": {
            "service_account": values["api_service_account"],
            "scaling": {"min_instance_count": 0, "max_instance_count": int(values["max_instances"])},
            "max_instance_request_concurrency": CONCURRENCY,
            "timeout": TIMEOUT,
            "containers": [{
                "image": image(values),
                "ports": [{"container_port": CONTAINER_PORT}],
                "resources": {"limits": {"cpu": CPU, "memory": MEMORY}, "cpu_idle": True},
                "env": env,
            }],
        },
    }


def deploy_flags(body: dict) -> list[str]:
    """`gcloud run deploy` flags saying what `body` says."""
    template = body["template"]
    container = template["containers"][0]
    plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    secret_refs = {e["name"]: e["value_source"]["secret_key_ref"] for e in container["env"] if "value_source" in e}
    if body["invoker_iam_disabled"] or body["ingress"] != "INGRESS_TRAFFIC_ALL":
        raise ValueError("deploy_flags renders an IAM-checked service with ingress all only")
    return [
        f"--image={container['image']}",
        f"--service-account={template['service_account']}",
        "--no-allow-unauthenticated",
        "--invoker-iam-check",
        "--ingress=all",
        "--set-secrets=" + ",".join(f"{k}={r['secret']}:{r['version']}" for k, r in secret_refs.items()),
        "--set-env-vars=^|^" + "|".join(f"{k}={v}" for k, v in plain.items()),
        f"--min-instances={template['scaling']['min_instance_count']}",
        f"--max-instances={template['scaling']['max_instance_count']}",
        f"--cpu={container['resources']['limits']['cpu']}",
        f"--memory={container['resources']['limits']['memory']}",
        "--cpu-throttling" if container["resources"]["cpu_idle"] else "--no-cpu-throttling",
        f"--concurrency={template['max_instance_request_concurrency']}",
        f"--timeout={template['timeout']}",
        f"--port={container['ports'][0]['container_port']}",
    ]


def new_key() -> bytes:
    return secrets.token_urlsafe(32).encode("ascii")


def plan(values: dict) -> list[Step]:
    """Every step of the deploy, in order."""
    gcloud = ["gcloud", "--project", values["project"]]
    region = f"--region={values['region']}"
    account, secret, serving = values["api_service_account"], values["secret"], datasets.serving_root(datasets.Bucket(values["bucket"])) + "/"
    member = f"--member=serviceAccount:{account}"
    recent = datasets.activity_recent_dir(datasets.Bucket(values["bucket"])) + "/"
    steps = [
        Step("the APIs", [*gcloud, "services", "enable", *SERVICES]),
        Step("the image repository", [*gcloud, "artifacts", "repositories", "create", values["repository"],
                                      "--repository-format=docker", f"--location={values['region']}",
                                      "--description=mining_pool_classifier API images"],
             unless=[*gcloud, "artifacts", "repositories", "describe", values["repository"],
                     f"--location={values['region']}"]),
        Step("the API's service account", [*gcloud, "iam", "service-accounts", "create", account.split("@")[0],
                                           "--display-name=mining_pool_classifier API (reads serving/)"],
             unless=[*gcloud, "iam", "service-accounts", "describe", account]),
        Step("serving/ as a managed folder (IAM on the prefix)", [*gcloud, "storage", "managed-folders", "create",
                                                                   serving],
             unless=[*gcloud, "storage", "managed-folders", "describe", serving]),
        Step("the account reads serving/ and nothing else", [
            *gcloud, "storage", "managed-folders", "add-iam-policy-binding", serving, member,
            "--role=roles/storage.objectViewer"]),
        # The hourly DAG's recent activity (/v1/pools/activity, /live): its own managed folder, read-only.
        Step("activity/recent/ as a managed folder", [*gcloud, "storage", "managed-folders", "create", recent],
             unless=[*gcloud, "storage", "managed-folders", "describe", recent]),
        Step("the account reads activity/recent/", [
            *gcloud, "storage", "managed-folders", "add-iam-policy-binding", recent, member,
            "--role=roles/storage.objectViewer"]),
        Step("the key's secret", [*gcloud, "secrets", "create", secret, "--replication-policy=automatic"],
             unless=[*gcloud, "secrets", "describe", secret]),
        Step("the key's first version", [*gcloud, "secrets", "versions", "add", secret, "--data-file=-"],
             unless=[*gcloud, "secrets", "versions", "describe", "latest", f"--secret={secret}"],
             stdin=new_key, stdin_note="32 random bytes made here, never printed"),
        Step("the account reads the key", [*gcloud, "secrets", "add-iam-policy-binding", secret, member,
                                           "--role=roles/secretmanager.secretAccessor"]),
        Step("the image", [*gcloud, "builds", "submit", region, f"--config={CLOUDBUILD_CONFIG}",
                           f"--substitutions=_IMAGE={image(values)}", "."]),
        Step("the service", [*gcloud, "run", "deploy", values["service"], region,
                             *deploy_flags(service_body(values))]),
    ]
    for invoker in values["invokers"]:
        steps.append(Step(f"{invoker} may call it", [*gcloud, "run", "services", "add-iam-policy-binding",
                                                     values["service"], region, f"--member={invoker}",
                                                     "--role=roles/run.invoker"]))
    return steps


def _run(step: Step) -> None:
    if step.unless is not None and subprocess.run(step.unless, capture_output=True, cwd=PROJECT_ROOT).returncode == 0:
        print("   (exists)")
        return
    result = subprocess.run(step.argv, capture_output=True, cwd=PROJECT_ROOT,
                            input=step.stdin() if step.stdin else None)
    sys.stdout.write(result.stdout.decode("utf-8", "replace"))
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode("utf-8", "replace"))
        raise SystemExit(f"deploy-api stopped: {step.what} failed (exit {result.returncode})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    values, missing = resolve(args, placeholders=args.dry_run)
    if missing and not args.dry_run:
        print(f"deploy-api: missing {', '.join('--' + m for m in missing)} (flags or environment variables: --help)",
              file=sys.stderr)
        return 2
    if missing:
        print(f"# dry run with placeholders for the missing {', '.join(missing)} (see --help)")
    found = problems(values)
    if found and not args.dry_run:
        print(f"deploy-api: {'; '.join(found)}", file=sys.stderr)
        return 2
    if found:
        print(f"# (not valid yet: {'; '.join(found)})")
    prefix = "would run: " if args.dry_run else "$ "
    for step in plan(values):
        print(prefix + step.show(), flush=True)
        if not args.dry_run:
            _run(step)
    if args.dry_run:
        print("# dry run: nothing was run")
    else:
        print(f"deploy-api: done. The URL: gcloud run services describe {values['service']} "
              f"--region {values['region']} --format='value(status.url)'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
