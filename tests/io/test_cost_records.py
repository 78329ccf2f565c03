"""Cost records: BigQuery bytes billed and Dataproc usage turned into dollars with the prices
file, one record format for both targets (local: wall time and bytes read), summaries."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pool_classifier.datasets import SCHEMA_DIR
from pool_classifier.io import cost_records
from pool_classifier.io.cost_records import Prices, RunInfo

RUN = RunInfo(dag_id="mining_pool_classifier", run_id="scheduled__2024-03-01T00:00:00+00:00",
              logical_date="2024-03-01", task_id="extract_day.export_outputs", try_number=1, target="gcp")
PRICES = Prices(bigquery_usd_per_tib=6.25, dcu_hour_usd=0.06, shuffle_gb_month_usd=0.04,
                hours_per_month=730, as_of="2026-11-23")


def _client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project="pool-test-project", credentials=AnonymousCredentials())


def query_job(bytes_billed: int, error: dict | None = None):
    """A finished query job as the BigQuery API returns it (jobs.get)."""
    from google.cloud import bigquery

    status = {"state": "DONE", **({"errorResult": error} if error else {})}
    return bigquery.QueryJob.from_api_repr({
        "jobReference": {"projectId": "pool-test-project", "jobId": "airflow_export_1", "location": "US"},
        "configuration": {"query": {"query": "SELECT 1", "useLegacySql": False}},
        "status": status,
        "statistics": {
            "startTime": "1709251200000", "endTime": "1709251212500", "totalBytesProcessed": str(bytes_billed - 1),
            "query": {"totalBytesBilled": str(bytes_billed), "totalBytesProcessed": str(bytes_billed - 1)},
        },
    }, _client())


def test_prices_file_has_every_price_with_its_date_and_source():
    data = json.loads(cost_records.PRICES_FILE.read_text())
    prices = Prices.load()
    assert prices.as_of == data["as_of"] and len(prices.as_of) == 10
    for sku in ("bigquery_on_demand", "dataproc_serverless"):
        assert data[sku]["source"].startswith("https://cloud.google.com/")
    assert prices.bigquery_usd_per_tib > 0 and prices.dcu_hour_usd > 0 and prices.shuffle_gb_month_usd > 0


def test_a_query_costs_its_bytes_billed_at_the_price_per_tib():
    record = cost_records.bigquery_job_record(query_job(2**40 // 4), RUN, PRICES)  # a quarter TiB
    assert record.bytes_billed == 2**40 // 4 and record.bytes_read == 2**40 // 4 - 1
    assert record.cost_usd == pytest.approx(6.25 / 4) and record.bigquery_usd == record.cost_usd
    assert record.wall_seconds == pytest.approx(12.5)
    assert record.resource == "pool-test-project:US.airflow_export_1" and record.state == "DONE"


def test_a_failed_job_still_costs_what_it_billed():
    record = cost_records.bigquery_job_record(query_job(10 * 2**20, {"reason": "bytesBilledLimitExceeded"}), RUN, PRICES)
    assert record.state == "DONE (error: bytesBilledLimitExceeded)"
    assert record.cost_usd == pytest.approx(10 * 2**20 / 2**40 * 6.25)


def test_a_load_job_is_free_and_counts_the_bytes_it_read():
    from google.cloud import bigquery

    job = bigquery.LoadJob.from_api_repr({
        "jobReference": {"projectId": "pool-test-project", "jobId": "airflow_load_1", "location": "US"},
        "configuration": {"load": {"sourceUris": ["gs://b/x/*.parquet"],
                                   "destinationTable": {"projectId": "p", "datasetId": "d", "tableId": "t$20240301"}}},
        "status": {"state": "DONE"},
        "statistics": {"startTime": "1709251200000", "endTime": "1709251203000", "load": {"inputFileBytes": "4096"}},
    }, _client())
    record = cost_records.bigquery_job_record(job, RUN, PRICES)
    assert (record.bytes_billed, record.bytes_read, record.cost_usd) == (0, 4096, 0.0)


def batch(usage: dict | None):
    from google.cloud import dataproc_v1

    return dataproc_v1.Batch.to_dict(dataproc_v1.Batch(
        name="projects/pool-test-project/locations/us-central1/batches/features-20240301-0a1b2c3d",
        state="SUCCEEDED", create_time={"seconds": 1709251200}, state_time={"seconds": 1709251440},
        runtime_info={"approximate_usage": usage} if usage else {},
    ))


def test_a_batch_costs_its_dcu_hours_and_shuffle_gb_months():
    # One DCU-hour and one GB-month (730 h) of shuffle storage.
    record = cost_records.dataproc_batch_record(
        batch({"milli_dcu_seconds": 3_600_000, "shuffle_storage_gb_seconds": 730 * 3600}), RUN, PRICES)
    assert record.dataproc_compute_usd == pytest.approx(0.06)
    assert record.dataproc_shuffle_usd == pytest.approx(0.04)
    assert record.cost_usd == pytest.approx(0.10)
    assert (record.state, record.wall_seconds) == ("SUCCEEDED", 240.0)
    assert record.resource.endswith("/batches/features-20240301-0a1b2c3d")


def test_a_batch_without_reported_usage_has_an_unknown_cost_not_zero():
    record = cost_records.dataproc_batch_record(batch(None), RUN, PRICES)
    assert record.cost_usd is None and record.milli_dcu_seconds is None
    summary = cost_records.summarize([record])
    assert summary["cost_unknown_for"] == ["extract_day.export_outputs try 1"]


def test_every_kind_of_record_has_the_one_format_of_the_run_costs_table():
    schema = [f["name"] for f in json.loads((SCHEMA_DIR / "pool_classifier.run_costs.json").read_text())]
    records = [
        cost_records.bigquery_job_record(query_job(2**30), RUN, PRICES),
        cost_records.dataproc_batch_record(batch({"milli_dcu_seconds": 1000}), RUN, PRICES),
        cost_records.local_task_record(RUN, "host", "success", 0.0, 1.5, 10, PRICES),
    ]
    assert {r.kind for r in records} == set(cost_records.KINDS)
    for record in records:
        assert list(json.loads(record.to_json())) == sorted(schema)
        assert cost_records.CostRecord.from_mapping(json.loads(record.to_json())) == record


def test_the_summary_adds_up_a_run_per_task():
    records = [
        cost_records.bigquery_job_record(query_job(2**40 // 100), RUN, PRICES),
        cost_records.bigquery_job_record(query_job(2**40 // 100), dataclasses.replace(RUN, try_number=2), PRICES),
        cost_records.dataproc_batch_record(batch({"milli_dcu_seconds": 1_800_000, "shuffle_storage_gb_seconds": 0}),
                                       dataclasses.replace(RUN, task_id="build_features"), PRICES),
    ]
    summary = cost_records.summarize(records)
    assert summary["by_task_usd"] == {
        "build_features": pytest.approx(0.03), "extract_day.export_outputs": pytest.approx(2 * 6.25 / 100)}
    assert summary["cost_usd"] == pytest.approx(0.03 + 0.125)
    assert summary["dcu_hours"] == pytest.approx(0.5)
    text = cost_records.format_summary(summary, "cost")
    assert "$0.1550" in text and "0.500 DCU-hours" in text
    lines = cost_records.to_jsonl(records).splitlines()
    assert [json.loads(line)["try_number"] for line in lines] == [1, 2, 1]


def test_record_paths_keep_every_try_and_the_summary_apart(local_target):
    path = cost_records.record_path(local_target, RUN)
    assert path.endswith("/run_costs/dt=2024-03-01/run=scheduled__2024-03-01T00_00_00_00_00/"
                         "extract_day.export_outputs.try1.json")
    assert cost_records.is_record_name(path)
    assert not cost_records.is_record_name(cost_records.summary_path(local_target, "2024-03-01", RUN.run_id))
    assert not cost_records.is_record_name(cost_records.day_records_path(local_target, "2024-03-01"))


def test_a_record_names_the_task_try_from_the_airflow_context(local_target):
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="mining_pool_classifier", task_id="score_addresses", try_number=3)
    run = RunInfo.from_context({"ti": ti, "run_id": "manual__1", "ds": "2024-03-01"}, local_target)
    assert run == RunInfo("mining_pool_classifier", "manual__1", "2024-03-01", "score_addresses", 3, "local")
