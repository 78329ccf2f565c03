"""Every dataset the pipeline reads or writes, and every path: built here and nowhere else.

Data paths are per logical date (`dt=YYYY-MM-DD`) under the target's bucket (a folder on the
local target, `gs://…` on gcp), so a re-run of a day replaces exactly that day's folder and
nothing else. The functions take anything with a `bucket` attribute: a `Target`, or a
`Bucket` (what the Spark jobs are given on their command line).

`DATASETS` names each dataset once, with what it holds; the steps' declarations
(`steps.STEPS`) say which of them each step reads and writes, and the task docs, the README's
step table, the local cost records and the gcp bucket mirror are derived from them.

The files shipped with the code (SQL, schemas, the pools list, the Spark jobs) are located
here too: `include/` is found beside the project, or where `POOL_CLASSIFIER_INCLUDE_DIR`
says (Composer maps only its bucket's dags/, plugins/ and data/ folders, so the deploy puts
include/ under plugins/).
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# ---------------------------------------------------------------- files shipped with the code

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR_ENV = "POOL_CLASSIFIER_INCLUDE_DIR"
INCLUDE_DIR = Path(os.environ.get(INCLUDE_DIR_ENV) or PROJECT_ROOT / "include")
SQL_DIR = INCLUDE_DIR / "sql"
SCHEMA_DIR = INCLUDE_DIR / "schemas"
POOLS_FILE = INCLUDE_DIR / "pools" / "pools-v2.json"
PRICES_FILE = INCLUDE_DIR / "config" / "prices.json"
LOG4J_CONFIG = INCLUDE_DIR / "spark" / "log4j2.properties"
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"


def sql_file(name: str) -> Path:
    """`include/sql/<name>.sql`."""
    return SQL_DIR / f"{name}.sql"


def spark_job_file(task_id: str) -> Path:
    """The Spark job of a step: `spark_jobs/<task_id>.py`."""
    return SPARK_JOBS_DIR / f"{task_id}.py"


# ---------------------------------------------------------------- where data lives


class HasBucket(Protocol):
    bucket: str


@dataclass(frozen=True)
class Bucket:
    """A bucket root alone: what the Spark jobs are given (`--bucket`)."""

    bucket: str


# Extract outputs: one Parquet folder per table per day.
EXTRACT_TABLES = ("blocks", "outputs", "inputs")
# Outputs of the features job, per day: features of the addresses active that day, the
# day's blocks with their pool, every pool address known so far, and the training set.
FEATURE_TABLES = ("address_features", "block_pools", "address_labels", "training_features")
# The features job's running state: per-address partials and coinbase receipts, per day.
STATE_TABLES = ("address_state", "coinbase_receipts")
# Outputs of the scoring job, per day.
PREDICTION_TABLES = ("address_scores", "address_profiles", "drift")
# The data-quality gates, each keeping its figures per day.
GATES = ("extract", "features", "scores")
GATE_FIGURES_FILE = "figures.json"
# The tables users query (BigQuery on gcp, a DuckDB file locally), one partition per day.
PUBLISHED_TABLES = ("address_scores", "block_pools")
CHAMPION_FILE = "champion.json"
RUN_COSTS_SUMMARY_FILE = "summary.json"


def _day(where: HasBucket, kind: str, name: str, ds: str) -> str:
    return f"{where.bucket}/{kind}/{name}/dt={ds}"


def _table_day(where: HasBucket, kind: str, tables: tuple[str, ...], table: str, ds: str) -> str:
    if table not in tables:
        raise ValueError(f"unknown {kind} table {table!r}; expected one of {tables}")
    return _day(where, kind, table, ds)


def day_before(ds: str) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()


def extracts_root(where: HasBucket) -> str:
    return f"{where.bucket}/extracts"


def extract_root(where: HasBucket, table: str) -> str:
    """Parent of every day of one extract table."""
    return f"{extracts_root(where)}/{table}"


def extract_dir(where: HasBucket, table: str, ds: str) -> str:
    """One UTC day of `table` as extracted from crypto_bitcoin (Parquet)."""
    return _table_day(where, "extracts", EXTRACT_TABLES, table, ds)


def extracted_days(where: HasBucket, until: str) -> list[str]:
    """The days ≤ `until` that have an extract (local folders), oldest first."""
    root = Path(extract_root(where, "blocks"))
    return sorted(p.name[3:] for p in root.glob("dt=*") if p.name[3:] <= until)


def history_dir(where: HasBucket, until: str, table: str | None = None) -> str:
    """The bootstrap's history export up to `until`: one folder per extract table, the
    extract's shape over every day of the history (steps/bootstrap_state.py)."""
    if table is not None and table not in EXTRACT_TABLES:
        raise ValueError(f"unknown extract table {table!r}; expected one of {EXTRACT_TABLES}")
    return f"{where.bucket}/history/dt={until}" + (f"/{table}" if table else "")


def features_root(where: HasBucket) -> str:
    return f"{where.bucket}/features"


def features_dir(where: HasBucket, table: str, ds: str) -> str:
    """One day's output of the features job (see FEATURE_TABLES)."""
    return _table_day(where, "features", FEATURE_TABLES, table, ds)


def state_root(where: HasBucket) -> str:
    return f"{where.bucket}/state"


def state_table_root(where: HasBucket, table: str) -> str:
    """Parent of every day of one state table."""
    if table not in STATE_TABLES:
        raise ValueError(f"unknown state table {table!r}; expected one of {STATE_TABLES}")
    return f"{state_root(where)}/{table}"


def state_dir(where: HasBucket, table: str, ds: str) -> str:
    """The running state after day `ds` (history up to and including it). For the address
    state it is a manifest: a pointer naming the base snapshot and the daily deltas since."""
    return _table_day(where, "state", STATE_TABLES, table, ds)


def state_base_dir(where: HasBucket, ds: str) -> str:
    """A compacted snapshot of the address state as of `ds` (every address, its latest partials)."""
    return f"{state_table_root(where, 'address_state')}/base/dt={ds}"


def state_delta_dir(where: HasBucket, ds: str) -> str:
    """The partials after `ds` of the addresses active on `ds` only (what the day changed)."""
    return f"{state_table_root(where, 'address_state')}/delta/dt={ds}"


def models_root(where: HasBucket) -> str:
    """The model registry: one folder per model version."""
    return f"{where.bucket}/models"


def model_dir(where: HasBucket, version: str) -> str:
    return f"{models_root(where)}/{version}"


def champion_file(where: HasBucket) -> str:
    """The registry's promotions log: which version is champion from which day."""
    return f"{models_root(where)}/{CHAMPION_FILE}"


def predictions_root(where: HasBucket) -> str:
    """Parent of every output of the scoring batch."""
    return f"{where.bucket}/predictions"


def predictions_dir(where: HasBucket, ds: str) -> str:
    """Scores of the addresses active on one day."""
    return _day(where, "predictions", "address_scores", ds)


def profiles_dir(where: HasBucket, ds: str) -> str:
    """Profile and anomaly score of the addresses active on one day."""
    return _day(where, "predictions", "address_profiles", ds)


def drift_dir(where: HasBucket, ds: str) -> str:
    """The drift check of one day's scoring run."""
    return _day(where, "predictions", "drift", ds)


def quality_dir(where: HasBucket, gate: str, ds: str) -> str:
    """Where a quality gate keeps the figures of one day."""
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; expected one of {GATES}")
    return _day(where, "quality", gate, ds)


def quality_figures(where: HasBucket, gate: str, ds: str) -> str:
    return f"{quality_dir(where, gate, ds)}/{GATE_FIGURES_FILE}"


def run_costs_root(where: HasBucket) -> str:
    return f"{where.bucket}/run_costs"


def run_costs_dir(where: HasBucket, ds: str) -> str:
    """Every cost record of one logical date (all runs)."""
    return f"{run_costs_root(where)}/dt={ds}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def run_costs_run_dir(where: HasBucket, ds: str, run_id: str) -> str:
    return f"{run_costs_dir(where, ds)}/run={_safe(run_id)}"


def cost_record_file(where: HasBucket, ds: str, run_id: str, task_id: str, try_number: int) -> str:
    """One task try's cost record (a retry writes its own: both were paid for)."""
    return f"{run_costs_run_dir(where, ds, run_id)}/{task_id}.try{try_number}.json"


def run_cost_summary_file(where: HasBucket, ds: str, run_id: str) -> str:
    return f"{run_costs_run_dir(where, ds, run_id)}/{RUN_COSTS_SUMMARY_FILE}"


def run_cost_day_records(where: HasBucket, ds: str) -> str:
    """Every record of the day (all runs) as JSON lines: the source of the day's partition."""
    return f"{run_costs_dir(where, ds)}/records.jsonl"


def published_db(warehouse: str) -> str:
    """The local stand-in for the BigQuery dataset of published tables, beside the warehouse."""
    return str(Path(warehouse).with_name("pool_classifier.duckdb"))


def quarantine_dir(warehouse: str) -> str:
    """Where the local warehouse loader keeps the duplicate rows it set aside."""
    return str(Path(warehouse).parent / "quarantine")


# ---------------------------------------------------------------- the hourly activity (pool_activity_hourly DAG)

# Per UTC hour (`hour=YYYY-MM-DDTHH`), each a versioned location: the hour's rows per pool (the
# table `pool_activity_hourly`) and its blocks with their pool.
ACTIVITY_TABLES = ("pool_activity_hourly", "block_pools_hourly")


def activity_root(where: HasBucket, table: str = "pool_activity_hourly") -> str:
    """Parent of every hour of one activity table."""
    if table not in ACTIVITY_TABLES:
        raise ValueError(f"unknown activity table {table!r}; expected one of {ACTIVITY_TABLES}")
    return f"{where.bucket}/activity/{table}"


def activity_hour_dir(where: HasBucket, table: str, hour: str) -> str:
    """One UTC hour (`YYYY-MM-DDTHH`) of an activity table (a versioned location)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", hour) and hour != "<hour>":
        raise ValueError(f"hour {hour!r} is not YYYY-MM-DDTHH")
    return f"{activity_root(where, table)}/hour={hour}"


def activity_recent_dir(where: HasBucket) -> str:
    """The last 7 days of hours in one place, what the API's /live page reads (versioned)."""
    return f"{where.bucket}/activity/recent"


# ---------------------------------------------------------------- the jobs bucket (gcp)

JOBS_PREFIX = "pool_classifier"
CODE_ZIP_NAME = "pool_classifier.zip"


def jobs_root(jobs_bucket: str) -> str:
    return f"{jobs_bucket.rstrip('/')}/{JOBS_PREFIX}"


def spark_job_uri(jobs_bucket: str, job_file: str) -> str:
    """A file of spark_jobs/ as uploaded by the deploy."""
    return f"{jobs_root(jobs_bucket)}/spark_jobs/{job_file}"


def code_zip_uri(jobs_bucket: str) -> str:
    """The pool_classifier package, zipped by the deploy, shipped to every batch."""
    return f"{jobs_root(jobs_bucket)}/code/{CODE_ZIP_NAME}"


def pools_uri(jobs_bucket: str) -> str:
    return f"{jobs_root(jobs_bucket)}/include/pools/pools-v2.json"


# ---------------------------------------------------------------- the datasets, by name


@dataclass(frozen=True)
class Dataset:
    """One dataset: its name (its place under the bucket, or a table), what it holds, and
    how to find it for a day."""

    name: str
    holds: str
    # "bucket": a folder per day under the bucket (`<name>/dt=<ds>/`); "registry": the model
    # registry folder; "source": crypto_bitcoin's tables; "table": a published table; "file":
    # a file shipped with the code; "hourly": a folder per UTC hour (`<name>/hour=<hour>/`);
    # "latest": one versioned folder, replaced by each run (`<name>/`).
    kind: str = "bucket"

    def path(self, target, ds: str) -> str:
        """Where the dataset is for day `ds` on `target` (what a local step measures it by)."""
        if self.kind == "bucket":
            return f"{target.bucket}/{self.name}/dt={ds}"
        if self.kind == "registry":
            return models_root(target) if self.name == "models" else champion_file(target)
        if self.kind == "source":
            return target.warehouse
        if self.kind == "table":
            return published_db(target.warehouse)
        if self.kind == "file":
            return str(POOLS_FILE)
        if self.kind == "hourly":
            return f"{target.bucket}/{self.name}/hour={ds}"
        if self.kind == "latest":
            return f"{target.bucket}/{self.name}"
        raise ValueError(f"dataset {self.name}: unknown kind {self.kind!r}")

    def shown(self, day: int = 0) -> str:
        """How the docs name it: `features/address_features/dt=<ds>/`, or `<ds-1>` for the day before."""
        if self.kind == "bucket":
            return f"`{self.name}/dt=<ds{'' if day == 0 else f'{day:+d}'}>/`"
        if self.kind == "registry":
            return f"`{self.name}{'/' if self.name == 'models' else ''}`"
        if self.kind == "table":
            return f"table `{self.name}`"
        if self.kind == "hourly":
            return f"`{self.name}/hour=<hour>/`"
        if self.kind == "latest":
            return f"`{self.name}/`"
        return f"`{self.name}`"


def _bucket_datasets() -> dict[str, Dataset]:
    holds = {
        "extracts/blocks": "one UTC day of crypto_bitcoin.blocks",
        "extracts/outputs": "the day's transaction outputs (one row per output)",
        "extracts/inputs": "the day's transaction inputs (one row per input)",
        "state/address_state": "per-address partials of the whole history up to the day: a manifest "
                               "naming a base snapshot and the daily deltas since (base/, delta/)",
        "state/coinbase_receipts": "coinbase payouts per (address, pool), and each pool's own tally (address "
                                   "NULL), up to the day",
        "features/address_features": "features of the addresses active on the day",
        "features/block_pools": "each block of the day with the pool that mined it",
        "features/address_labels": "every labelled address up to the day: its kind (pool_wallet, coinbase_miner) "
                                   "and the evidence",
        "features/training_features": "labelled addresses plus a seeded sample of the others",
        "predictions/address_scores": "the day's active addresses scored by the champion",
        "predictions/address_profiles": "their profile and anomaly score",
        "predictions/drift": "population stability of the day's features against training",
        "quality/extract": "the extract gate's figures (figures.json)",
        "quality/features": "the features gate's figures",
        "quality/scores": "the scores gate's figures",
        "run_costs": "each task try's cost record, and the run's summary",
        "serving": "the prediction API's snapshot of the day: every address's latest score, its labels, "
                   "profile, features and history (the API reads the newest, `serving/_current.json`)",
    }
    return {name: Dataset(name, text) for name, text in holds.items()}


DATASETS: dict[str, Dataset] = {
    "crypto_bitcoin.blocks": Dataset("crypto_bitcoin.blocks", "the public blocks table", "source"),
    "crypto_bitcoin.transactions": Dataset("crypto_bitcoin.transactions", "the public transactions table", "source"),
    "pools": Dataset("include/pools/pools-v2.json", "known pools: tags and payout addresses", "file"),
    **_bucket_datasets(),
    "models": Dataset("models", "the model registry: one folder per version, with its report", "registry"),
    "models/champion.json": Dataset("models/champion.json", "the promotions: the champion of each day", "registry"),
    "table address_scores": Dataset("address_scores", "published predictions, one partition per day", "table"),
    "table block_pools": Dataset("block_pools", "published block pools, one partition per day", "table"),
    "activity/pool_activity_hourly": Dataset(
        "activity/pool_activity_hourly", "the table pool_activity_hourly: per UTC hour, per pool, its blocks, share, "
        "transactions, fees, attribution counts and newest block", "hourly"),
    "activity/block_pools_hourly": Dataset(
        "activity/block_pools_hourly", "per UTC hour, each block with its pool and how it was matched", "hourly"),
    "activity/recent": Dataset(
        "activity/recent", "the last 7 days of pool_activity_hourly and each hour's block count, in one "
        "version (what the API's /v1/pools/activity and /live read)", "latest"),
}


def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"no dataset {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name]


# ---------------------------------------------------------------- the serving snapshots (the API)

# One DuckDB file per day's snapshot: the latest score of every address scored up to the day,
# with its labels, profile, features and history (written by steps/publish_serving.py).
SERVING_FILE = "snapshot.duckdb"


def serving_root(where: HasBucket) -> str:
    """Parent of every day's serving snapshot; its own pointer names the newest day's version
    (what the API serves by default)."""
    return f"{where.bucket}/serving"


def serving_dir(where: HasBucket, ds: str) -> str:
    """The serving snapshot of day `ds` (a versioned location: `v=<id>/snapshot.duckdb`)."""
    return f"{serving_root(where)}/dt={ds}"


def scored_days(where: HasBucket, until: str) -> list[str]:
    """The days ≤ `until` with a predictions folder (local folders), oldest first."""
    root = Path(predictions_root(where)) / "address_scores"
    return sorted(p.name[3:] for p in root.glob("dt=*") if p.name[3:] <= until)
