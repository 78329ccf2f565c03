"""Every dataset the pipeline reads or writes, each with one path built here.

Paths are per logical date (`dt=YYYY-MM-DD`) under the target's bucket, so a re-run of a
day replaces exactly that day's folder and nothing else.
"""
from __future__ import annotations

from pool_classifier.targets import Target

# Extract outputs: one Parquet folder per table per day.
EXTRACT_TABLES = ("blocks", "outputs", "inputs")
# Outputs of the features job, per day: features of the addresses active that day, the
# day's blocks with their pool, every pool address known so far, and the training set.
FEATURE_TABLES = ("address_features", "block_pools", "address_labels", "training_features")
# The features job's running state: per-address partials and coinbase receipts, per day.
STATE_TABLES = ("address_state", "coinbase_receipts")


def _day(target: Target, kind: str, name: str, ds: str) -> str:
    return f"{target.bucket}/{kind}/{name}/dt={ds}"


def _table_day(target: Target, kind: str, tables: tuple[str, ...], table: str, ds: str) -> str:
    if table not in tables:
        raise ValueError(f"unknown {kind} table {table!r}; expected one of {tables}")
    return _day(target, kind, table, ds)


def extract_dir(target: Target, table: str, ds: str) -> str:
    """One UTC day of `table` as extracted from crypto_bitcoin (Parquet)."""
    return _table_day(target, "extracts", EXTRACT_TABLES, table, ds)


def extracts_root(target: Target) -> str:
    return f"{target.bucket}/extracts"


def extract_root(target: Target, table: str) -> str:
    """Parent of every day of one extract table."""
    return f"{extracts_root(target)}/{table}"


def extracted_days(target: Target, until: str) -> list[str]:
    """The days ≤ `until` that have an extract (local folders), oldest first."""
    from pathlib import Path

    root = Path(extract_root(target, "blocks"))
    return sorted(p.name[3:] for p in root.glob("dt=*") if p.name[3:] <= until)


def features_dir(target: Target, table: str, ds: str) -> str:
    """One day's output of the features job (see FEATURE_TABLES)."""
    return _table_day(target, "features", FEATURE_TABLES, table, ds)


def features_root(target: Target) -> str:
    return f"{target.bucket}/features"


def state_root(target: Target) -> str:
    return f"{target.bucket}/state"


def state_dir(target: Target, table: str, ds: str) -> str:
    """The running state after day `ds` (history up to and including it)."""
    return _table_day(target, "state", STATE_TABLES, table, ds)


def models_root(target: Target) -> str:
    """The model registry: one folder per model version."""
    return f"{target.bucket}/models"


def model_dir(target: Target, version: str) -> str:
    return f"{models_root(target)}/{version}"


def predictions_root(target: Target) -> str:
    """Parent of every output of the scoring batch."""
    return f"{target.bucket}/predictions"


def predictions_dir(target: Target, ds: str) -> str:
    """Scores of the addresses active on one day."""
    return _day(target, "predictions", "address_scores", ds)


def profiles_dir(target: Target, ds: str) -> str:
    """Profile and anomaly score of the addresses active on one day."""
    return _day(target, "predictions", "address_profiles", ds)


def drift_dir(target: Target, ds: str) -> str:
    """The drift check of one day's scoring run."""
    return _day(target, "predictions", "drift", ds)
