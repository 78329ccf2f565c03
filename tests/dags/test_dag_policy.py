"""Policy tests over every DAG of the DagBag: they import cleanly and carry what on-call
needs (owner, tags, retries, docs); parsing them stays cheap."""
from __future__ import annotations

import pytest

from pool_classifier import steps
from tests.conftest import PROJECT_ROOT
from tests.dags.parsing import modules_loaded_by_parsing

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


STEPS = ["check_request", "extract_day", "check_extract", "build_features", "check_features",
         "should_train", "train_model", "score_addresses", "check_scores", "publish_predictions",
         "record_run_cost"]


def test_the_steps_are_declared_in_pipeline_order():
    assert list(steps.ORDER) == STEPS


def dag_for(target_name: str, monkeypatch):
    """The DAG file parsed for a target (gcp with the settings production gives it)."""
    from airflow.models.dagbag import DagBag

    if target_name == "gcp":
        from tests.orchestration.gcp_dag import gcp_environment

        gcp_environment(monkeypatch)
    else:
        monkeypatch.setenv("POOL_CLASSIFIER_TARGET", "local")
    bag = DagBag(dag_folder=str(DAGS_FOLDER / "mining_pool_classifier.py"), include_examples=False)
    assert bag.import_errors == {}
    return bag.dags["mining_pool_classifier"]


@pytest.mark.parametrize("target_name", ["local", "gcp"])
def test_every_task_doc_answers_the_runbook_questions(target_name, monkeypatch):
    """On-call finds the same five answers on every task: reads, writes, usual duration,
    how to re-run, common failures (pool_classifier.orchestration.runbook)."""
    from pool_classifier.orchestration.runbook import LABELS

    dag = dag_for(target_name, monkeypatch)
    for task in dag.tasks:
        missing = [label for label in LABELS if f"- **{label}:** " not in (task.doc_md or "")]
        assert not missing, f"{target_name}: {task.task_id}'s doc lacks {missing}"
        assert "{" not in task.doc_md, (
            f"{target_name}: {task.task_id}'s doc has an unfilled placeholder")
        # What it reads and writes is its step's declaration, never a copy that can drift.
        assert f"- **Reads:** {steps.reads_doc(task.task_id)}" in task.doc_md, task.task_id
        assert f"- **Writes:** {steps.writes_doc(task.task_id)}" in task.doc_md, task.task_id


@pytest.mark.parametrize("target_name", ["local", "gcp"])
def test_pipeline_shape_is_the_same_on_both_targets(target_name, monkeypatch):
    dag = dag_for(target_name, monkeypatch)

    def step(task_id: str) -> str:
        return task_id.split(".")[0]

    assert {step(t) for t in dag.task_ids} == set(STEPS)
    assert {t for t in dag.task_ids if step(t) == "extract_day"} == {
        "extract_day.export_blocks", "extract_day.export_outputs", "extract_day.export_inputs"}
    for upstream, downstream in zip(STEPS, STEPS[1:]):
        below = {t for t in dag.task_ids if step(t) == downstream}
        for task in (t for t in dag.tasks if step(t.task_id) == upstream):
            assert task.downstream_task_ids & below, f"{task.task_id} → {downstream}"
    assert dag.timetable.summary in ("@daily", "0 0 * * *")
    # Training may be skipped (not a training day): scoring still runs with the champion.
    assert dag.get_task("score_addresses").trigger_rule == "none_failed"
    assert dag.get_task("record_run_cost").is_teardown
    assert f"target:{target_name}" in dag.tags


@pytest.mark.parametrize("target_name", ["local", "gcp"])
def test_outputs_are_assets_in_pipeline_order(target_name, monkeypatch):
    dag = dag_for(target_name, monkeypatch)
    produced = {
        step: [a.name for t in dag.tasks if t.task_id.split(".")[0] == step for a in t.outlets]
        for step in ("extract_day", "build_features", "train_model", "score_addresses")
    }
    assert produced == {
        "extract_day": ["pool_classifier.extracts"] * 3,
        "build_features": ["pool_classifier.features"],
        "train_model": ["pool_classifier.models"],
        "score_addresses": ["pool_classifier.predictions"],
    }


def test_the_form_and_the_alerts_are_wired(monkeypatch):
    monkeypatch.setenv("POOL_CLASSIFIER_DEADLINE_ALERT", "on")
    dag = dag_for("local", monkeypatch)
    assert set(dag.params) == {"date_from", "date_to", "target", "retrain", "dry_run"}
    assert dag.params["target"] == "local" and dag.params["retrain"] == "auto"
    assert [type(d).__name__ for d in (dag.deadline if isinstance(dag.deadline, list) else [dag.deadline])] == ["DeadlineAlert"]
    for task in dag.tasks:
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(type(c).__name__ == "OnCallNotifier" for c in callbacks), task.task_id


@pytest.mark.parametrize("target_name, allowed", [("local", ()), ("gcp", ("pandas",))])
def test_parsing_imports_nothing_heavy(target_name, allowed, monkeypatch):
    """Parsing runs in the scheduler loop: no DuckDB, Spark, scikit-learn or pandas there
    (the Google provider's operators import pandas themselves: allowed on gcp only)."""
    if target_name == "gcp":
        from tests.orchestration.gcp_dag import gcp_environment

        gcp_environment(monkeypatch)
    loaded = modules_loaded_by_parsing(DAGS_FOLDER / "mining_pool_classifier.py",
                                       ("duckdb", "pyspark", "sklearn", "pandas", "sqlglot", "joblib"))
    assert [m for m in loaded if m not in allowed] == []


def test_unknown_target_is_refused_by_name(monkeypatch):
    from pool_classifier import targets

    monkeypatch.setenv(targets.TARGET_ENV, "azure")
    with pytest.raises(ValueError, match="POOL_CLASSIFIER_TARGET='azure'"):
        targets.current_target()


def test_data_errors_fail_the_task_without_retry():
    """A day with no blocks fails the same way on every retry: fail at once, saying why."""
    from airflow.exceptions import AirflowFailException

    from pool_classifier.orchestration.tasks import fail_without_retry_on_bad_data
    from pool_classifier.steps.extract_day import NoBlocksError

    with pytest.raises(AirflowFailException, match="NoBlocksError: No blocks on 2015-08-01"):
        with fail_without_retry_on_bad_data():
            raise NoBlocksError("No blocks on 2015-08-01 in `crypto_bitcoin.blocks`")
    with pytest.raises(OSError):  # anything else may be passing: retries apply
        with fail_without_retry_on_bad_data():
            raise OSError("disk hiccup")


def test_both_targets_build_every_step_under_the_same_names():
    """The target is chosen once: each builder has one method per step, none of its own."""
    import inspect

    from pool_classifier.orchestration import gcp, local, tasks

    for builder in (local.Tasks, gcp.Tasks):
        assert not inspect.isabstract(builder), builder
        public = {name for name, _ in inspect.getmembers(builder, inspect.isfunction) if not name.startswith("_")}
        assert public - {"doc", "assets", "gate_doc", "dry_run_estimate", "run_gate", "needs_training"} == set(STEPS)
        assert not set(STEPS) & set(vars(builder)), f"{builder.__module__} overrides a step's method"
    assert issubclass(local.Tasks, tasks.PipelineTasks) and issubclass(gcp.Tasks, tasks.PipelineTasks)
