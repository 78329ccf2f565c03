"""The pipeline's steps, one module per task id (`steps/<task_id>.py`): plain Python that knows
nothing of Airflow and runs from the command line (`python -m pool_classifier.steps.<task_id>`).

`STEPS` declares, once per step, what it reads and writes (dataset names from `datasets.py`)
and where its code is. From it are derived: each task's runbook doc (its Reads and Writes),
the DAG's step table, the README's step table (a test compares them), the bytes a local step
records as read, and the folders the gcp target copies for a step it runs on a copy.
"""
from __future__ import annotations

from dataclasses import dataclass

from pool_classifier import datasets


@dataclass(frozen=True)
class Uses:
    """A dataset as of the logical date (`day=0`) or a day before it (`day=-1`)."""

    name: str
    day: int = 0

    @property
    def dataset(self) -> datasets.Dataset:
        return datasets.dataset(self.name)

    def path(self, target, ds: str) -> str:
        day = ds
        for _ in range(-self.day):
            day = datasets.day_before(day)
        return self.dataset.path(target, day)


@dataclass(frozen=True)
class Step:
    task_id: str
    does: str
    reads: tuple[Uses, ...]
    writes: tuple[Uses, ...]
    # Where a newcomer finds it: the step's module first, then its SQL or Spark job.
    code: tuple[str, ...]
    # What the step reads beyond datasets (the form, settings), in words.
    also_reads: str = ""

    def read_paths(self, target, ds: str) -> list[str]:
        """The paths the step reads for `ds`, each once, in declaration order."""
        return list(dict.fromkeys(use.path(target, ds) for use in self.reads))


def _uses(*names: str, day: int = 0) -> tuple[Uses, ...]:
    return tuple(Uses(name, day) for name in names)


def _tables(kind: str, tables: tuple[str, ...], day: int = 0) -> tuple[Uses, ...]:
    return _uses(*(f"{kind}/{t}" for t in tables), day=day)


EXTRACTS = _tables("extracts", datasets.EXTRACT_TABLES)
STATE = _tables("state", datasets.STATE_TABLES)
FEATURES = _tables("features", datasets.FEATURE_TABLES)
PREDICTIONS = _tables("predictions", datasets.PREDICTION_TABLES)

STEPS: dict[str, Step] = {step.task_id: step for step in (
    Step("check_request", "checks the run's form before any work (a dry run stops here)",
         reads=(), writes=(), code=("steps/check_request.py",),
         also_reads="the run's form (Params) and the deployment's target"),
    Step("extract_day", "one UTC day of the source, partition-pruned, per table",
         reads=_uses("crypto_bitcoin.blocks", "crypto_bitcoin.transactions"), writes=EXTRACTS,
         code=("steps/extract_day.py", *(f"include/sql/extract_{t}.sql" for t in datasets.EXTRACT_TABLES))),
    Step("check_extract", "data-quality gate after the extract",
         reads=EXTRACTS + _uses("extracts/blocks", day=-1), writes=_uses("quality/extract"),
         code=("steps/check_extract.py", "include/sql/gates/check_extract.sql")),
    Step("build_features", "per-address features, pool labels and the training set; the state",
         reads=EXTRACTS + _tables("state", datasets.STATE_TABLES, day=-1) + _uses("pools"),
         writes=STATE + FEATURES, code=("steps/build_features.py", "spark_jobs/build_features.py")),
    Step("check_features", "data-quality gate after the features",
         reads=_uses("features/address_features"), writes=_uses("quality/features"),
         code=("steps/check_features.py", "include/sql/gates/check_features.sql")),
    Step("should_train", "decides whether this run retrains (the cadence, or the form)",
         reads=_uses("models/champion.json"), writes=(), code=("steps/should_train.py",),
         also_reads="the form's `retrain`"),
    Step("train_model", "challengers against the champion; the registry and its report",
         reads=_uses("features/training_features", "models"), writes=_uses("models", "models/champion.json"),
         code=("steps/train_model.py", "model/training.py", "spark_jobs/train_model.py")),
    Step("score_addresses", "the champion scores the day's active addresses; profiles, drift",
         reads=_uses("features/address_features", "features/address_labels", "models"), writes=PREDICTIONS,
         code=("steps/score_addresses.py", "spark_jobs/score_addresses.py")),
    Step("check_scores", "data-quality gate after scoring",
         reads=_uses("predictions/address_scores") + _uses("predictions/address_scores", day=-1)
         + _uses("features/address_features"),
         writes=_uses("quality/scores"), code=("steps/check_scores.py", "include/sql/gates/check_scores.sql")),
    Step("publish_predictions", "the day's predictions and block pools into the tables users query, "
         "and the API's serving snapshot",
         reads=_uses("predictions/address_scores", "features/block_pools", "predictions/address_profiles",
                     "features/address_features", "features/address_labels", "state/address_state", "models"),
         writes=_uses("table address_scores", "table block_pools", "serving"),
         code=("steps/publish_predictions.py", "steps/publish_serving.py"),
         also_reads="those of every scored day up to the day (the snapshot holds each address's latest score)"),
    Step("record_run_cost", "adds up the run's cost records (a teardown: runs whatever failed)",
         reads=_uses("run_costs"), writes=_uses("run_costs"), code=("steps/record_run_cost.py",)),
)}
ORDER = tuple(STEPS)

# The second DAG, pool_activity_hourly: per UTC hour (`<hour>`), not per day.
HOURLY = _uses("activity/pool_activity_hourly", "activity/block_pools_hourly")
HOURLY_STEPS: dict[str, Step] = {step.task_id: step for step in (
    Step("merge_pool_activity", "the blocks of the last hours attributed to their pools, merged per hour",
         reads=_uses("crypto_bitcoin.blocks", "crypto_bitcoin.transactions", "pools"), writes=HOURLY,
         code=("steps/merge_pool_activity.py", "attribution.py", "include/sql/hourly_blocks.sql",
               "include/sql/hourly_coinbase_outputs.sql"),
         also_reads="the window: the `window_hours` hours up to the run's hour (the form)"),
    Step("publish_pool_activity", "the last 7 days of hours in one version, for the API's /live page",
         reads=_uses("activity/pool_activity_hourly"), writes=_uses("activity/recent"),
         code=("steps/publish_pool_activity.py",)),
)}
HOURLY_ORDER = tuple(HOURLY_STEPS)


def step(task_id: str) -> Step:
    """The declaration of a task (`extract_day.export_blocks` → `extract_day`), of either DAG."""
    name = task_id.split(".")[0]
    if name in STEPS:
        return STEPS[name]
    if name not in HOURLY_STEPS:
        raise KeyError(f"no step {name!r}; known: {', '.join(ORDER + HOURLY_ORDER)}")
    return HOURLY_STEPS[name]


# ---------------------------------------------------------------- what is derived


def shown(uses: tuple[Uses, ...]) -> str:
    """Datasets as the docs name them, grouped: `extracts/(blocks, outputs, inputs)/dt=<ds>/`."""
    groups: dict[tuple, list[str]] = {}
    order = []
    for use in uses:
        ds = use.dataset
        kind, _, leaf = ds.name.partition("/")
        key = (kind, use.day) if ds.kind == "bucket" and leaf else (ds.name, use.day, ds.kind)
        if key not in groups:
            groups[key] = []
            order.append((key, use))
        groups[key].append(leaf)
    parts = []
    for key, use in order:
        leaves = groups[key]
        if len(leaves) > 1:
            kind = key[0]
            day = "" if use.day == 0 else f"{use.day:+d}"
            parts.append(f"`{kind}/({', '.join(leaves)})/dt=<ds{day}>/`")
        else:
            parts.append(use.dataset.shown(use.day))
    return ", ".join(parts)


def reads_doc(task_id: str) -> str:
    s = step(task_id)
    words = [shown(s.reads)] if s.reads else []
    return "; ".join(words + ([s.also_reads] if s.also_reads else [])) + "."


def writes_doc(task_id: str) -> str:
    s = step(task_id)
    if not s.writes:
        return "nothing."
    if all(use.dataset.kind == "latest" for use in s.writes):
        return shown(s.writes) + ", replaced whole by each run."
    unit = "hour" if s.task_id in HOURLY_STEPS else "day"
    return shown(s.writes) + f", each replacing the {unit}."


def markdown_table(declared: dict[str, Step] | None = None) -> str:
    """The step table of the README and of the DAG's doc (a test keeps the README's equal);
    `declared=HOURLY_STEPS` for the hourly DAG's."""
    rows = ["| task | does | code (`steps/`, `model/` are in `plugins/pool_classifier/`) | reads | writes |",
            "|---|---|---|---|---|"]
    for s in (STEPS if declared is None else declared).values():
        code = ", ".join(f"`{c}`" for c in s.code)
        reads = "; ".join(([shown(s.reads)] if s.reads else []) + ([s.also_reads] if s.also_reads else []))
        rows.append(f"| `{s.task_id}` | {s.does} | {code} | {reads or '—'} | {shown(s.writes) or '—'} |")
    return "\n".join(rows) + "\n"
