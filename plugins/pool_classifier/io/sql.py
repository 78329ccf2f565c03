"""The project's SQL files: rendering them for a logical date, and BigQuery → DuckDB.

The files in `include/sql/` are BigQuery SQL with Jinja placeholders (`{{ ds }}`), the way
Airflow renders them. For the local target sqlglot transpiles them to DuckDB, with the
fixes below where sqlglot's mapping would lose exactness.
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pool_classifier.datasets import SQL_DIR

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


def sql_path(name: str) -> Path:
    return SQL_DIR / f"{name}.sql"


def render(name: str, **params: str) -> str:
    """`include/sql/<name>.sql` rendered; every parameter must be an ISO date, or an ISO date and
    time (`YYYY-MM-DD HH:MM:SS`, the hourly window's bounds)."""
    import jinja2

    for key, value in params.items():
        try:
            # Nothing but a date or a date and time reaches the SQL text.
            if _DATETIME.fullmatch(value):
                dt.datetime.fromisoformat(value)
            else:
                dt.date.fromisoformat(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}.sql: {key}={value!r} is not a date YYYY-MM-DD "
                             "(or a time YYYY-MM-DD HH:MM:SS)") from exc
    template = jinja2.Template(sql_path(name).read_text(), undefined=jinja2.StrictUndefined)
    return template.render(**params)


def _exact_types(node):
    """sqlglot maps BIGNUMERIC to DECIMAL(38, 5) and NUMERIC to DECIMAL(18, 3), which round.

    The project casts only integer satoshi to them: HUGEINT (128-bit) keeps BIGNUMERIC
    sums of squares exact, DECIMAL(38, 9) is NUMERIC's own precision and scale.
    """
    import sqlglot.expressions as exp

    if isinstance(node, exp.DataType):
        if node.this == exp.DataType.Type.BIGDECIMAL:
            return exp.DataType.build("HUGEINT")
        if node.this == exp.DataType.Type.DECIMAL and not node.expressions:
            return exp.DataType.build("DECIMAL(38, 9)")
    return node


def to_duckdb(bigquery_sql: str) -> str:
    """BigQuery SQL → DuckDB SQL, with exact numeric types."""
    import sqlglot

    tree = sqlglot.parse_one(bigquery_sql, read="bigquery")
    return tree.transform(_exact_types).sql(dialect="duckdb")


def query_names(name: str) -> dict[str, str]:
    """The queries of `include/sql/<name>.sql` as templates, each after a `-- name: <query>` line."""
    queries, current, lines = {}, None, []
    for line in sql_path(name).read_text().splitlines():
        if line.startswith("-- name:"):
            if current:
                queries[current] = "\n".join(lines)
            current, lines = line.split(":", 1)[1].strip(), []
        elif current:
            lines.append(line)
    if current:
        queries[current] = "\n".join(lines)
    return queries


def named_query(file: str, query: str, **params) -> str:
    """One query of `include/sql/<file>.sql` rendered with `params` (Jinja, strict): the gates'
    SQL, in DuckDB's dialect."""
    import jinja2

    queries = query_names(file)
    if query not in queries:
        raise KeyError(f"{sql_path(file)} has no query {query!r}; it has {sorted(queries)}")
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(queries[query])
    return template.render(**params).strip().rstrip(";")
