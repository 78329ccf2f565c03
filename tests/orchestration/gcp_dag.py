"""The gcp target without a cloud account: its settings as production sets them (the
Variable as AIRFLOW_VAR_…, the target's environment variables), and a throw-away DAG built
from the gcp builders, its tasks rendered for one logical date the way a worker does.
(The fixtures `gcp_target` and `rendered` are made available to every test by tests/conftest.py.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SHARED_SCHEMA_DIR = PROJECT_ROOT.parent / "shared" / "data" / "schema"
DS = "2024-03-01"
BUCKET = "gs://pool-data-test"
SETTINGS = {
    "project": "pool-test-project",
    "service_account": "pool-classifier@pool-test-project.iam.gserviceaccount.com",
    "jobs_bucket": "gs://pool-jobs-test",
}
GOOGLE_TASKS = (
    "extract_day.export_blocks", "extract_day.export_outputs", "extract_day.export_inputs",
    "build_features", "train_model", "score_addresses",
    "publish_predictions.load_address_scores", "publish_predictions.load_block_pools",
)


def gcp_environment(mp: pytest.MonkeyPatch, settings: dict = SETTINGS) -> None:
    from pool_classifier import targets
    from pool_classifier.targets import gcp as gcp_config

    mp.setenv(targets.TARGET_ENV, "gcp")
    mp.setenv("POOL_CLASSIFIER_BUCKET", BUCKET)
    mp.setenv(f"AIRFLOW_VAR_{gcp_config.SETTINGS_VARIABLE.upper()}", json.dumps(settings))


def build_gcp_dag(target):
    """A throw-away DAG wired from the gcp target's builders (orchestration/gcp.py) as the DAG
    file wires them."""
    import pendulum
    from airflow.sdk import DAG, chain

    from pool_classifier.orchestration import tasks_for

    tasks = tasks_for(target)
    with DAG(
        "gcp_render_check", schedule="@daily", start_date=pendulum.datetime(2009, 1, 3, tz="UTC"),
        catchup=False, default_args={"owner": "data-engineering", "retries": 2},
    ) as dag:
        chain(tasks.extract_day(), tasks.build_features(), tasks.train_model(), tasks.score_addresses(),
              tasks.publish_predictions(), tasks.record_run_cost())
    return dag


def render(task, ds: str = DS):
    """Render a task's templated fields for `ds` as the task runner does before execute."""
    import pendulum

    day = pendulum.parse(ds)
    task.render_template_fields({
        "ds": ds, "ds_nodash": ds.replace("-", ""), "logical_date": day,
        "run_id": f"scheduled__{day.isoformat()}", "dag": task.dag, "task": task,
    })
    return task


@pytest.fixture(scope="module")
def gcp_target():
    with pytest.MonkeyPatch.context() as mp:
        gcp_environment(mp)
        from pool_classifier import targets

        yield targets.current_target()


@pytest.fixture(scope="module")
def rendered(gcp_target):
    """Every task of the gcp DAG, rendered for DS (settings from the Variable)."""
    with pytest.MonkeyPatch.context() as mp:
        gcp_environment(mp)
        dag = build_gcp_dag(gcp_target)
        tasks = {task.task_id: task for task in dag.tasks}
        for task_id in GOOGLE_TASKS:
            render(tasks[task_id])
        yield tasks
