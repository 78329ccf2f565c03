"""The local warehouse: `crypto_bitcoin.blocks` / `.transactions` in a DuckDB file.

It stands in for `bigquery-public-data` on one machine: the file is attached under that
catalog name, so the extract SQL names the same tables as on BigQuery. Column types
follow the BigQuery schemas in `include/schemas/` (NUMERIC as DECIMAL(38, 9), as exact
as BigQuery's, TIMESTAMP as TIMESTAMPTZ in UTC).

`load_exports` loads any folder of BigQuery NDJSON exports (gzip or not), as written by
`bq extract --destination_format NEWLINE_DELIMITED_JSON` or by `synthetic_chain`.
Loading is idempotent: rows already present (same block hash, same transaction hash in
the same block) are replaced, never doubled.

    python -m pool_classifier.warehouse load DIR [--warehouse FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pool_classifier.targets import SCHEMA_DIR, current_target

CATALOG = "bigquery-public-data"
DATASET = "crypto_bitcoin"
TABLES = ("blocks", "transactions")
# Keys that identify a row: BIP30 allowed two coinbases with one hash in two blocks.
TABLE_KEYS = {"blocks": ("hash",), "transactions": ("hash", "block_hash")}
_EXPORT_SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz", ".jsonl", ".jsonl.gz")

_SCALAR_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "INTEGER": "BIGINT",
    "NUMERIC": "DECIMAL(38, 9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
    "FLOAT64": "DOUBLE",
}


class WarehouseLoadError(ValueError):
    """An export file that cannot be loaded; the message names the file and the problem."""


def table_schema(table: str) -> list[dict]:
    """The BigQuery schema (list of fields) of `crypto_bitcoin.<table>`."""
    return json.loads((SCHEMA_DIR / f"crypto_bitcoin.{table}.json").read_text())


def _duckdb_type(field: dict, *, json_side: bool = False) -> str:
    """DuckDB type of a BigQuery field; on the JSON side timestamps are read as text."""
    kind = field["type"].upper()
    if kind in ("RECORD", "STRUCT"):
        members = ", ".join(
            f'"{f["name"]}" {_duckdb_type(f, json_side=json_side)}' for f in field["fields"]
        )
        base = f"STRUCT({members})"
    elif json_side and kind == "TIMESTAMP":
        base = "VARCHAR"
    else:
        base = _SCALAR_TYPES[kind]
    if field.get("mode", "NULLABLE").upper() == "REPEATED":
        return f"{base}[]"
    return base


def create_tables(con) -> None:
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{DATASET}"')
    for table in TABLES:
        columns = ", ".join(f'"{f["name"]}" {_duckdb_type(f)}' for f in table_schema(table))
        con.execute(f'CREATE TABLE IF NOT EXISTS "{DATASET}"."{table}" ({columns})')


def connect(path: str | Path, *, read_only: bool = False):
    """A DuckDB connection to the warehouse file itself (for loading)."""
    import duckdb

    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(
            f"No local warehouse at {path}. Load data first: "
            "`make run` does it, or `python -m pool_classifier.warehouse load DIR`."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    return con


def export_table(file: Path) -> str:
    """Which table an export file belongs to, from its name."""
    name = file.name.lower()
    if "transactions" in name:
        return "transactions"
    if "blocks" in name:
        return "blocks"
    raise WarehouseLoadError(
        f"{file}: cannot tell the table from the file name; name exports "
        "'*blocks*.json[.gz]' or '*transactions*.json[.gz]'."
    )


def find_exports(source: Path) -> list[Path]:
    source = Path(source)
    if source.is_file():
        return [source]
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and p.name.lower().endswith(_EXPORT_SUFFIXES)
    )
    if not files:
        raise WarehouseLoadError(f"{source}: no NDJSON export files (*.json, *.ndjson, .gz) found")
    return files


def _select_list(table: str) -> str:
    """Columns of the staged JSON converted to the warehouse types (timestamps parsed as UTC)."""
    parts = []
    for f in table_schema(table):
        name = f'"{f["name"]}"'
        if f["type"].upper() == "TIMESTAMP":
            # Exports write "YYYY-MM-DD HH:MM:SS UTC"; strptime keeps it in UTC.
            parts.append(
                f"CAST(strptime(replace({name}, ' UTC', ''), '%Y-%m-%d %H:%M:%S') "
                f"AS TIMESTAMP) AT TIME ZONE 'UTC' AS {name}"
            )
        else:
            parts.append(name)
    return ", ".join(parts)


def load_file(con, file: Path) -> tuple[str, int]:
    """Load one export file into its table; returns (table, rows)."""
    table = export_table(file)
    schema = table_schema(table)
    columns = {f["name"]: _duckdb_type(f, json_side=True) for f in schema}
    columns_sql = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM read_json(?, "
            f"format='newline_delimited', columns={columns_sql}, compression='auto_detect')",
            [str(file)],
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE typed AS SELECT {_select_list(table)} FROM staged"
        )
    except Exception as exc:  # duckdb raises several types; the file name is what matters
        raise WarehouseLoadError(f"{file}: not a valid {table} export: {exc}") from exc
    required = [f["name"] for f in schema if f.get("mode", "").upper() == "REQUIRED"]
    nulls = con.execute(
        "SELECT " + ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in required)
        + " FROM typed"
    ).fetchone()
    bad = {c: n for c, n in zip(required, nulls) if n}
    if bad:
        raise WarehouseLoadError(
            f"{file}: REQUIRED fields of {table} are null (column: rows): {bad}"
        )
    keys = TABLE_KEYS[table]
    dupes = con.execute(
        f"SELECT count(*) - count(DISTINCT ({', '.join(keys)})) FROM typed"
    ).fetchone()[0]
    if dupes:
        raise WarehouseLoadError(f"{file}: {dupes} duplicated {table} rows (same {keys})")
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    con.execute("BEGIN")
    con.execute(
        f'DELETE FROM "{DATASET}"."{table}" AS t WHERE EXISTS '
        f"(SELECT 1 FROM typed AS s WHERE {key_match})"
    )
    con.execute(f'INSERT INTO "{DATASET}"."{table}" SELECT * FROM typed')
    con.execute("COMMIT")
    rows = con.execute("SELECT count(*) FROM typed").fetchone()[0]
    return table, rows


def load_exports(source: str | Path, warehouse: str | Path) -> dict[str, int]:
    """Load every export file under `source` into the warehouse; returns rows per table."""
    files = find_exports(Path(source))
    con = connect(warehouse)
    try:
        create_tables(con)
        loaded = {t: 0 for t in TABLES}
        for file in files:
            table, rows = load_file(con, file)
            loaded[table] += rows
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="load a folder of BigQuery NDJSON exports")
    load.add_argument("source", type=Path)
    load.add_argument("--warehouse", default=None, help="DuckDB file (default: the target's)")
    args = parser.parse_args(argv)
    warehouse = args.warehouse or current_target().warehouse
    loaded = load_exports(args.source, warehouse)
    print(f"loaded {loaded} from {args.source} into {warehouse}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
