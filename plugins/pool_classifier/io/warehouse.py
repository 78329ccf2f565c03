"""The local warehouse: `crypto_bitcoin.blocks` / `.transactions` in a DuckDB file.

It stands in for `bigquery-public-data` on one machine: the file is attached under that
catalog name, so the extract SQL names the same tables as on BigQuery. Column types
follow the BigQuery schemas in `include/schemas/` (NUMERIC as DECIMAL(38, 9), as exact
as BigQuery's, TIMESTAMP as TIMESTAMPTZ in UTC).

`load_exports` loads any folder of BigQuery NDJSON exports (gzip or not), as written by
`bq extract --destination_format NEWLINE_DELIMITED_JSON` or by `synthetic_chain`.
Loading is idempotent: rows already present (same block hash, same transaction hash in
the same block) are replaced, never doubled.

Every file is checked before any row of it is loaded, and a bad file is refused whole with
a `WarehouseLoadError` that names the file and the problem: a truncated or corrupt file
(gzip or JSON), a column the schema does not have or a column missing from every row, a
REQUIRED field that is null, a value that is null, negative or above the 21 million BTC
money supply, a row whose key is repeated with different contents, a row that an earlier
file of the same load already holds. A row repeated with the SAME contents (an export
concatenated twice) loses nothing when kept once: its extra copies are quarantined in
`<warehouse folder>/quarantine/<file>.duplicates.json` with a summary of the counts, and a
warning says so.

    python -m pool_classifier.io.warehouse load DIR [--warehouse FILE]
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from pool_classifier.datasets import SCHEMA_DIR
from pool_classifier.errors import DataError
from pool_classifier.targets import current_target

CATALOG = "bigquery-public-data"
DATASET = "crypto_bitcoin"
TABLES = ("blocks", "transactions")
# Keys that identify a row: BIP30 allowed two coinbases with one hash in two blocks.
TABLE_KEYS = {"blocks": ("hash",), "transactions": ("hash", "block_hash")}
_EXPORT_SUFFIXES = (".json", ".ndjson", ".json.gz", ".ndjson.gz", ".jsonl", ".jsonl.gz")
# 21 million BTC in satoshi: no value of a real output or input can be larger.
MAX_MONEY_SATOSHI = 21_000_000 * 100_000_000
# Values that must be integer satoshi in [0, MAX_MONEY] (nested: list column -> member).
_VALUE_COLUMNS = {
    "transactions": {"nested": [("outputs", "value"), ("inputs", "value")],
                     "scalar": ["output_value", "input_value", "fee"]},
    "blocks": {"nested": [], "scalar": []},
}
# How many example keys an error or a quarantine summary lists.
_EXAMPLES = 5

log = logging.getLogger(__name__)

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


class WarehouseLoadError(DataError, ValueError):
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
            "`make run` does it, or `python -m pool_classifier.io.warehouse load DIR`."
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


def _read_error(file: Path, table: str, exc: Exception) -> WarehouseLoadError:
    """A DuckDB read error said as what it means for the file (first line only: the rest is
    DuckDB's echo of the query)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "GZIP" in text.upper() or "gzip" in text:
        what = "truncated or corrupt gzip file (the compressed stream is cut or damaged)"
    elif "Malformed JSON" in text:
        line = re.search(r"line (\d+)", text)
        where = f" at line {line.group(1)}" if line else ""
        what = f"not valid newline-delimited JSON{where} (a truncated or corrupt file)"
    else:
        what = f"not a valid {table} export"
    return WarehouseLoadError(f"{file}: {what}: {text.rstrip('. ')}. Re-export or re-download the file.")


def _check_columns(con, file: Path, table: str, schema: list[dict]) -> int:
    """Refuse keys the schema does not have and columns absent from every row; returns rows.

    read_json with fixed columns would silently drop an unknown key and fill an absent
    column with nulls: both mean the file is not the export it claims to be.
    """
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE raw AS SELECT json FROM read_ndjson_objects(?)", [str(file)]
        )
    except Exception as exc:
        raise _read_error(file, table, exc) from exc
    rows = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    if rows == 0:
        raise WarehouseLoadError(f"{file}: no rows (an empty {table} export)")

    def key_counts(sql: str) -> dict[str, int]:
        return dict(con.execute(f"SELECT k, count(*) FROM ({sql}) GROUP BY k").fetchall())

    problems = []
    levels = [("", [f["name"] for f in schema], key_counts("SELECT unnest(json_keys(json)) AS k FROM raw"))]
    for f in schema:
        if f["type"].upper() in ("RECORD", "STRUCT"):
            counts = key_counts(
                "SELECT unnest(json_keys(m)) AS k FROM "
                f"(SELECT unnest(json_extract(json, '$.{f['name']}[*]')) AS m FROM raw)"
            )
            if counts:  # no member anywhere (e.g. only coinbases have no inputs): nothing to check
                levels.append((f"{f['name']}.", [g["name"] for g in f["fields"]], counts))
    for prefix, expected, counts in levels:
        extra = sorted(set(counts) - set(expected))
        if extra:
            problems.append(
                "unexpected column(s) " + ", ".join(f"{prefix}{k} (in {counts[k]} rows)" for k in extra)
            )
        missing = [f"{prefix}{k}" for k in expected if k not in counts]
        if missing:
            problems.append(f"column(s) {', '.join(missing)} missing from every row")
    if problems:
        raise WarehouseLoadError(
            f"{file}: not the crypto_bitcoin.{table} schema (include/schemas/crypto_bitcoin.{table}.json): "
            + "; ".join(problems)
        )
    return rows


def _check_values(con, file: Path, table: str, schema: list[dict]) -> None:
    """REQUIRED fields not null; values null-free, not negative, within the money supply."""
    required = [f["name"] for f in schema if f.get("mode", "").upper() == "REQUIRED"]
    nulls = con.execute(
        "SELECT " + ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in required)
        + " FROM typed"
    ).fetchone()
    bad = {c: n for c, n in zip(required, nulls) if n}
    for f in schema:
        if f["type"].upper() in ("RECORD", "STRUCT"):
            for g in f["fields"]:
                if g.get("mode", "").upper() == "REQUIRED":
                    n = con.execute(
                        f'SELECT count(*) FROM (SELECT unnest("{f["name"]}") AS m FROM typed) '
                        f'WHERE m."{g["name"]}" IS NULL'
                    ).fetchone()[0]
                    if n:
                        bad[f"{f['name']}.{g['name']}"] = n
    if bad:
        raise WarehouseLoadError(
            f"{file}: REQUIRED fields of {table} are null (column: rows): {bad}"
        )
    problems = []
    key = TABLE_KEYS[table][0]
    checks = [(f'"{c}"', c, "typed") for c in _VALUE_COLUMNS[table]["scalar"]]
    checks += [
        (f'm."{member}"', f"{column}.{member}",
         f'(SELECT {key}, unnest("{column}") AS m FROM typed)')
        for column, member in _VALUE_COLUMNS[table]["nested"]
    ]
    for expr, name, source in checks:
        nested = name.count(".") == 1
        null_count = "count(*) FILTER (WHERE {e} IS NULL)".format(e=expr) if nested else "0"
        n_null, n_negative, n_huge, examples = con.execute(
            f"SELECT {null_count}, count(*) FILTER (WHERE {expr} < 0), "
            f"count(*) FILTER (WHERE {expr} > {MAX_MONEY_SATOSHI}), "
            f"list(DISTINCT {key}) FILTER (WHERE {expr} < 0 OR {expr} > {MAX_MONEY_SATOSHI}"
            f"{f' OR {expr} IS NULL' if nested else ''}) FROM {source}"
        ).fetchone()
        found = [f"{n} {what}" for n, what in (
            (n_null, "null"), (n_negative, "negative"), (n_huge, f"above {MAX_MONEY_SATOSHI} satoshi (21M BTC)")
        ) if n]
        if found:
            shown = ", ".join(sorted(examples or [])[:_EXAMPLES])
            problems.append(f"{name}: {' and '.join(found)} (rows with {key} {shown})")
    if problems:
        raise WarehouseLoadError(f"{file}: impossible {table} values: " + "; ".join(problems))


def _drop_exact_duplicates(con, file: Path, table: str, quarantine_dir: Path | None) -> int:
    """Rows repeated with different contents refuse the file; identical copies are quarantined.

    Returns the number of copies quarantined (removed from what is loaded).
    """
    keys = TABLE_KEYS[table]
    key_list = ", ".join(keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE repeated AS SELECT {key_list}, count(*) AS copies, "
        f"count(DISTINCT t) AS versions FROM typed AS t GROUP BY {key_list} HAVING count(*) > 1"
    )
    conflicting, extra_copies = con.execute(
        "SELECT count(*) FILTER (WHERE versions > 1), coalesce(sum(copies - 1), 0) FROM repeated"
    ).fetchone()
    if not extra_copies:
        return 0
    examples = [r[0] for r in con.execute(
        f"SELECT {keys[0]} FROM repeated ORDER BY versions DESC, {keys[0]} LIMIT {_EXAMPLES}"
    ).fetchall()]
    if conflicting:
        raise WarehouseLoadError(
            f"{file}: {conflicting} {table} keys {keys} appear more than once with different "
            f"contents (e.g. {', '.join(examples)}); the export is inconsistent: re-export it."
        )
    if quarantine_dir is None:
        raise WarehouseLoadError(
            f"{file}: {extra_copies} duplicated {table} rows (same {keys}, same contents, "
            f"e.g. {', '.join(examples)})"
        )
    from pool_classifier.io.atomic import write_text_atomically

    quarantine_dir.mkdir(parents=True, exist_ok=True)
    copies_file = quarantine_dir / f"{file.name}.duplicates.json"
    con.execute(
        f"COPY (SELECT t.* FROM typed AS t SEMI JOIN repeated USING ({key_list}) "
        f"QUALIFY row_number() OVER (PARTITION BY {key_list}) > 1 ORDER BY {key_list}) "
        f"TO '{copies_file}' (FORMAT json)"
    )
    rows_in_file = con.execute("SELECT count(*) FROM typed").fetchone()[0]
    summary = {
        "file": str(file),
        "table": table,
        "rows_in_file": rows_in_file,
        "rows_loaded": rows_in_file - extra_copies,
        "duplicate_copies_quarantined": int(extra_copies),
        "keys_repeated": con.execute("SELECT count(*) FROM repeated").fetchone()[0],
        "key_columns": list(keys),
        "examples": examples,
        "copies_file": str(copies_file),
    }
    write_text_atomically(
        quarantine_dir / f"{file.name}.summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE typed AS SELECT * FROM typed "
        f"QUALIFY row_number() OVER (PARTITION BY {key_list}) = 1"
    )
    log.warning(
        "%s: %d identical duplicate %s rows quarantined in %s (%d rows loaded of %d)",
        file, extra_copies, table, copies_file, rows_in_file - extra_copies, rows_in_file,
    )
    return int(extra_copies)


def _check_not_in_earlier_file(con, file: Path, table: str) -> None:
    """Within one load, two files holding the same rows are overlapping exports: refuse."""
    keys = TABLE_KEYS[table]
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'this_load' AND temporary"
    ).fetchone()[0]
    if not exists:
        return
    match = " AND ".join(f"l.k{i} = CAST(t.{k} AS VARCHAR)" for i, k in enumerate(keys))
    n, other = con.execute(
        f"SELECT count(*), min(l.file) FROM typed AS t JOIN this_load AS l "
        f"ON l.tbl = '{table}' AND {match}"
    ).fetchone()
    if n:
        raise WarehouseLoadError(
            f"{file}: {n} {table} rows are also in {other}, loaded just before in this load: "
            "overlapping exports; keep one of the two files."
        )


def _remember_keys(con, file: Path, table: str) -> None:
    keys = TABLE_KEYS[table]
    con.execute(
        "CREATE TEMP TABLE IF NOT EXISTS this_load (tbl VARCHAR, k0 VARCHAR, k1 VARCHAR, file VARCHAR)"
    )
    values = ", ".join(f"CAST({k} AS VARCHAR)" for k in keys)
    padding = ", NULL" * (2 - len(keys))
    con.execute(f"INSERT INTO this_load SELECT '{table}', {values}{padding}, ? FROM typed", [str(file)])


def load_file(con, file: Path, quarantine_dir: Path | None = None) -> tuple[str, int]:
    """Load one export file into its table; returns (table, rows loaded).

    The file is checked first (see the module's docstring) and refused whole when bad.
    Identical duplicate rows go to `quarantine_dir` (when given; else they refuse the file).
    """
    file = Path(file)
    table = export_table(file)
    schema = table_schema(table)
    _check_columns(con, file, table, schema)
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
        raise _read_error(file, table, exc) from exc
    _check_values(con, file, table, schema)
    _drop_exact_duplicates(con, file, table, quarantine_dir)
    _check_not_in_earlier_file(con, file, table)
    keys = TABLE_KEYS[table]
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    con.execute("BEGIN")
    con.execute(
        f'DELETE FROM "{DATASET}"."{table}" AS t WHERE EXISTS '
        f"(SELECT 1 FROM typed AS s WHERE {key_match})"
    )
    con.execute(f'INSERT INTO "{DATASET}"."{table}" SELECT * FROM typed')
    con.execute("COMMIT")
    _remember_keys(con, file, table)
    rows = con.execute("SELECT count(*) FROM typed").fetchone()[0]
    return table, rows


def quarantine_dir(warehouse: str | Path) -> Path:
    """Where identical duplicate rows of the exports loaded into `warehouse` are kept."""
    from pool_classifier import datasets

    return Path(datasets.quarantine_dir(str(warehouse)))


def load_exports(source: str | Path, warehouse: str | Path) -> dict[str, int]:
    """Load every export file under `source` into the warehouse; returns rows per table.

    A bad file stops the load with a WarehouseLoadError naming it; the files before it
    stay loaded (each file is one transaction), so fixing it and loading again is enough.
    """
    files = find_exports(Path(source))
    con = connect(warehouse)
    try:
        create_tables(con)
        loaded = {t: 0 for t in TABLES}
        for file in files:
            table, rows = load_file(con, file, quarantine_dir(warehouse))
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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        loaded = load_exports(args.source, warehouse)
    except WarehouseLoadError as exc:
        print(f"load refused: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {loaded} from {args.source} into {warehouse}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
