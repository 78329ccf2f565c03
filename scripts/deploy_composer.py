"""`make deploy-composer`: put the pipeline on a Cloud Composer 3 environment, in one command.

    make deploy-composer ARGS="--dry-run"      # print every command, run none
    make deploy-composer                       # run them

What it does, in order (each step is one printed command):
  1. zips the pool_classifier package (plugins/) for the Dataproc batches;
  2. uploads spark_jobs/, the zip and the pools list to the jobs bucket;
  3. creates the BigQuery dataset and the output tables if absent (schemas: include/schemas/),
     and lets the service account write the dataset (GRANT … ON SCHEMA);
  4. installs the PyPI packages the environment lacks (include/config/composer_requirements.txt);
  5. sets the environment variables the DAG reads: the target, the data bucket, where
     include/ is, and the Airflow Variable `pool_classifier_gcp` (as AIRFLOW_VAR_…: the
     `variables` sub-command of `gcloud composer environments run` is for Airflow < 3);
  6. syncs plugins/ and include/ (under plugins/: Composer maps only dags/, plugins/, data/),
     then dags/ last, so the DAG appears once everything it needs is there.

Settings: flags, or the environment variables named in --help. Needs gcloud and bq
(Google Cloud SDK) logged in as someone who may change the environment (docs/gcp.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "plugins"))

from pool_classifier import datasets  # noqa: E402
from pool_classifier.targets import gcp as gcp_config  # noqa: E402
from pool_classifier.targets.gcp import GcpSettings, GcpSettingsError  # noqa: E402

PACKAGE_DIR = PROJECT_ROOT / "plugins" / "pool_classifier"
# Paths in the commands are relative to the project (they run there, as `make` does).
COMPOSER_REQUIREMENTS = "include/config/composer_requirements.txt"
SCHEMAS = "include/schemas"
EXCLUDE = r"(^|.*/)__pycache__/.*|.*\.pyc$"
# gcloud's list delimiter, changed from ',' (the Variable's JSON has commas): `gcloud topic escaping`.
ENV_DELIMITER = "|"
# (flag, environment variable, GcpSettings field or None, help)
OPTIONS = [
    ("--project", "POOL_CLASSIFIER_PROJECT", "project", "project of the environment, the jobs and the dataset"),
    ("--environment", "COMPOSER_ENVIRONMENT", None, "name of the Composer 3 environment"),
    ("--location", "COMPOSER_LOCATION", None, "its region (default: the Dataproc region, us-central1)"),
    ("--bucket", "POOL_CLASSIFIER_BUCKET", None, "gs:// data bucket (extracts, features, models, predictions)"),
    ("--jobs-bucket", "POOL_CLASSIFIER_JOBS_BUCKET", "jobs_bucket", "gs:// bucket for spark_jobs/ and the code zip (default: --bucket)"),
    ("--service-account", "POOL_CLASSIFIER_SERVICE_ACCOUNT", "service_account", "the pipeline's service account e-mail"),
    ("--region", "POOL_CLASSIFIER_REGION", "region", "Dataproc region (default us-central1)"),
    ("--subnetwork", "POOL_CLASSIFIER_SUBNETWORK", "subnetwork", "subnetwork of the batches (default 'default')"),
    ("--dataset", "POOL_CLASSIFIER_DATASET", "dataset", "BigQuery dataset of the outputs (default pool_classifier)"),
    ("--max-bytes-billed", "POOL_CLASSIFIER_MAX_BYTES_BILLED", "max_bytes_billed", "bytes cap per query (default 20 GiB)"),
    ("--composer-bucket", "COMPOSER_BUCKET", None, "gs:// bucket of the environment (default: asked to gcloud)"),
]
REQUIRED = ("project", "environment", "bucket", "service_account")


@dataclass
class Step:
    """One command (argv), or a local action (argv empty) described by `what`."""

    what: str
    argv: list[str] = field(default_factory=list)
    # Run only when this command fails (an existence check: `bq show` before `bq mk`).
    unless: list[str] | None = None
    # A failure whose output contains this is not one (`gcloud … update` with no change).
    ok_if_output_has: str | None = None

    def show(self) -> str:
        if not self.argv:
            return f"(in Python) {self.what}"
        text = shlex.join(self.argv)
        return f"{shlex.join(self.unless)} || {text}" if self.unless else text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Deploy the mining_pool_classifier DAG to Cloud Composer 3 (docs/gcp.md).",
        epilog="Each setting is a flag or the environment variable in brackets.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print every command, run none")
    parser.add_argument("--skip-pypi", action="store_true",
                        help="skip the PyPI update (an environment update takes minutes; needed once)")
    for flag, env, _, text in OPTIONS:
        parser.add_argument(flag, default=os.environ.get(env) or None, help=f"{text} [{env}]")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, placeholders: bool) -> tuple[dict, list[str]]:
    """The resolved settings and the names of the required ones missing (placeholders if asked)."""
    values = {flag.lstrip("-").replace("-", "_"): getattr(args, flag.lstrip("-").replace("-", "_"))
              for flag, _, _, _ in OPTIONS}
    values["jobs_bucket"] = values["jobs_bucket"] or values["bucket"]
    values["location"] = values["location"] or values["region"] or GcpSettings.region
    values["region"] = values["region"] or values["location"]
    missing = [name for name in REQUIRED if not values[name]]
    if placeholders:
        for name in missing + (["jobs_bucket"] if not values["jobs_bucket"] else []):
            values[name] = f"gs://<{name}>" if "bucket" in name else f"<{name}>"
    return values, missing


def gcp_settings(values: dict) -> GcpSettings:
    """The Variable's content, validated exactly as the tasks will validate it."""
    fields = {f: values[f] for f in ("project", "service_account", "jobs_bucket", "region", "subnetwork",
                                     "dataset", "max_bytes_billed") if values.get(f) is not None}
    if "max_bytes_billed" in fields:
        try:
            fields["max_bytes_billed"] = int(fields["max_bytes_billed"])
        except ValueError as exc:
            raise GcpSettingsError(f"--max-bytes-billed={fields['max_bytes_billed']!r} is not a number") from exc
    return GcpSettings.from_mapping(fields, source="deploy settings", fix="Give them as flags or environment variables (--help)")


def build_code_zip(dest: Path) -> list[str]:
    """The pool_classifier package as a zip importable from sys.path (byte-identical each time)."""
    names = []
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name = f"pool_classifier/{path.relative_to(PACKAGE_DIR).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
            names.append(name)
    return names


def env_variables(values: dict, settings_json: str) -> dict[str, str]:
    """What the DAG reads from the environment: its target, buckets, include/ and settings."""
    return {
        "POOL_CLASSIFIER_TARGET": "gcp",
        "POOL_CLASSIFIER_BUCKET": values["bucket"],
        "POOL_CLASSIFIER_INCLUDE_DIR": gcp_config.COMPOSER_INCLUDE_DIR,
        f"AIRFLOW_VAR_{gcp_config.SETTINGS_VARIABLE.upper()}": settings_json,
    }


def plan(values: dict, settings_json: str, code_zip: Path, skip_pypi: bool = False) -> list[Step]:
    """Every step of the deploy, in order."""
    gcloud = ["gcloud", "--project", values["project"]]
    env = [values["environment"], "--location", values["location"]]
    jobs = values["jobs_bucket"]
    composer = values["composer_bucket"] or "gs://<composer-bucket>"
    dataset = f"{values['project']}:{values['dataset'] or GcpSettings.dataset}"
    steps = [Step(f"zip plugins/pool_classifier into {code_zip.name} (the batches import it)")]
    steps += [
        Step("spark jobs", [*gcloud, "storage", "rsync", "spark_jobs",
                            f"{datasets.jobs_root(jobs)}/spark_jobs", "--recursive",
                            "--delete-unmatched-destination-objects", f"--exclude={EXCLUDE}"]),
        Step("the code", [*gcloud, "storage", "cp", str(code_zip), datasets.code_zip_uri(jobs)]),
        Step("the pools list", [*gcloud, "storage", "cp", "include/pools/pools-v2.json",
                                datasets.pools_uri(jobs)]),
        Step("the dataset", ["bq", f"--project_id={values['project']}", f"--location={gcp_config.BIGQUERY_LOCATION}",
                             "mk", "--dataset", "--description=mining_pool_classifier outputs", dataset],
             unless=["bq", f"--project_id={values['project']}", "show", "--dataset", dataset]),
    ]
    steps.append(Step("the account may replace partitions of the dataset's tables", [
        "bq", f"--project_id={values['project']}", "query", "--use_legacy_sql=false",
        f"GRANT `roles/bigquery.dataEditor` ON SCHEMA `{dataset.replace(':', '.')}` "
        f'TO "serviceAccount:{values["service_account"]}"',
    ]))
    for table, spec in gcp_config.BIGQUERY_TABLES.items():
        steps.append(Step(f"the table {table}", [
            "bq", f"--project_id={values['project']}", "mk", "--table",
            f"--schema={SCHEMAS}/pool_classifier.{table}.json",
            f"--time_partitioning_field={spec['partition_field']}", "--time_partitioning_type=DAY",
            f"--clustering_fields={','.join(spec['clustering'])}",
            f"--description=mining_pool_classifier {table}, one partition per logical date",
            f"{dataset}.{table}",
        ], unless=["bq", f"--project_id={values['project']}", "show", f"{dataset}.{table}"]))
    if not skip_pypi:
        steps.append(Step("PyPI packages the environment lacks", [
            *gcloud, "composer", "environments", "update", *env,
            f"--update-pypi-packages-from-file={COMPOSER_REQUIREMENTS}",
        ], ok_if_output_has="No change"))
    variables = env_variables(values, settings_json)
    steps += [
        Step("environment variables: target, bucket, include/, the Variable pool_classifier_gcp", [
            *gcloud, "composer", "environments", "update", *env,
            "--update-env-variables=" + f"^{ENV_DELIMITER}^"
            + ENV_DELIMITER.join(f"{k}={v}" for k, v in variables.items()),
        ], ok_if_output_has="No change"),
        Step("the package", [*gcloud, "storage", "rsync", "plugins/pool_classifier", f"{composer}/plugins/pool_classifier",
                             "--recursive", "--delete-unmatched-destination-objects", f"--exclude={EXCLUDE}"]),
        Step("include/ (SQL, schemas, pools, config)", [
            *gcloud, "storage", "rsync", "include", f"{composer}/plugins/include",
            "--recursive", "--delete-unmatched-destination-objects", f"--exclude={EXCLUDE}"]),
        Step("the DAG, last", [*gcloud, "storage", "rsync", "dags", f"{composer}/dags",
                               "--recursive", "--delete-unmatched-destination-objects", f"--exclude={EXCLUDE}"]),
    ]
    return steps


def describe_step(values: dict) -> Step:
    """Asks gcloud for the environment's bucket (its dagGcsPrefix, minus /dags)."""
    return Step("the environment's bucket", [
        "gcloud", "--project", values["project"], "composer", "environments", "describe",
        values["environment"], "--location", values["location"], "--format=value(config.dagGcsPrefix)",
    ])


def _run(step: Step) -> None:
    if step.unless is not None and subprocess.run(step.unless, capture_output=True, cwd=PROJECT_ROOT).returncode == 0:
        print("   (exists)")
        return
    result = subprocess.run(step.argv, capture_output=True, text=True, cwd=PROJECT_ROOT)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        if step.ok_if_output_has and step.ok_if_output_has in (result.stdout + result.stderr):
            print("   (no change)")
            return
        sys.stderr.write(result.stderr)
        raise SystemExit(f"deploy stopped: {step.what} failed (exit {result.returncode})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    values, missing = settings_from(args, placeholders=args.dry_run)
    if missing and not args.dry_run:
        names = ", ".join(f"--{m.replace('_', '-')}" for m in missing)
        print(f"deploy: missing {names} (flags or environment variables: --help)", file=sys.stderr)
        return 2
    if missing:
        print(f"# dry run with placeholders for the missing {', '.join(missing)} (see --help)")
    try:
        settings_json = gcp_settings(values).as_json()
    except GcpSettingsError as exc:
        if not args.dry_run:
            print(f"deploy: {exc}", file=sys.stderr)
            return 2
        print(f"# (not valid yet: {exc})")
        settings_json = json.dumps({k: values[k] for k in ("project", "service_account", "jobs_bucket")}
                                   | {"region": values["region"]}, sort_keys=True)
    prefix = "would run: " if args.dry_run else "$ "
    if not values["composer_bucket"]:
        describe = describe_step(values)
        print(prefix + describe.show(), flush=True)
        if not args.dry_run:
            dag_prefix = subprocess.run(describe.argv, capture_output=True, text=True, check=True,
                                        cwd=PROJECT_ROOT).stdout.strip()
            values["composer_bucket"] = dag_prefix.rsplit("/dags", 1)[0]
    with tempfile.TemporaryDirectory(prefix="deploy-") as tmp:
        code_zip = Path(tmp) / datasets.CODE_ZIP_NAME
        for step in plan(values, settings_json, code_zip, skip_pypi=args.skip_pypi):
            print(prefix + step.show(), flush=True)
            if args.dry_run:
                continue
            if step.argv:
                _run(step)
            else:
                print(f"   {len(build_code_zip(code_zip))} modules")
    if args.dry_run:
        print("# dry run: nothing was run")
    else:
        print("deploy: done. The DAG appears in the Airflow UI within a few minutes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
