"""Policy tests of the hourly DAG (`pool_activity_hourly`) on both targets: the same task ids, each
task's runbook doc from its step's declaration, the schedule and the form, cheap parsing. The
policies every DAG shares (owner, tags, retries, docs) run over the DagBag in test_dag_policy.py."""
from __future__ import annotations

import pytest

from pool_classifier import steps
from tests.conftest import PROJECT_ROOT
from tests.dags.parsing import modules_loaded_by_parsing

DAG_FILE = PROJECT_ROOT / "dags" / "pool_activity_hourly.py"
HOURLY_STEPS = ["merge_pool_activity", "publish_pool_activity"]


def hourly_dag(target_name: str, monkeypatch):
    from airflow.models.dagbag import DagBag

    if target_name == "gcp":
        from tests.orchestration.gcp_dag import gcp_environment

        gcp_environment(monkeypatch)
    else:
        monkeypatch.setenv("POOL_CLASSIFIER_TARGET", "local")
    bag = DagBag(dag_folder=str(DAG_FILE), include_examples=False)
    assert bag.import_errors == {}
    return bag.dags["pool_activity_hourly"]


def test_the_hourly_steps_are_declared_in_order_apart_from_the_daily_ones():
    assert list(steps.HOURLY_ORDER) == HOURLY_STEPS
    assert not set(steps.HOURLY_STEPS) & set(steps.STEPS)


@pytest.mark.parametrize("target_name", ["local", "gcp"])
def test_same_shape_schedule_and_docs_on_both_targets(target_name, monkeypatch):
    from pool_classifier.orchestration.runbook import LABELS

    dag = hourly_dag(target_name, monkeypatch)
    assert dag.task_ids == HOURLY_STEPS
    assert dag.get_task("merge_pool_activity").downstream_task_ids == {"publish_pool_activity"}
    assert dag.timetable.summary in ("@hourly", "0 * * * *")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert f"target:{target_name}" in dag.tags
    assert steps.markdown_table(steps.HOURLY_STEPS) in dag.doc_md
    for task in dag.tasks:
        missing = [label for label in LABELS if f"- **{label}:** " not in (task.doc_md or "")]
        assert not missing, f"{target_name}: {task.task_id}'s doc lacks {missing}"
        assert "{" not in task.doc_md, f"{target_name}: {task.task_id}'s doc has an unfilled placeholder"
        assert f"- **Reads:** {steps.reads_doc(task.task_id)}" in task.doc_md
        assert f"- **Writes:** {steps.writes_doc(task.task_id)}" in task.doc_md
        assert task.retries >= 1 and task.owner == "data-engineering"
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(type(c).__name__ == "OnCallNotifier" for c in callbacks), task.task_id


def test_the_form_bounds_the_window(monkeypatch):
    dag = hourly_dag("local", monkeypatch)
    assert set(dag.params) == {"hour", "window_hours"}
    schema = dag.params.get_param("window_hours").schema
    assert schema["minimum"] == 2 and dag.params["window_hours"] == 3


def test_the_target_builders_differ_only_in_the_window_source():
    import inspect

    from pool_classifier.orchestration import gcp, hourly, local

    for builder in (local.HourlyTasks, gcp.HourlyTasks):
        assert issubclass(builder, hourly.HourlyTasks) and not inspect.isabstract(builder)
        assert not set(HOURLY_STEPS) & set(vars(builder)), f"{builder.__module__} overrides a step's method"
        public = {n for n, _ in inspect.getmembers(builder, inspect.isfunction) if not n.startswith("_")}
        assert public - {"doc", "window_source"} == set(HOURLY_STEPS)


@pytest.mark.parametrize("target_name, allowed", [("local", ()), ("gcp", ("pandas", "pyarrow"))])
def test_parsing_imports_nothing_heavy(target_name, allowed, monkeypatch):
    """As the daily DAG: nothing heavy at parse time (the Google provider imports pandas, and
    with it pyarrow, itself: allowed on gcp only)."""
    if target_name == "gcp":
        from tests.orchestration.gcp_dag import gcp_environment

        gcp_environment(monkeypatch)
    loaded = modules_loaded_by_parsing(DAG_FILE, ("duckdb", "pyspark", "sklearn", "pandas", "pyarrow", "sqlglot",
                                                  "joblib"))
    assert [m for m in loaded if m not in allowed] == []


def test_the_gcp_query_is_capped_pruned_and_refused_without_its_partition_filter():
    """The hourly query's job body, validated by the client library offline (no network)."""
    import datetime as dt

    from google.cloud import bigquery

    from pool_classifier.orchestration.gcp import hourly_query_configuration
    from pool_classifier.steps.merge_pool_activity import render_sql
    from pool_classifier.targets import gcp

    start = dt.datetime(2024, 2, 29, 22, tzinfo=dt.timezone.utc)
    select = render_sql("hourly_blocks", start, start + dt.timedelta(hours=3))
    assert "timestamp_month BETWEEN DATE_TRUNC(DATE '2024-02-29', MONTH) AND DATE_TRUNC(DATE '2024-03-01', MONTH)" in select
    configuration = hourly_query_configuration(select, "2024-03-01t00")
    job = bigquery.QueryJobConfig.from_api_repr(configuration)
    assert job.maximum_bytes_billed == gcp.HOURLY_MAX_BYTES_BILLED == 100 * 2**20
    assert job.labels["step"] == "merge-pool-activity" and job.use_legacy_sql is False
    unpruned = select.replace("timestamp_month BETWEEN", "DATE(`timestamp`) BETWEEN")
    with pytest.raises(ValueError, match="partition column `timestamp_month`"):
        hourly_query_configuration(unpruned, "2024-03-01t00")


def test_the_gcp_dry_run_and_the_job_as_the_client_library_sends_them():
    """The two job bodies of a window, built as the client library builds them (no call is made)."""
    import datetime as dt

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from pool_classifier.orchestration.gcp import BigQueryWindowSource
    from pool_classifier.targets import gcp

    client = bigquery.Client(project="pool-test-project", credentials=AnonymousCredentials())
    source = BigQueryWindowSource(client, "2024-03-01t12")
    start = dt.datetime(2024, 3, 1, 10, tzinfo=dt.timezone.utc)
    select, dry, config = source.job_configs(start, start + dt.timedelta(hours=3))
    assert "TIMESTAMP '2024-03-01 10:00:00'" in select and "TIMESTAMP '2024-03-01 13:00:00'" in select
    for job_config, dry_run in ((dry, True), (config, False)):
        body = bigquery.QueryJob("job-1", select, client, job_config=job_config).to_api_repr()["configuration"]
        assert body.get("dryRun", False) is dry_run
        assert body["query"]["query"] == select and body["query"]["useLegacySql"] is False
        assert int(body["query"]["maximumBytesBilled"]) == gcp.HOURLY_MAX_BYTES_BILLED
        assert body["labels"] == {"pipeline": "mining-pool-classifier", "step": "merge-pool-activity",
                                  "logical-date": "2024-03-01t12"}
    assert dry.use_query_cache is False and source.coinbase_outputs(start, start) is None
    assert source.attribution_inputs == "tags"
