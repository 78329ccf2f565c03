"""bootstrap_state: the features' state as of a chosen day, from the whole history, in one job.

Built day by day, the real history (~5,800 days, ~1.2 B addresses) would need as many daily
runs, in order, before an address's features cover its past. The bootstrap does it once:

1. **export the history**: the three extract queries over every day from `--from` to `--ds`
   (`include/sql/extract_*.sql` with `first_day`: the same columns as a day's extract) into
   `history/dt=<ds>/<table>/` (`datasets.history_dir`), each a published version;
2. **one Spark batch** of `spark_jobs/build_features.py --bootstrap --history <that folder>`:
   the coinbase receipts and every address's partials as one base snapshot of the state of
   `--ds`, with its manifest. The daily DAG then runs from the day after, as if it had built
   the history itself (tests/spark_jobs/test_incremental_state.py: bootstrap-then-daily
   equals daily-from-the-start).

Locally both happen here (DuckDB over the warehouse, the Spark job in this process):

    python -m pool_classifier.steps.bootstrap_state --ds 2024-03-01

On gcp it is a one-off, run by an operator, not a DAG task: `--print-gcp-requests DIR` writes
what it would send (per table a dry run and a capped `EXPORT DATA` job, BigQuery `jobs.insert`
bodies; the Dataproc `batches.create` body) and a `run.sh` that sends those very files with
curl, the dry runs first (docs/gcp.md, "Bootstrap": the history scans ~0.9 TB, ≈ $5, the batch ≈ $1):

    python -m pool_classifier.steps.bootstrap_state --ds 2026-12-01 --print-gcp-requests boot/ \\
        --settings settings.json --bucket gs://my-data-bucket
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.io import spark_runner
from pool_classifier.steps import build_features, extract_day
from pool_classifier.targets import Target, current_target, gcp, gcp_requests

TASK_ID = "bootstrap_state"
# crypto_bitcoin's first block (2009-01-03): the default start of the history.
GENESIS_DAY = "2009-01-03"
# The history export reads every month once: ~0.9 TB in all, the largest query (inputs) ~0.53 TB
# (docs/gcp.md, "Bootstrap"). A cap of 1 TiB per query (≤ $6.25) lets each run and stops a query
# gone wrong from scanning more; the dry runs print the exact figure first.
HISTORY_MAX_BYTES_BILLED = 2**40


def job_args(where: datasets.HasBucket, ds: str, first_day: str, pools_uri: str) -> list[str]:
    """Arguments of the bootstrap batch: the daily job's, with `--bootstrap --from --history`."""
    return [*build_features.job_args(where, ds, pools_uri),
            "--bootstrap", "--from", first_day, "--history", datasets.history_dir(where, ds)]


def bootstrap_state(target: Target, ds: str, first_day: str | None = None) -> dict:
    """Export the history from `first_day` (default: the warehouse's first block) to `ds`,
    then build the state of `ds` from it in one Spark job. Returns the rows and the job's line."""
    first_day = first_day or first_block_day(target)
    rows = {table: extract_day.extract_table(target, ds, table, first_day,
                                             out=datasets.history_dir(target, ds, table))["rows"]
            for table in datasets.EXTRACT_TABLES}
    message = spark_runner.run(target, build_features.TASK_ID, job_args(target, ds, first_day, str(datasets.POOLS_FILE)))
    return {"history_rows": rows, "from": first_day, "until": ds, "state": message}


def first_block_day(target: Target) -> str:
    """The day of the warehouse's first block (the local history's start)."""
    from pool_classifier.io.warehouse import CATALOG

    con = extract_day.connect_warehouse(target.warehouse)
    try:
        day = con.execute(f'SELECT min(CAST(timestamp AS DATE)) FROM "{CATALOG}".crypto_bitcoin.blocks').fetchone()[0]
    finally:
        con.close()
    if day is None:
        raise extract_day.NoBlocksError(f"no blocks in {target.warehouse}: load crypto_bitcoin exports first")
    return day.isoformat()


# ---------------------------------------------------------------- gcp: what it would send


def gcp_requests_for(target: Target, settings: gcp.GcpSettings, ds: str, first_day: str = GENESIS_DAY,
                     max_bytes_billed: int = HISTORY_MAX_BYTES_BILLED, version: str | None = None) -> dict:
    """The bootstrap's requests on gcp, as the REST APIs take them: per extract table a dry-run
    job (the bytes, nothing billed) and the capped `EXPORT DATA` job into a new version of the
    table's history folder (BigQuery `jobs.insert` bodies); then the Dataproc batch
    (`batches.create`). The batch reads the history only once every export is switched to."""
    from pool_classifier.io import versioned

    version = version or versioned.new_version_id()
    stamp = version.split(".")[0].lower()
    exports = {}
    for table in datasets.EXTRACT_TABLES:
        select = extract_day.render_sql(table, ds, first_day)
        location = datasets.history_dir(target, ds, table)
        job_labels = gcp_requests.labels(TASK_ID, ds)
        configuration = gcp_requests.export_query_configuration(
            gcp_requests.export_statement(select, location), max_bytes_billed, job_labels)
        exports[table] = {
            "dry_run": {"configuration": {"query": {"query": select, "useLegacySql": False, "useQueryCache": False},
                                          "dryRun": True, "labels": job_labels}},
            "export": {"jobReference": {"projectId": settings.project, "location": gcp.BIGQUERY_LOCATION,
                                        "jobId": f"{TASK_ID}_{table}_{stamp}"},
                       "configuration": gcp_requests.with_version(configuration, version)},
            "location": location,
        }
    batch = gcp_requests.spark_batch(
        main_python_file_uri=datasets.spark_job_uri(settings.jobs_bucket, f"{build_features.TASK_ID}.py"),
        args=job_args(target, ds, first_day, datasets.pools_uri(settings.jobs_bucket)),
        code_zip_uri=datasets.code_zip_uri(settings.jobs_bucket),
        properties=target.spark_conf,
        service_account=settings.service_account,
        subnetwork=settings.subnetwork,
        batch_labels=gcp_requests.labels(TASK_ID, ds),
    )
    return {"exports": exports, "batch": batch, "batch_id": f"bootstrap-{stamp.replace('t', '-')}",
            "version": version}


def write_gcp_requests(out: Path, target: Target, settings: gcp.GcpSettings, ds: str, first_day: str = GENESIS_DAY,
                       max_bytes_billed: int = HISTORY_MAX_BYTES_BILLED) -> list[Path]:
    """The request bodies as JSON files and `run.sh`, which sends them in order with curl (the
    bodies exactly as written here), waits for each job, and switches each export's pointer."""
    requests = gcp_requests_for(target, settings, ds, first_day, max_bytes_billed)
    out.mkdir(parents=True, exist_ok=True)
    files = []

    def dump(name: str, body: dict) -> str:
        path = out / name
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        files.append(path)
        return name

    project, region = shlex.quote(settings.project), shlex.quote(settings.region)
    jobs_api = f"https://bigquery.googleapis.com/bigquery/v2/projects/{project}/jobs"
    lines = [
        "#!/usr/bin/env bash",
        f"# bootstrap_state {ds} from {first_day}, written by `python -m pool_classifier.steps.bootstrap_state",
        "# --print-gcp-requests`. Dry runs first (bytes printed, nothing billed; set DRY_RUN_ONLY=1 to stop",
        "# there), then the capped exports, each switched to by its pointer, then one Dataproc batch.",
        "# Needs curl, jq, gcloud (logged in as the pipeline's operator) and this project's venv.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        'TOKEN=$(gcloud auth print-access-token)',
        'api() { curl -sSf -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '"$1" --data-binary "@$2"; }',
    ]
    for table, req in requests["exports"].items():
        dry = dump(f"dry_run_{table}.json", req["dry_run"])
        lines.append(f"echo \"{table}: $(api {jobs_api} {dry} | jq -r .statistics.totalBytesProcessed) bytes\"")
    lines.append('[ "${DRY_RUN_ONLY:-0}" = 1 ] && exit 0')
    for table, req in requests["exports"].items():
        job = dump(f"export_{table}.json", req["export"])
        job_id = req["export"]["jobReference"]["jobId"]
        lines += [
            f"api {jobs_api} {job} >/dev/null",
            f"bq wait --project_id={project} --location={gcp.BIGQUERY_LOCATION} {job_id}",
            f"python -m pool_classifier.steps.bootstrap_state --switch {shlex.quote(req['location'])} "
            f"--version {requests['version']}",
        ]
    batch = dump("batch.json", requests["batch"])
    lines += [
        f"api 'https://dataproc.googleapis.com/v1/projects/{project}/locations/{region}/batches"
        f"?batchId={requests['batch_id']}' {batch} >/dev/null",
        f"gcloud dataproc batches wait {requests['batch_id']} --project={project} --region={region}",
    ]
    script = out / "run.sh"
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return [*files, script]


def switch_export(location: str, version: str) -> dict:
    """After an export into `v=<version>` succeeded: its pointer names it (Cloud Storage)."""
    from pool_classifier.io import versioned

    return gcp_requests.publish_export(versioned.GcsFS(), location, version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the features' state as of a day from the whole history.")
    parser.add_argument("--ds", help="the state's day, YYYY-MM-DD (UTC); daily runs continue after it")
    parser.add_argument("--from", dest="first_day", help="the history's first day (default: the first block)")
    parser.add_argument("--print-gcp-requests", metavar="DIR", type=Path,
                        help="gcp: write the requests and run.sh into DIR instead of running anything")
    parser.add_argument("--settings", type=Path, help="with --print-gcp-requests: the gcp settings (JSON)")
    parser.add_argument("--bucket", help=f"with --print-gcp-requests: the data bucket (default: ${gcp.BUCKET_ENV})")
    parser.add_argument("--max-bytes-billed", type=int, default=HISTORY_MAX_BYTES_BILLED)
    parser.add_argument("--switch", metavar="LOCATION", help="run.sh: switch LOCATION to --version once exported")
    parser.add_argument("--version", help="with --switch: the exported version's id")
    args = parser.parse_args(argv)
    if args.switch:
        if not args.version:
            parser.error("--switch needs --version")
        print(json.dumps(switch_export(args.switch, args.version)))
        return 0
    if not args.ds:
        parser.error("--ds is required")
    if args.print_gcp_requests:
        if not args.settings:
            parser.error("--print-gcp-requests needs --settings (the pool_classifier_gcp Variable's JSON)")
        settings = gcp.settings_from_variable(args.settings.read_text())
        target = gcp.target_for_bucket(args.bucket) if args.bucket else gcp.target()
        for path in write_gcp_requests(args.print_gcp_requests, target, settings, args.ds,
                                       args.first_day or GENESIS_DAY, args.max_bytes_billed):
            print(path)
        return 0
    result = bootstrap_state(current_target(), args.ds, args.first_day)
    print(f"history {result['from']} … {result['until']}: " +
          ", ".join(f"{t} {n}" for t, n in result["history_rows"].items()))
    print(result["state"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
