"""What every target's task builder shares: one method per step, under the same task ids on
every target, each returning the step's task (or task group).

A target's builder (`orchestration/local.py`, `orchestration/gcp.py`) subclasses
`PipelineTasks` and says how each step runs there (`_extract_day`, `_build_features`, …);
this base class adds what is the same everywhere: the run's form check, the lineage (Assets),
the trigger rules, the teardown, failing at once on bad data, and each task's runbook doc,
whose Reads and Writes come from the step's declaration (`steps.STEPS`).

The step code itself (extract, features, train, score…) is imported inside the tasks, so
parsing the DAG imports neither DuckDB, Spark nor scikit-learn.
"""
from __future__ import annotations

import abc
import contextlib
import logging
from pathlib import Path

from airflow.exceptions import AirflowFailException
from airflow.sdk import Asset, get_current_context, task

from pool_classifier import datasets, steps
from pool_classifier.errors import DataError
from pool_classifier.orchestration.runbook import task_doc
from pool_classifier.targets import Target

log = logging.getLogger(__name__)

CHECK_REQUEST_SUMMARY = """Checks the run's form (Params) before any work: `date_from`/`date_to`
(optional; the logical date must lie inside), `target` (must be this deployment's), `retrain`
(auto/always/never), `dry_run`. With `dry_run` it logs what the run would read and write (on
gcp: BigQuery's estimate of the bytes the extract would scan) and skips everything else."""

SHOULD_TRAIN_SUMMARY = """Decides whether this run retrains: the form's `retrain` (`always`/`never`),
else the cadence (`TrainConfig.retrain_every_days`: 1 in the demo, 7 is sensible in
production) — and always when there is no champion yet. When not, `train_model` is skipped
and scoring uses the champion in force."""


def context() -> dict:
    return get_current_context()


def ds() -> str:
    return context()["ds"]


@contextlib.contextmanager
def fail_without_retry_on_bad_data():
    """Errors about the data fail the task at once: a retry would fail the same way."""
    try:
        yield
    except DataError as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def operator(step):
    """The operator of a builder's result (a `@task` call returns its XComArg)."""
    return getattr(step, "operator", step)


class PipelineTasks(abc.ABC):
    """One builder per step of the `mining_pool_classifier` DAG, for one target."""

    def __init__(self, target: Target):
        self.target = target

    # ------------------------------------------------------------ the runbook

    def doc(self, task_id: str, summary: str, *, takes: str, rerun: str, failures: str, title: str | None = None) -> str:
        """A task's doc: what it reads and writes from the step's declaration, the rest from the target."""
        return task_doc(title or task_id, summary, reads=steps.reads_doc(task_id), writes=steps.writes_doc(task_id),
                        takes=takes, rerun=rerun, failures=failures)

    def assets(self) -> dict[str, Asset]:
        """The pipeline's outputs, declared so that the UI shows their lineage."""
        def uri(path: str) -> str:
            return path if "://" in path else Path(path).as_uri()

        return {
            "extracts": Asset(name="pool_classifier.extracts", uri=uri(datasets.extracts_root(self.target))),
            "features": Asset(name="pool_classifier.features", uri=uri(datasets.features_root(self.target))),
            "models": Asset(name="pool_classifier.models", uri=uri(datasets.models_root(self.target))),
            "predictions": Asset(name="pool_classifier.predictions", uri=uri(datasets.predictions_root(self.target))),
        }

    # ------------------------------------------------------------ what differs per target

    @abc.abstractmethod
    def dry_run_estimate(self, ds: str) -> str:
        """What a dry run says the extract would read (nothing is run or billed)."""
        ...

    @abc.abstractmethod
    def run_gate(self, gate: str, ds: str) -> dict:
        """The quality gate `check_<gate>` on the day's data."""
        ...

    @abc.abstractmethod
    def needs_training(self, ds: str) -> bool:
        ...

    @abc.abstractmethod
    def _extract_day(self):
        ...

    @abc.abstractmethod
    def _build_features(self):
        ...

    @abc.abstractmethod
    def _train_model(self):
        ...

    @abc.abstractmethod
    def _score_addresses(self):
        ...

    @abc.abstractmethod
    def _publish_predictions(self):
        ...

    @abc.abstractmethod
    def _record_run_cost(self):
        ...

    # ------------------------------------------------------------ the steps, in order

    def check_request(self):
        target, builder = self.target, self

        @task.short_circuit(task_id="check_request", doc_md=self.doc(
            "check_request", CHECK_REQUEST_SUMMARY, takes="< 1 s.",
            rerun="trigger a new run with a corrected form: clearing re-checks the same form.",
            failures="`<field>: …` names the field of the form that is wrong and how to fix it."))
        def check_request_task() -> bool:
            from pool_classifier.steps.check_request import RunRequestError, check_request, dry_run_plan

            ctx = context()
            try:
                request = check_request(dict(ctx["params"]), ctx["ds"], target.name)
            except RunRequestError as exc:
                raise AirflowFailException(f"refused before any work: {exc}") from exc
            log.info("request: %s", request)
            if not request.dry_run:
                return True
            log.info("dry run: %s", dry_run_plan(target, request.ds, builder.dry_run_estimate(request.ds)))
            return False  # skips every downstream task: nothing is written

        return check_request_task()

    def extract_day(self):
        group = self._extract_day()
        for export in group.children.values():
            export.outlets = [self.assets()["extracts"]]
        return group

    def check_extract(self):
        return self._gate("extract")

    def build_features(self):
        step = self._build_features()
        operator(step).outlets = [self.assets()["features"]]
        return step

    def check_features(self):
        return self._gate("features")

    def should_train(self):
        builder = self

        # Skipping only train_model: scoring runs on (trigger rule none_failed).
        @task.short_circuit(task_id="should_train", ignore_downstream_trigger_rules=False, doc_md=self.doc(
            "should_train", SHOULD_TRAIN_SUMMARY, takes="< 1 s.",
            rerun="clear it, or trigger the day with `retrain=always` to force a training.",
            failures="none expected; a skipped `train_model` is the normal outcome on other days."))
        def should_train_task() -> bool:
            ctx = context()
            asked = ctx["params"].get("retrain") or "auto"
            if asked != "auto":
                log.info("retrain=%s asked in the run's form", asked)
                return asked == "always"
            needed = builder.needs_training(ctx["ds"])
            log.info("retrain=auto: %s", "a training day (or no champion yet)" if needed else
                     "not a training day of the cadence; scoring uses the champion")
            return needed

        return should_train_task()

    def train_model(self):
        step = self._train_model()
        operator(step).outlets = [self.assets()["models"]]
        return step

    def score_addresses(self):
        step = self._score_addresses()
        operator(step).outlets = [self.assets()["predictions"]]
        # Training may be skipped (not a training day): scoring still runs with the champion.
        operator(step).trigger_rule = "none_failed"
        return step

    def check_scores(self):
        return self._gate("scores")

    def publish_predictions(self):
        return self._publish_predictions()

    def record_run_cost(self):
        """A teardown: it runs last, whatever failed, and its failure does not fail the run."""
        return self._record_run_cost().as_teardown()

    # ------------------------------------------------------------ shared builders

    def _gate(self, gate: str):
        builder, task_id = self, f"check_{gate}"

        @task(task_id=task_id, doc_md=self.gate_doc(gate))
        def gate_task() -> dict:
            with fail_without_retry_on_bad_data():
                return builder.run_gate(gate, ds())

        return gate_task()

    def gate_doc(self, gate: str) -> str:
        return self.doc(f"check_{gate}", GATE_SUMMARIES[gate], takes="< 2 s.", rerun=GATE_RERUN[gate],
                        failures=GATE_FAILURES[gate])


GATE_SUMMARIES = {
    "extract": """Data-quality gate after the extract: block numbers contiguous for the day (and
    with the day before), the transactions equal the blocks' `transaction_count` sums, no
    duplicate hashes, values within 0…21 M BTC.""",
    "features": "Data-quality gate after the features: null rates and ranges per feature of the day's active addresses.",
    "scores": """Data-quality gate after scoring: every active address scored once with a score in
    [0, 1], and the score distribution compared with the day before (population stability).""",
}
GATE_RERUN = {
    "extract": "after fixing the source, clear `extract_day` and everything downstream.",
    "features": "clear it (after a re-run of `build_features` if the features were wrong).",
    "scores": "clear it; once it passes, `publish_predictions` runs.",
}
GATE_FAILURES = {
    "extract": """`QualityGateError` lists each failed check with the expected and the observed
    numbers; the run stops before the features. Fix or reload the day's source, then re-run
    from `extract_day`.""",
    "features": """`QualityGateError` names the feature, the expected range and the observed value;
    the run stops before training. A wrong input day usually shows first in `check_extract`;
    otherwise the features job changed — see its log.""",
    "scores": """`QualityGateError` names the check, the expected and the observed numbers; nothing
    is published. A new champion can shift scores: read the model report of `train_model`,
    then clear this gate if the shift is explained.""",
}
