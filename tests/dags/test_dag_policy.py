"""Policy tests over every DAG of the DagBag: they import cleanly and carry what on-call
needs (owner, tags, retries, docs); parsing them stays cheap."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

DAGS_FOLDER = PROJECT_ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER), include_examples=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "mining_pool_classifier" in dagbag.dags


def _dags():
    from airflow.models.dagbag import DagBag

    return sorted(DagBag(dag_folder=str(DAGS_FOLDER), include_examples=False).dags.items())


@pytest.mark.parametrize("dag_id,dag", _dags())
def test_dag_carries_owner_tags_retries_and_docs(dag_id, dag):
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs a runbook in doc_md"
    assert dag.max_active_runs == 1 or dag.catchup is False
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: set an owner"
        assert task.retries >= 1, f"{dag_id}.{task.task_id}: retries"
        assert task.doc_md, f"{dag_id}.{task.task_id}: task doc (what it reads/writes, fixes)"


def test_pipeline_shape(dagbag):
    dag = dagbag.dags["mining_pool_classifier"]
    order = ["extract_day", "build_features", "train_model", "score_addresses"]
    assert sorted(dag.task_ids) == sorted(order)
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.timetable.summary in ("@daily", "0 0 * * *")


def test_parsing_imports_nothing_heavy():
    """Parsing runs in the scheduler loop: no DuckDB, Spark, scikit-learn or pandas there."""
    code = (
        "import runpy, sys, json; "
        f"runpy.run_path({str(DAGS_FOLDER / 'mining_pool_classifier.py')!r}); "
        "print(json.dumps([m for m in ('duckdb', 'pyspark', 'sklearn', 'pandas', 'sqlglot', "
        "'joblib') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(PROJECT_ROOT / "plugins")},
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_unknown_target_is_refused_by_name(monkeypatch):
    from pool_classifier import targets

    monkeypatch.setenv(targets.TARGET_ENV, "azure")
    with pytest.raises(ValueError, match="POOL_CLASSIFIER_TARGET='azure'"):
        targets.current_target()


def test_data_errors_fail_the_task_without_retry():
    """A day with no blocks fails the same way on every retry: fail at once, saying why."""
    from airflow.exceptions import AirflowFailException

    from pool_classifier import dag_steps
    from pool_classifier.extract import NoBlocksError

    with pytest.raises(AirflowFailException, match="NoBlocksError: No blocks on 2015-08-01"):
        with dag_steps._fail_without_retry_on_bad_data():
            raise NoBlocksError("No blocks on 2015-08-01 in `crypto_bitcoin.blocks`")
    with pytest.raises(OSError):  # anything else may be passing: retries apply
        with dag_steps._fail_without_retry_on_bad_data():
            raise OSError("disk hiccup")
