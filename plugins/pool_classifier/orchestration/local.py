"""One builder per kind of step of the `mining_pool_classifier` DAG.

The only module of the package that knows Airflow (with `gcp_tasks`, the Google operators
of the `gcp` target). Each builder returns the task (or task group) of its step for the
current target, under the same id on both targets; the DAG file wires them and never
branches on the target. The step code itself (extract, features, train, score…) is
imported inside the tasks, so parsing the DAG imports neither DuckDB, Spark nor
scikit-learn.

Task docs (`doc_md`) are the runbook of each step: what it reads and writes, how long it
usually takes, how to re-run it, and its common failures with their fix.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from airflow.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk import Asset, TaskGroup, get_current_context, task

from pool_classifier import datasets
from pool_classifier.orchestration.runbook import CLEAR_TO_RERUN, task_doc
from pool_classifier.targets import Target

log = logging.getLogger(__name__)

# The task docs' "usually" durations: `make run` (2 days × 20,000 transactions, 2 cores) and,
# for gcp, docs/gcp.md's estimates. The gcp tasks' own docs are in gcp_tasks.
CHECK_REQUEST_DOC = task_doc(
    "check_request",
    """Checks the run's form (Params) before any work: `date_from`/`date_to` (optional; the
    logical date must lie inside), `target` (must be this deployment's), `retrain`
    (auto/always/never), `dry_run`. With `dry_run` it logs what the run would read and write
    (on gcp: BigQuery's estimate of the bytes the extract would scan) and skips everything
    else.""",
    reads="the run's form (its conf) and the deployment's target (`POOL_CLASSIFIER_TARGET`).",
    writes="nothing (the checked request, in its log and XCom).",
    takes="< 1 s.",
    rerun="trigger a new run with a corrected form: clearing re-checks the same form.",
    failures="`<field>: …` names the field of the form that is wrong and how to fix it.",
)

EXTRACT_DOC = task_doc(
    "extract_day.export_<table>",
    """One UTC day of the source through `include/sql/extract_<table>.sql` (partition-pruned
    on the month column), transpiled by sqlglot and run by DuckDB on the local warehouse.""",
    reads="`crypto_bitcoin.blocks` / `.transactions` for `<ds>` in "
          "`warehouse/bigquery-public-data.duckdb`.",
    writes="`extracts/<table>/dt=<ds>/` (Parquet), replacing the day.",
    takes="1–5 s on the demo data.",
    rerun=CLEAR_TO_RERUN,
    failures="""`No blocks on <ds>`: the source has no data that day — load it
    (`python -m pool_classifier.io.warehouse load DIR`), or pick a date the data covers (fails
    at once, no retry).""",
)

GATE_DOCS = {
    "extract": task_doc(
        "check_extract",
        """Data-quality gate after the extract: block numbers contiguous for the day (and with
        the day before), the transactions equal the blocks' `transaction_count` sums, no
        duplicate hashes, values within 0…21 M BTC.""",
        reads="`extracts/*/dt=<ds>/` and the last block of the day before.",
        writes="its figures, passed or not, to `quality/extract/dt=<ds>/figures.json`.",
        takes="< 2 s.",
        rerun="after fixing the source, clear `extract_day` and everything downstream.",
        failures="""`QualityGateError` lists each failed check with the expected and the
        observed numbers; the run stops before the features. Fix or reload the day's source,
        then re-run from `extract_day`.""",
    ),
    "features": task_doc(
        "check_features",
        "Data-quality gate after the features: null rates and ranges per feature of the day's active addresses.",
        reads="`features/address_features/dt=<ds>/`.",
        writes="its figures to `quality/features/dt=<ds>/figures.json`.",
        takes="< 2 s.",
        rerun="clear it (after a re-run of `build_features` if the features were wrong).",
        failures="""`QualityGateError` names the feature, the expected range and the observed
        value; the run stops before training. A wrong input day usually shows first in
        `check_extract`; otherwise the features job changed — see its log.""",
    ),
    "scores": task_doc(
        "check_scores",
        """Data-quality gate after scoring: every active address scored once with a score in
        [0, 1], and the score distribution compared with the day before (population
        stability).""",
        reads="`predictions/address_scores/dt=<ds>/` and the day before's, and the day's features.",
        writes="its figures to `quality/scores/dt=<ds>/figures.json`.",
        takes="< 2 s.",
        rerun="clear it; once it passes, `publish_predictions` runs.",
        failures="""`QualityGateError` names the check, the expected and the observed numbers;
        nothing is published. A new champion can shift scores: read the model report of
        `train_model`, then clear this gate if the shift is explained.""",
    ),
}

FEATURES_DOC = task_doc(
    "build_features",
    """Runs `spark_jobs/build_features.py` (spark-submit `local[2]`): aggregates the day's
    extracts into per-address partials, merges them into the state of the day before, labels
    pool addresses from coinbase tags, and builds the active addresses' features and the
    training set.""",
    reads="`extracts/*/dt=<ds>/`, `state/*/dt=<ds-1>/` and `include/pools/pools-v2.json`.",
    writes="""`state/{address_state,coinbase_receipts}/dt=<ds>/` and
    `features/{address_features,block_pools,address_labels,training_features}/dt=<ds>/`, each
    replacing the day (written beside, then swapped in).""",
    takes="20–40 s on the demo data.",
    rerun="""clear it; re-running an old day removes the states of later days: re-run those
    days after it, in date order.""",
    failures="""`no state for <day>`: a day of the history was never built — run the days it
    names first, in date order (fails at once, no retry). `Spark job build_features.py
    failed`: the error holds the job's last lines.""",
)

SHOULD_TRAIN_DOC = task_doc(
    "should_train",
    """Decides whether this run retrains: the form's `retrain` (`always`/`never`), else the
    cadence (`TrainConfig.retrain_every_days`: 1 in the demo, 7 is sensible in production) —
    and always when there is no champion yet. When not, `train_model` is skipped and scoring
    uses the champion in force.""",
    reads="the form's `retrain`, the cadence and `models/champion.json`.",
    writes="nothing (skips `train_model` when it is not a training day).",
    takes="< 1 s.",
    rerun="clear it, or trigger the day with `retrain=always` to force a training.",
    failures="none expected; a skipped `train_model` is the normal outcome on other days.",
)

TRAIN_DOC = task_doc(
    "train_model",
    """Trains the challengers on the day's training set (time-based split on
    `first_seen_time`), evaluates them with the champion on the same rows, and promotes the
    best only if it beats the champion by the set margin (the log says why or why not).
    **The model report:** `models/<version>/report.html` (path in the log and the XCom
    `report`).""",
    reads="`features/training_features/dt=<ds>/` and the registry (`models/`).",
    writes="""`models/<version>/` (model.joblib, metadata.json, report.md, report.html,
    plots); moves `models/champion.json` only on a promotion.""",
    takes="5–30 s on the demo data.",
    rerun=CLEAR_TO_RERUN,
    failures="""`TrainingDataError`: too few labelled pool addresses or no evaluation
    positives that day (fails at once): build more days or lower `--min-coinbase-outputs`.""",
)

SCORE_DOC = task_doc(
    "score_addresses",
    """Scores the addresses active on `<ds>` (whose features changed) with the champion, in
    Spark (`spark_jobs/score_addresses.py`: the model broadcast, `mapInPandas`), with their
    profiles and anomaly scores, and checks drift: population stability per feature against
    the champion's training data.""",
    reads="`features/address_features/dt=<ds>/`, the day's labels and the champion in `models/`.",
    writes="""`predictions/address_scores/dt=<ds>/` (with the model version), the profiles
    beside it and the drift report, each replacing the day.""",
    takes="15–30 s on the demo data.",
    rerun=CLEAR_TO_RERUN,
    failures="""`DriftError` names the features far out of their training distribution
    (retrain with `retrain=always`, or investigate the day's data). `ModelMismatchError`: the
    champion needs features or library versions this deployment lacks — retrain, or deploy
    the versions in its metadata.""",
)

PUBLISH_DOC = task_doc(
    "publish_predictions",
    "Publishes the day's predictions and per-block pools to the tables users query.",
    reads="`predictions/address_scores/dt=<ds>/` and `features/block_pools/dt=<ds>/`.",
    writes="""the tables `address_scores` and `block_pools` in
    `warehouse/pool_classifier.duckdb` (the day deleted and inserted in one transaction).""",
    takes="< 5 s.",
    rerun=CLEAR_TO_RERUN,
    failures="a locked DuckDB file (another process holds it): close it and clear the task.",
)

LOCAL_COST_DOC = task_doc(
    "record_run_cost",
    """Runs last, whatever failed (a teardown: its failure does not fail the run). Adds up the
    run's cost records and logs the table.""",
    reads="`run_costs/dt=<ds>/run=<run_id>/`: each local step's wall time and bytes read.",
    writes="`summary.json` beside them.",
    takes="< 1 s.",
    rerun="clear it; each run keeps its own records.",
    failures="`cost record without <fields>` names a malformed record; as a teardown it leaves the run's state as it was.",
)


def _context() -> dict:
    return get_current_context()


def _ds() -> str:
    return _context()["ds"]


def assets(target: Target) -> dict[str, Asset]:
    """The pipeline's outputs, declared so that the UI shows their lineage."""
    def uri(path: str) -> str:
        return path if "://" in path else Path(path).as_uri()

    return {
        "extracts": Asset(name="pool_classifier.extracts", uri=uri(datasets.extracts_root(target))),
        "features": Asset(name="pool_classifier.features", uri=uri(datasets.features_root(target))),
        "models": Asset(name="pool_classifier.models", uri=uri(datasets.models_root(target))),
        "predictions": Asset(name="pool_classifier.predictions", uri=uri(datasets.predictions_root(target))),
    }


def _operator(step):
    """The operator of a builder's result (a `@task` call returns its XComArg)."""
    return getattr(step, "operator", step)


def _data_errors() -> tuple[type[Exception], ...]:
    """Errors about the data or the request that a retry would not fix."""
    from pool_classifier.model.drift import DriftError, FeatureDataError
    from pool_classifier.steps.extract_day import NoBlocksError
    from pool_classifier.steps.quality_gates import QualityGateError
    from pool_classifier.model.registry import ModelMismatchError, ModelNotFoundError
    from pool_classifier.io.spark_runner import SparkJobDataError
    from pool_classifier.steps.train_model import TrainingDataError
    from pool_classifier.io.warehouse import WarehouseLoadError

    return (NoBlocksError, TrainingDataError, ModelMismatchError, ModelNotFoundError,
            WarehouseLoadError, SparkJobDataError, QualityGateError, DriftError, FeatureDataError)


@contextlib.contextmanager
def _fail_without_retry_on_bad_data():
    """Errors about the data fail the task at once: a retry would fail the same way."""
    try:
        yield
    except _data_errors() as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def _local_step(target: Target, step: str):
    """Run a local step: its cost recorded (wall time, bytes read), data errors failing at once."""
    from pool_classifier.io import cost_records as run_cost

    context = _context()
    reads = run_cost.local_step_inputs(target, step, context["ds"])
    with _fail_without_retry_on_bad_data():
        with run_cost.measure_local_step(target, run_cost.RunInfo.from_context(context, target), reads):
            yield


# ---------------------------------------------------------------- the builders


def check_request(target: Target):
    @task.short_circuit(task_id="check_request", doc_md=CHECK_REQUEST_DOC)
    def check_request_task() -> bool:
        from pool_classifier.steps.check_request import RunRequestError
        from pool_classifier.steps.check_request import check_request as check

        context = _context()
        try:
            request = check(dict(context["params"]), context["ds"], target.name)
        except RunRequestError as exc:
            raise AirflowFailException(f"refused before any work: {exc}") from exc
        log.info("request: %s", request)
        if not request.dry_run:
            return True
        log.info("dry run: %s", _dry_run_plan(target, request.ds))
        return False  # skips every downstream task: nothing is written

    return check_request_task()


def _dry_run_plan(target: Target, ds: str) -> str:
    reads = ", ".join(datasets.extract_dir(target, t, ds) for t in datasets.EXTRACT_TABLES)
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        estimate = gcp_tasks.estimate_extract_bytes(ds)
    else:
        from pool_classifier.steps import extract_day as extract

        estimate = extract.count_blocks(target, ds)
    return f"would extract {ds} ({estimate}) to {reads}, then build features, train, score and publish."


def extract_day(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        group = gcp_tasks.extract_day_gcp(target)
    else:
        with TaskGroup(group_id="extract_day", tooltip="one UTC day of crypto_bitcoin, per table") as group:
            for table in datasets.EXTRACT_TABLES:
                _local_export(target, table)
    for export in group.children.values():
        export.outlets = [assets(target)["extracts"]]
    return group


def _local_export(target: Target, table: str):
    @task(task_id=f"export_{table}", doc_md=EXTRACT_DOC)
    def export_task() -> dict:
        from pool_classifier.steps.extract_day import extract_table

        with _local_step(target, "extract_day"):
            return extract_table(target, _ds(), table)

    return export_task()


def quality_gate(target: Target, gate: str):
    @task(task_id=f"check_{gate}", doc_md=GATE_DOCS[gate])
    def gate_task() -> dict:
        from pool_classifier.steps import quality_gates

        ds = _ds()
        with _fail_without_retry_on_bad_data():
            if target.name == "gcp":
                from pool_classifier.io import bucket_mirror

                return bucket_mirror.gate_in_copy(bucket_mirror.for_target(target), target, gate, ds)
            return quality_gates.CHECKS[gate](target, ds)

    return gate_task()


def build_features(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        step = gcp_tasks.build_features_gcp(target)
    else:
        @task(task_id="build_features", doc_md=FEATURES_DOC)
        def build_features_task() -> str:
            from pool_classifier.steps.build_features import build_features as run

            with _local_step(target, "build_features"):
                return run(target, _ds())

        step = build_features_task()
    _operator(step).outlets = [assets(target)["features"]]
    return step


def should_train(target: Target):
    # Skipping only train_model: scoring runs on (trigger rule none_failed).
    @task.short_circuit(task_id="should_train", doc_md=SHOULD_TRAIN_DOC, ignore_downstream_trigger_rules=False)
    def should_train_task() -> bool:
        from pool_classifier.steps import train_model as train

        context = _context()
        asked = context["params"].get("retrain") or "auto"
        if asked != "auto":
            log.info("retrain=%s asked in the run's form", asked)
            return asked == "always"
        if target.name == "gcp":
            from pool_classifier.io import bucket_mirror

            needed = bucket_mirror.needs_training_in_copy(bucket_mirror.for_target(target), target, context["ds"])
        else:
            needed = train.needs_training(target, context["ds"])
        log.info("retrain=auto: %s", "a training day (or no champion yet)" if needed else
                 "not a training day of the cadence; scoring uses the champion")
        return needed

    return should_train_task()


def train_model(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        step = gcp_tasks.train_model_gcp(target)
        _operator(step).outlets = [assets(target)["models"]]
        return step

    @task(task_id="train_model", doc_md=TRAIN_DOC, outlets=[assets(target)["models"]])
    def train_model_task() -> dict:
        from pool_classifier.steps.train_model import train_model as run

        with _local_step(target, "train_model"):
            result = run(target, _ds())
        log.info("champion/challenger: %s", result.get("reason"))
        log.info("model report: %s", result.get("report"))
        return result

    return train_model_task()


def score_addresses(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        step = gcp_tasks.score_addresses_gcp(target)
        _operator(step).outlets = [assets(target)["predictions"]]
        _operator(step).trigger_rule = "none_failed"
        return step

    @task(task_id="score_addresses", doc_md=SCORE_DOC, outlets=[assets(target)["predictions"]],
          trigger_rule="none_failed")
    def score_addresses_task() -> dict:
        from pool_classifier.steps.score_addresses import score_addresses as run

        with _local_step(target, "score_addresses"):
            return run(target, _ds())

    return score_addresses_task()


def publish_predictions(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        return gcp_tasks.publish_predictions_gcp(target)

    @task(task_id="publish_predictions", doc_md=PUBLISH_DOC)
    def publish_task() -> dict:
        from pool_classifier.steps.publish_predictions import publish_day

        with _local_step(target, "publish_predictions"):
            return publish_day(target, _ds())

    return publish_task()


def record_run_cost(target: Target):
    if target.name == "gcp":
        from pool_classifier.orchestration import gcp as gcp_tasks

        return gcp_tasks.record_run_cost_gcp(target)

    @task(task_id="record_run_cost", doc_md=LOCAL_COST_DOC)
    def record_run_cost_task() -> str:
        from pool_classifier.io import cost_records as run_cost

        context = _context()
        try:
            table = run_cost.summarize_local_run(target, context["ds"], context["run_id"])
        except Exception:  # noqa: BLE001 - a teardown that reports must not fail the run
            log.exception("the run's cost could not be summed up")
            raise AirflowSkipException("no cost summary (see the log)") from None
        log.info("%s", table)
        return table

    return record_run_cost_task().as_teardown()
