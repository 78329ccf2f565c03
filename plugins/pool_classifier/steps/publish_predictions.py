"""publish_predictions: the day's predictions and per-block pools into the tables users query.

On `gcp` these are BigQuery tables partitioned by day (load jobs with the partition
decorator and WRITE_TRUNCATE, built in `orchestration/gcp.py`). On `local`
they are the same two tables, with the same columns (`include/schemas/pool_classifier.*.json`),
in a DuckDB file beside the warehouse: the day's rows are deleted and inserted in one
transaction, so a re-run replaces the day and a reader sees the old day or the new one.

    python -m pool_classifier.steps.publish_predictions --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.datasets import SCHEMA_DIR
from pool_classifier.io import atomic
from pool_classifier.targets import Target, current_target

TABLES = datasets.PUBLISHED_TABLES
_DUCKDB_TYPES = {"STRING": "VARCHAR", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN", "DATE": "DATE",
                 "INT64": "BIGINT", "TIMESTAMP": "TIMESTAMPTZ"}


def published_db(target: Target) -> str:
    """The local stand-in for the BigQuery dataset of published tables."""
    return datasets.published_db(target.warehouse)


def source_dir(target: Target, table: str, ds: str) -> str:
    if table == "address_scores":
        return datasets.predictions_dir(target, ds)
    if table == "block_pools":
        return datasets.features_dir(target, "block_pools", ds)
    raise ValueError(f"unknown published table {table!r}; expected one of {TABLES}")


def _duckdb_type(field: dict) -> str:
    """The DuckDB type of a BigQuery field: a RECORD is a STRUCT, a REPEATED field a list."""
    if field["type"] == "RECORD":
        kind = "STRUCT(" + ", ".join(f'"{f["name"]}" {_duckdb_type(f)}' for f in field["fields"]) + ")"
    else:
        kind = _DUCKDB_TYPES[field["type"]]
    return f"{kind}[]" if field.get("mode") == "REPEATED" else kind


def _columns(table: str) -> list[tuple[str, str]]:
    schema = json.loads((SCHEMA_DIR / f"pool_classifier.{table}.json").read_text())
    return [(field["name"], _duckdb_type(field)) for field in schema]


def _day_filter(table: str) -> str:
    # Both tables are partitioned by the UTC day: logical_date, or the block's day.
    return "logical_date = ?::DATE" if table == "address_scores" else \
        "CAST(timezone('UTC', block_timestamp) AS DATE) = ?::DATE"


def publish_day(target: Target, ds: str) -> dict:
    """Replace the day in both published tables; returns the rows per table."""
    import duckdb

    Path(published_db(target)).parent.mkdir(parents=True, exist_ok=True)
    rows = {}
    with duckdb.connect(published_db(target)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for table in TABLES:
            columns = _columns(table)
            source = source_dir(target, table, ds)
            if not atomic.exists(source):
                raise FileNotFoundError(f"publish {table} {ds}: {source} does not exist; run the step that writes it.")
            files = atomic.data_files(source)
            names = ", ".join(name for name, _ in columns)
            # A day written before a column existed (the scores before contributions) loads it as
            # null, as BigQuery does; a table created before it gains it.
            present = {r[0] for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", [files]).fetchall()}
            casts = ", ".join(f"CAST({name if name in present else 'NULL'} AS {kind}) AS {name}"
                              for name, kind in columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(f'{n} {k}' for n, k in columns)})")
            for name, kind in columns:
                con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {table} WHERE {_day_filter(table)}", [ds])
                con.execute(
                    f"INSERT INTO {table} ({names}) SELECT {casts} FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL",
                    [files],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            rows[table] = con.execute(f"SELECT count(*) FROM {table} WHERE {_day_filter(table)}", [ds]).fetchone()[0]
    return {"database": published_db(target), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish one day's predictions and block pools.")
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    print(publish_day(current_target(), args.ds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
