"""The project's SQL files: rendering them for a logical date, and BigQuery → DuckDB.

The files in `include/sql/` are BigQuery SQL with Jinja placeholders (`{{ ds }}`), the way
Airflow renders them. For the local target sqlglot transpiles them to DuckDB, with the
fixes below where sqlglot's mapping would lose exactness.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from pool_classifier.targets import SQL_DIR


def sql_path(name: str) -> Path:
    return SQL_DIR / f"{name}.sql"


def render(name: str, **params: str) -> str:
    """`include/sql/<name>.sql` rendered; every parameter must be an ISO date."""
    import jinja2

    for key, value in params.items():
        try:
            dt.date.fromisoformat(value)  # nothing but a date reaches the SQL text
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}.sql: {key}={value!r} is not a date YYYY-MM-DD") from exc
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
