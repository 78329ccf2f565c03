"""bootstrap_state: locally, the history export (DuckDB) and the one Spark job over it give the
state a day-by-day build gives; on gcp, the requests it would send are valid API bodies, read
the history with a partition filter, are capped, and run.sh sends exactly those files."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import pytest
from google.cloud import bigquery, dataproc_v1

from pool_classifier import datasets
from pool_classifier.io import atomic, sql_checks
from pool_classifier.steps import bootstrap_state, build_features
from pool_classifier.targets import gcp
from spark_jobs import build_features as job
from tests.spark_jobs.test_incremental_state import rows_by_address, state_rows
from tests.steps.conftest import DAY1, DAY2

SETTINGS = gcp.GcpSettings(project="pool-project-1", service_account="pipeline@pool-project-1.iam.gserviceaccount.com",
                           jobs_bucket="gs://pool-jobs")
GCP_TARGET = gcp.target_for_bucket("gs://pool-data")


def test_local_bootstrap_equals_the_daily_build(spark, target, tmp_path):
    daily = target  # day 1 built by the session fixture; day 2 built here, in order
    build_features.build_features(daily, DAY2)
    boot = dataclasses.replace(target, bucket=str(tmp_path / "boot"))
    shutil.copytree(f"{target.bucket}/extracts", f"{boot.bucket}/extracts")

    result = bootstrap_state.bootstrap_state(boot, DAY2)

    assert (result["from"], result["until"]) == (DAY1, DAY2)  # the warehouse's first block's day
    exported = {t: spark.read.parquet(*atomic.data_files(datasets.history_dir(boot, DAY2, t))).count()
                for t in datasets.EXTRACT_TABLES}
    extracted = {t: sum(spark.read.parquet(*atomic.data_files(datasets.extract_dir(boot, t, d))).count()
                        for d in (DAY1, DAY2)) for t in datasets.EXTRACT_TABLES}
    assert exported == extracted == result["history_rows"] and extracted["outputs"] > 1000
    boot_state, n_layers, meta = state_rows(spark, boot, DAY2)
    daily_state, _, _ = state_rows(spark, daily, DAY2)
    assert n_layers == 1 and meta["bootstrapped"] == {"from": DAY1, "until": DAY2}
    assert meta["history_from"] == DAY1  # a later re-run of an earlier day is refused, naming it
    assert boot_state == daily_state and len(boot_state) > 1000
    receipts = [rows_by_address(spark.read.parquet(*atomic.data_files(
        datasets.state_dir(t, "coinbase_receipts", DAY2)))) for t in (daily, boot)]
    assert receipts[0] == receipts[1] and receipts[0]
    # (that the daily runs then continue from it: tests/spark_jobs/test_incremental_state.py)


@pytest.fixture
def requests(tmp_path):
    files = bootstrap_state.write_gcp_requests(tmp_path / "boot", GCP_TARGET, SETTINGS, "2026-12-01")
    return tmp_path / "boot", {p.name: p for p in files}


def test_gcp_exports_are_capped_partition_pruned_versioned_jobs(requests):
    folder, files = requests
    for table in datasets.EXTRACT_TABLES:
        export = json.loads(files[f"export_{table}.json"].read_text())
        config = bigquery.QueryJobConfig.from_api_repr(export["configuration"])
        assert config.maximum_bytes_billed == bootstrap_state.HISTORY_MAX_BYTES_BILLED
        assert config.labels == {"pipeline": "mining-pool-classifier", "step": "bootstrap-state",
                                 "logical-date": "2026-12-01"}
        statement = export["configuration"]["query"]["query"]
        location = datasets.history_dir(GCP_TARGET, "2026-12-01", table)
        assert f"uri = '{location}/v=" in statement and "__version__" not in statement
        select = statement.split(" AS\n", 1)[1]
        assert sql_checks.partition_filter_problems(select) == []
        assert "'2009-01-03'" in select and "'2026-12-01'" in select
        assert export["jobReference"]["projectId"] == SETTINGS.project
        dry = json.loads(files[f"dry_run_{table}.json"].read_text())["configuration"]
        assert bigquery.QueryJobConfig.from_api_repr(dry).dry_run is True and dry["query"]["query"].strip() == select.strip()


def test_gcp_batch_is_the_daily_job_file_with_bootstrap_args(requests):
    folder, files = requests
    body = json.loads(files["batch.json"].read_text())
    batch = dataproc_v1.Batch(body)  # the API's own message: unknown fields would raise
    assert batch.pyspark_batch.main_python_file_uri == datasets.spark_job_uri(SETTINGS.jobs_bucket, "build_features.py")
    args = list(batch.pyspark_batch.args)
    assert args[args.index("--history") + 1] == datasets.history_dir(GCP_TARGET, "2026-12-01")
    assert "--bootstrap" in args and args[args.index("--ds") + 1] == "2026-12-01"
    parsed = job.parse_args(args)  # the job itself accepts them
    assert parsed.bootstrap and parsed.bucket == "gs://pool-data"
    assert batch.runtime_config.version == gcp.DATAPROC_RUNTIME_VERSION
    assert batch.environment_config.execution_config.service_account == SETTINGS.service_account


def test_gcp_run_script_sends_the_written_files_dry_runs_first(requests):
    folder, files = requests
    script = files["run.sh"].read_text()
    subprocess.run(["bash", "-n", str(files["run.sh"])], check=True)
    sent = {word for line in script.splitlines() if "api " in line for word in line.split() if word.endswith(".json")}
    assert sent == {name for name in files if name.endswith(".json")}  # every body written is sent, by curl
    order = [script.index(f"dry_run_{t}.json") for t in datasets.EXTRACT_TABLES]
    assert max(order) < script.index("[ \"${DRY_RUN_ONLY") < min(script.index(f"export_{t}.json")
                                                            for t in datasets.EXTRACT_TABLES)
    assert script.index("--switch") < script.index("batch.json")  # the batch reads switched exports


def test_cli_needs_settings_for_gcp_requests(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bootstrap_state.main(["--ds", "2026-12-01", "--print-gcp-requests", str(tmp_path)])
    assert "--print-gcp-requests needs --settings" in capsys.readouterr().err
