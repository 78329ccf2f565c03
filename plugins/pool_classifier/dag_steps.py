"""One builder per kind of step of the `mining_pool_classifier` DAG.

The only module of the package that knows Airflow. Each builder returns the task for
the current target; the DAG file wires them and never branches on the target. The
step code itself (extract, features, train, score) is imported inside the tasks, so
parsing the DAG imports neither DuckDB, Spark nor scikit-learn.
"""
from __future__ import annotations

import contextlib

from airflow.exceptions import AirflowFailException
from airflow.sdk import get_current_context, task

from pool_classifier.targets import Target

EXTRACT_DOC = """
#### extract_day
Reads one UTC day of `crypto_bitcoin.blocks` and `.transactions` (partition-pruned on
the month column) with the SQL in `include/sql/extract_{blocks,outputs,inputs}.sql`;
writes `extracts/{blocks,outputs,inputs}/dt=<ds>/` as Parquet, replacing the day.
Fails with "No blocks on <ds>" when the source has no block that day.
"""

FEATURES_DOC = """
#### build_features
Runs the Spark job `spark_jobs/build_features.py`: aggregates the day's extracts into
per-address partials and merges them into the state of the day before
(`state/address_state/dt=<ds-1>`); writes `state/{address_state,coinbase_receipts}/dt=<ds>/`
and `features/{address_features,block_pools,address_labels,training_features}/dt=<ds>/`,
replacing the day. Re-running a day removes the states of later days (they were built on
the old one): re-run those days in order.
Fails with `no state for <day>` when the day before was never built: run the days it
names first, in date order.
"""

TRAIN_DOC = """
#### train_model
Fits the random forest on `<ds>`'s training set (seeded); writes
`models/rf-<ds>/{model.joblib,metadata.json}`. Fails with a message when fewer than 10
pool addresses are labelled that day.
"""

SCORE_DOC = """
#### score_addresses
Scores the addresses active on `<ds>` (whose features changed) with the model trained
for the day; writes
`predictions/address_scores/dt=<ds>/predictions.parquet`, replacing the day.
"""


def _ds() -> str:
    return get_current_context()["ds"]


@contextlib.contextmanager
def _fail_without_retry_on_bad_data():
    """Errors about the data itself fail the task at once: a retry would fail the same way."""
    from pool_classifier.extract import NoBlocksError
    from pool_classifier.score import ModelMismatchError
    from pool_classifier.spark_submit import SparkJobDataError
    from pool_classifier.train import TrainingDataError
    from pool_classifier.warehouse import WarehouseLoadError

    try:
        yield
    except (
        NoBlocksError, TrainingDataError, ModelMismatchError, WarehouseLoadError, SparkJobDataError
    ) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _local_only(target: Target) -> None:
    if target.name != "local":
        raise NotImplementedError(
            f"target {target.name!r}: its Google Cloud operators are not built yet; "
            "run with POOL_CLASSIFIER_TARGET=local."
        )


def extract_day(target: Target):
    _local_only(target)

    @task(task_id="extract_day", doc_md=EXTRACT_DOC)
    def extract_day_task() -> dict:
        from pool_classifier.extract import extract_day as run

        with _fail_without_retry_on_bad_data():
            return run(target, _ds())

    return extract_day_task()


def build_features(target: Target):
    _local_only(target)

    @task(task_id="build_features", doc_md=FEATURES_DOC)
    def build_features_task() -> str:
        from pool_classifier.features import build_features as run

        with _fail_without_retry_on_bad_data():
            return run(target, _ds())

    return build_features_task()


def train_model(target: Target):
    _local_only(target)

    @task(task_id="train_model", doc_md=TRAIN_DOC)
    def train_model_task() -> dict:
        from pool_classifier.train import train_model as run

        with _fail_without_retry_on_bad_data():
            metadata = run(target, _ds())
        return {"version": metadata["version"], "path": metadata["path"], "metrics": metadata["metrics"]}

    return train_model_task()


def score_addresses(target: Target, model):
    _local_only(target)

    @task(task_id="score_addresses", doc_md=SCORE_DOC)
    def score_addresses_task(model: dict) -> dict:
        from pool_classifier.score import score_addresses as run

        with _fail_without_retry_on_bad_data():
            return run(target, _ds(), model["version"])

    return score_addresses_task(model)
