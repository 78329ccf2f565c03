"""Static checks of the BigQuery SQL, run before a byte is billed.

* `partition_filter_problems`: every scan of `crypto_bitcoin.transactions` / `.blocks`
  must filter its partition column (`block_timestamp_month` / `timestamp_month`) against a
  constant, in the WHERE of the SELECT that reads the table, as a top-level AND term.
  Filtering only `block_timestamp` reads the whole table (years of data) instead of a
  month: the most expensive mistake this pipeline can make.
* `name_problems`: every table and column the SQL names exists in the table schemas
  (BigQuery JSON schema files `<dataset>.<table>.json`), fields of UNNESTed records too.

The gcp extract runs the first check before its dry run; the tests run both on every SQL
file. BigQuery's own dry run remains the final word on bytes.
"""
from __future__ import annotations

import json
from pathlib import Path

# The partition column of each partitioned source table.
PARTITION_COLUMNS = {"transactions": "block_timestamp_month", "blocks": "timestamp_month"}
SOURCE_PROJECT, SOURCE_DATASET = "bigquery-public-data", "crypto_bitcoin"


def _parse(sql_text: str):
    import sqlglot

    return sqlglot.parse_one(sql_text, read="bigquery")


def _conjuncts(condition) -> list:
    import sqlglot.expressions as exp

    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _is_constant(node) -> bool:
    import sqlglot.expressions as exp

    return not any(isinstance(n, (exp.Column, exp.Select, exp.Subquery)) for n in node.walk())


def _filters_column(term, column: str, qualifier: str, allow_bare: bool) -> bool:
    """Is `term` a pruning comparison of `column` (as `qualifier.column`, or bare if allowed)?"""
    import sqlglot.expressions as exp

    def is_partition(node) -> bool:
        return (
            isinstance(node, exp.Column)
            and node.name.lower() == column
            and (node.table == qualifier if node.table else allow_bare)
        )

    if isinstance(term, (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return (is_partition(term.left) and _is_constant(term.right)) or (
            is_partition(term.right) and _is_constant(term.left)
        )
    if isinstance(term, exp.Between):
        return is_partition(term.this) and _is_constant(term.args["low"]) and _is_constant(term.args["high"])
    if isinstance(term, exp.In):
        return is_partition(term.this) and all(_is_constant(e) for e in term.expressions) and bool(term.expressions)
    return False


def _source_name(table) -> str | None:
    """`transactions` / `blocks` when the table is a partitioned crypto_bitcoin table."""
    if table.name in PARTITION_COLUMNS and table.db == SOURCE_DATASET and table.catalog in ("", SOURCE_PROJECT):
        return table.name
    return None


def partition_filter_problems(sql_text: str) -> list[str]:
    """One message per scan of a partitioned source table without a partition filter."""
    import sqlglot.expressions as exp

    tree = _parse(sql_text)
    problems = []
    for table in tree.find_all(exp.Table):
        name = _source_name(table)
        if name is None:
            continue
        column = PARTITION_COLUMNS[name]
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        # A bare column name is the table's only when the SELECT reads no other table.
        scans = [t for t in select.find_all(exp.Table) if t.find_ancestor(exp.Select) is select] if select else []
        terms = _conjuncts(where.this) if where is not None else []
        if not any(_filters_column(t, column, table.alias_or_name, len(scans) == 1) for t in terms):
            problems.append(
                f"`{SOURCE_DATASET}.{name}` (as {table.alias_or_name}) is read without a filter on its "
                f"partition column `{column}`: BigQuery would scan every month of it. Add "
                f"`{column} = DATE_TRUNC(DATE '<day>', MONTH)` (or BETWEEN two constants) to the "
                "WHERE of the SELECT that reads it, as a term of a top-level AND."
            )
    return problems


# ---------------------------------------------------------------- names


def _column_type(field: dict) -> str:
    kind = field["type"].upper()
    if kind in ("RECORD", "STRUCT"):
        kind = "STRUCT<" + ", ".join(f"`{f['name']}` {_column_type(f)}" for f in field["fields"]) + ">"
    if field.get("mode", "").upper() == "REPEATED":
        kind = f"ARRAY<{kind}>"
    return kind


def load_schemas(schema_dir: str | Path) -> dict[str, list[dict]]:
    """`crypto_bitcoin.blocks.json` … → {"crypto_bitcoin.blocks": [field, …]}."""
    schemas = {p.name[: -len(".json")]: json.loads(p.read_text()) for p in sorted(Path(schema_dir).glob("*.json"))}
    if not schemas:
        raise FileNotFoundError(f"no table schema (*.json) in {schema_dir}")
    return schemas


def name_problems(sql_text: str, schema_dir: str | Path) -> list[str]:
    """Tables, columns and UNNESTed record fields the SQL names that the schemas lack."""
    import sqlglot.expressions as exp
    from sqlglot.errors import OptimizeError
    from sqlglot.optimizer.qualify import qualify

    schemas = load_schemas(schema_dir)
    tree = _parse(sql_text)
    problems = []
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    nested: dict[str, set[str]] = {}  # repeated record column → its field names
    catalog: dict = {}
    for key, fields in schemas.items():
        dataset, table = key.split(".", 1)
        catalog.setdefault(SOURCE_PROJECT, {}).setdefault(dataset, {})[table] = {
            f["name"]: _column_type(f) for f in fields
        }
        for f in fields:
            if f["type"].upper() in ("RECORD", "STRUCT") and f.get("mode", "").upper() == "REPEATED":
                nested[f["name"]] = {g["name"] for g in f["fields"]}
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        known = catalog.get(table.catalog or SOURCE_PROJECT, {}).get(table.db, {})
        if table.name not in known:
            problems.append(f"table `{table.catalog}.{table.db}.{table.name}` is not in {schema_dir}")
    if problems:
        return problems
    for unnest in tree.find_all(exp.Unnest):
        # BigQuery's `UNNEST(t.outputs) AS o` names the element: sqlglot keeps it as a column alias.
        alias_node = unnest.args.get("alias")
        alias = alias_node and (alias_node.name or (alias_node.columns[0].name if alias_node.columns else ""))
        array = unnest.expressions[0] if unnest.expressions else None
        if not alias or not isinstance(array, exp.Column) or array.name not in nested:
            continue
        fields = nested[array.name]
        for column in tree.find_all(exp.Column):
            if column.table == alias and column.name not in fields:
                problems.append(
                    f"`{alias}.{column.name}`: the records of `{array.name}` have no field "
                    f"{column.name!r} (fields: {', '.join(sorted(fields))})"
                )
    try:
        qualify(tree.copy(), schema=catalog, dialect="bigquery", validate_qualify_columns=True)
    except OptimizeError as exc:
        problems.append(f"unknown column: {exc}")
    return problems
