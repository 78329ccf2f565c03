"""The local target's tasks: every step as a Python task on the worker, over the local bucket
folder (DuckDB for the extract SQL and the gates, local spark-submit for the Spark jobs).

Each local step records its cost (wall time, bytes of what its declaration says it reads)
and fails at once, without retries, on data errors.
"""
from __future__ import annotations

import contextlib
import logging

from airflow.exceptions import AirflowSkipException
from airflow.sdk import TaskGroup, task

from pool_classifier import datasets
from pool_classifier.orchestration.runbook import CLEAR_TO_RERUN
from pool_classifier.orchestration.tasks import PipelineTasks, context, ds, fail_without_retry_on_bad_data

log = logging.getLogger(__name__)

# The "usually takes" of the docs: `make run` (2 days × 20,000 transactions, 2 cores).
EXTRACT_SUMMARY = """One UTC day of the source through `include/sql/extract_<table>.sql`
(partition-pruned on the month column), transpiled by sqlglot and run by DuckDB on the local
warehouse (`warehouse/bigquery-public-data.duckdb`)."""
FEATURES_SUMMARY = """Runs `spark_jobs/build_features.py` (spark-submit `local[2]`): aggregates the
day's extracts into per-address partials, merges them into the state of the day before, labels
pool addresses from coinbase tags, and builds the active addresses' features and the training
set. Each output is written beside, then swapped in."""
TRAIN_SUMMARY = """Trains the challengers on the day's training set (time-based split on
`first_seen_time`), evaluates them with the champion on the same rows, and promotes the best
only if it beats the champion by the set margin (the log says why or why not). **The model
report:** `models/<version>/report.html` (path in the log and the XCom `report`)."""
SCORE_SUMMARY = """Scores the addresses active on `<ds>` (whose features changed) with the
champion, in Spark (`spark_jobs/score_addresses.py`: the model broadcast, `mapInPandas`), with
their profiles and anomaly scores and the top 5 feature contributions that explain each score
(docs/model.md), and checks drift: population stability per feature against
the champion's training data."""
PUBLISH_SUMMARY = """Publishes the day's predictions and per-block pools to the tables users query:
`warehouse/pool_classifier.duckdb`, the day deleted and inserted in one transaction. Then the
prediction API's serving snapshot of the day (`steps/publish_serving.py`): a new version of
`serving/dt=<ds>/`, and `serving/_current.json` switched to it last when the day is the newest,
so a running API (`make serve`) picks it up without restart and never sees half of it."""
COST_SUMMARY = """Runs last, whatever failed (a teardown: its failure does not fail the run). Adds
up the run's cost records (each local step's wall time and bytes read), writes `summary.json`
beside them and logs the table."""


class Tasks(PipelineTasks):
    """The local target's builders."""

    @contextlib.contextmanager
    def _local_step(self, task_id: str):
        """Run a local step: its cost recorded (wall time, bytes read), data errors failing at once."""
        from pool_classifier.io import cost_records
        from pool_classifier.steps.record_run_cost import local_step_inputs

        ctx = context()
        reads = local_step_inputs(self.target, task_id, ctx["ds"])
        with fail_without_retry_on_bad_data():
            with cost_records.measure_local_step(self.target, cost_records.RunInfo.from_context(ctx, self.target), reads):
                yield

    # ------------------------------------------------------------ what the base class asks

    def dry_run_estimate(self, day: str) -> str:
        from pool_classifier.steps.extract_day import count_blocks

        return count_blocks(self.target, day)

    def run_gate(self, gate: str, day: str) -> dict:
        from pool_classifier.steps import quality_gate

        return quality_gate.run(gate, self.target, day)

    def needs_training(self, day: str) -> bool:
        from pool_classifier.steps.should_train import needs_training

        return needs_training(self.target, day)

    # ------------------------------------------------------------ the steps

    def _extract_day(self):
        with TaskGroup(group_id="extract_day", tooltip="one UTC day of crypto_bitcoin, per table") as group:
            for table in datasets.EXTRACT_TABLES:
                self._export(table)
        return group

    def _export(self, table: str):
        builder = self

        @task(task_id=f"export_{table}", doc_md=self.doc(
            "extract_day", EXTRACT_SUMMARY, title=f"extract_day.export_{table}", takes="1–5 s on the demo data.",
            rerun=CLEAR_TO_RERUN,
            failures="""`No blocks on <ds>`: the source has no data that day — load it
            (`python -m pool_classifier.io.warehouse load DIR`), or pick a date the data covers
            (fails at once, no retry)."""))
        def export_task() -> dict:
            from pool_classifier.steps.extract_day import extract_table

            with builder._local_step("extract_day"):
                return extract_table(builder.target, ds(), table)

        return export_task()

    def _build_features(self):
        builder = self

        @task(task_id="build_features", doc_md=self.doc(
            "build_features", FEATURES_SUMMARY, takes="20–40 s on the demo data.",
            rerun="""clear it; re-running an old day removes the states of later days: re-run those
            days after it, in date order.""",
            failures="""`no state for <day>`: a day of the history was never built — run the days it
            names first, in date order (fails at once, no retry). `Spark job build_features.py
            failed`: the error holds the job's last lines."""))
        def build_features_task() -> str:
            from pool_classifier.steps.build_features import build_features

            with builder._local_step("build_features"):
                return build_features(builder.target, ds())

        return build_features_task()

    def _train_model(self):
        builder = self

        @task(task_id="train_model", doc_md=self.doc(
            "train_model", TRAIN_SUMMARY, takes="5–30 s on the demo data.", rerun=CLEAR_TO_RERUN,
            failures="""`TrainingDataError`: too few labelled pool addresses or no evaluation
            positives that day (fails at once): build more days or lower `--min-coinbase-outputs`."""))
        def train_model_task() -> dict:
            from pool_classifier.steps.train_model import train_model

            with builder._local_step("train_model"):
                result = train_model(builder.target, ds())
            log.info("champion/challenger: %s", result.get("reason"))
            log.info("model report: %s", result.get("report"))
            return result

        return train_model_task()

    def _score_addresses(self):
        builder = self

        @task(task_id="score_addresses", doc_md=self.doc(
            "score_addresses", SCORE_SUMMARY, takes="15–30 s on the demo data.", rerun=CLEAR_TO_RERUN,
            failures="""`DriftError` names the features far out of their training distribution
            (retrain with `retrain=always`, or investigate the day's data). `ModelMismatchError`:
            the champion needs features or library versions this deployment lacks — retrain, or
            deploy the versions in its metadata."""))
        def score_addresses_task() -> dict:
            from pool_classifier.steps.score_addresses import score_addresses

            with builder._local_step("score_addresses"):
                return score_addresses(builder.target, ds())

        return score_addresses_task()

    def _publish_predictions(self):
        builder = self

        @task(task_id="publish_predictions", doc_md=self.doc(
            "publish_predictions", PUBLISH_SUMMARY, takes="< 5 s.", rerun=CLEAR_TO_RERUN,
            failures="a locked DuckDB file (another process holds it): close it and clear the task."))
        def publish_task() -> dict:
            from pool_classifier.steps import publish_serving
            from pool_classifier.steps.publish_predictions import publish_day

            with builder._local_step("publish_predictions"):
                return {**publish_day(builder.target, ds()), "serving": publish_serving.publish(builder.target, ds())}

        return publish_task()

    def _record_run_cost(self):
        builder = self

        @task(task_id="record_run_cost", doc_md=self.doc(
            "record_run_cost", COST_SUMMARY, takes="< 1 s.", rerun="clear it; each run keeps its own records.",
            failures="""`cost record without <fields>` names a malformed record; as a teardown it
            leaves the run's state as it was."""))
        def record_run_cost_task() -> str:
            from pool_classifier.steps.record_run_cost import summarize_local_run

            ctx = context()
            try:
                table = summarize_local_run(builder.target, ctx["ds"], ctx["run_id"])
            except Exception:  # noqa: BLE001 - a teardown that reports must not fail the run
                log.exception("the run's cost could not be summed up")
                raise AirflowSkipException("no cost summary (see the log)") from None
            log.info("%s", table)
            return table

        return record_run_cost_task()


# ---------------------------------------------------------------- the hourly DAG (pool_activity_hourly)

from pool_classifier.orchestration import hourly  # noqa: E402


class HourlyTasks(hourly.HourlyTasks):
    """The local target's hourly builders: the window read from the local warehouse, coinbase
    outputs included (payout addresses attribute, fees are known)."""

    merge_takes = "< 3 s on the demo data (2 DuckDB queries, a few dozen blocks)."
    merge_failures = """`No local warehouse at …`: load the chain first (`make run`, or the live demo
    `python -m tools.live_chain`). A locked warehouse (the loader is writing it): the retry passes.
    `window_hours=…`: the form's window is out of 2…48."""

    def window_source(self):
        from pool_classifier.steps.merge_pool_activity import WarehouseSource

        return WarehouseSource(self.target.warehouse)
