"""extract_day: one UTC day of crypto_bitcoin blocks, outputs and inputs, as Parquet.

The SQL lives in `include/sql/extract_<table>.sql`, in BigQuery's dialect, templated on
the logical date (`{{ ds }}`) exactly as Airflow renders it. Here (the local target) it is
transpiled by sqlglot and run by DuckDB over the local warehouse; the gcp target runs the
same text as is, as BigQuery `EXPORT DATA` jobs (orchestration/gcp.py).

    python -m pool_classifier.steps.extract_day --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.errors import DataError
from pool_classifier.io import sql
from pool_classifier.io.atomic import write_dir
from pool_classifier.io.warehouse import CATALOG
from pool_classifier.targets import Target, current_target

# Sort keys make local files byte-identical between runs (DuckDB scans in parallel).
SORT_KEYS = {
    "blocks": "block_number",
    "outputs": "block_number, transaction_hash, output_index",
    "inputs": "block_number, transaction_hash, input_index",
}


class NoBlocksError(DataError, RuntimeError):
    """The warehouse has no block for the logical date: nothing to extract."""


def render_sql(table: str, ds: str, first_day: str | None = None) -> str:
    """The BigQuery SQL of one extract for the logical date `ds` (as Airflow renders it), or
    of every day from `first_day` to `ds` (the bootstrap's history export)."""
    return sql.render(f"extract_{table}", ds=ds, **({"first_day": first_day} if first_day else {}))


def connect_warehouse(warehouse: str):
    import duckdb

    if not Path(warehouse).exists():
        raise FileNotFoundError(
            f"No local warehouse at {warehouse}. Load crypto_bitcoin exports first "
            "(`make run` does it; or `python -m pool_classifier.io.warehouse load DIR`)."
        )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{warehouse}' AS \"{CATALOG}\" (READ_ONLY)")
    return con


def extract_table(target: Target, ds: str, table: str, first_day: str | None = None, out: str | None = None) -> dict:
    """Write one table's day as Parquet under the target's bucket (`extracts/<table>/dt=<ds>/`);
    with `first_day`, every day from it to `ds` into `out` (the bootstrap's history export).

    The blocks table fails, writing nothing, when the warehouse has no block in the days.
    Returns the row count and the path.
    """
    if table not in datasets.EXTRACT_TABLES:
        raise ValueError(f"unknown extract table {table!r}; expected one of {datasets.EXTRACT_TABLES}")
    days = ds if first_day is None else f"the days from {first_day} to {ds}"
    con = connect_warehouse(target.warehouse)
    try:
        query = sql.to_duckdb(render_sql(table, ds, first_day))
        con.execute(f"CREATE OR REPLACE TEMP TABLE day AS {query}")
        rows = con.execute("SELECT count(*) FROM day").fetchone()[0]
        if table == "blocks" and rows == 0:
            raise NoBlocksError(
                f"No blocks on {days} in `{CATALOG}.crypto_bitcoin.blocks` "
                f"(warehouse {target.warehouse}). Load that day's exports, or pick a "
                "logical date the data covers."
            )
        out = out or datasets.extract_dir(target, table, ds)
        with write_dir(out) as tmp:
            con.execute(
                f"COPY (SELECT * FROM day ORDER BY {SORT_KEYS[table]}) "
                f"TO '{tmp}/{table}.parquet' (FORMAT parquet, COMPRESSION zstd)"
            )
        return {"rows": rows, "path": out}
    finally:
        con.close()


def count_blocks(target: Target, ds: str) -> str:
    """What a dry run says of the day locally: how many blocks the warehouse has for it."""
    con = connect_warehouse(target.warehouse)
    try:
        query = sql.to_duckdb(render_sql("blocks", ds))
        return f"{con.execute(f'SELECT count(*) FROM ({query})').fetchone()[0]} blocks in {target.warehouse}"
    finally:
        con.close()


def extract_day(target: Target, ds: str) -> dict:
    """Every extract table of the day (blocks first: no blocks, nothing written)."""
    return {table: extract_table(target, ds, table) for table in datasets.EXTRACT_TABLES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Extract one UTC day of crypto_bitcoin.")
    parser.add_argument("--ds", required=True, help="logical date, YYYY-MM-DD (UTC)")
    args = parser.parse_args(argv)
    for table, result in extract_day(current_target(), args.ds).items():
        print(f"{table}: {result['rows']} rows -> {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
