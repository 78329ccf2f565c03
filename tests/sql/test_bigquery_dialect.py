"""Every SQL file is BigQuery SQL that names only what crypto_bitcoin has, and every scan of
transactions/blocks filters its partition column (the check fails a query without it)."""
from __future__ import annotations

import pytest

from pool_classifier.datasets import SQL_DIR
from pool_classifier.io import sql, sql_checks
from tests.orchestration.gcp_dag import DS, SHARED_SCHEMA_DIR

SQL_FILES = sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def rendered(name: str) -> str:
    # Every parameter the files use; a file ignores the ones it does not.
    return sql.render(name, ds=DS, first_day="2024-02-27", last_day=DS,
                      start="2024-02-29 22:00:00", end="2024-03-01 01:00:00")


def test_the_sql_files_are_found():
    assert {"extract_blocks", "extract_outputs", "extract_inputs", "address_features"} <= set(SQL_FILES)


@pytest.mark.parametrize("name", SQL_FILES)
def test_parses_in_the_bigquery_dialect(name):
    import sqlglot
    from sqlglot.errors import ErrorLevel

    tree = sqlglot.parse_one(rendered(name), read="bigquery", error_level=ErrorLevel.RAISE)
    assert tree.find(sqlglot.exp.Select) is not None


@pytest.mark.parametrize("name", SQL_FILES)
def test_names_only_tables_and_columns_of_the_shared_schemas(name):
    assert sql_checks.name_problems(rendered(name), SHARED_SCHEMA_DIR) == []


@pytest.mark.parametrize("name", SQL_FILES)
def test_every_scan_filters_the_partition_column(name):
    assert sql_checks.partition_filter_problems(rendered(name)) == []


@pytest.mark.parametrize("broken, expected", [
    (("o.value", "o.amount"), "records of `outputs` have no field 'amount'"),
    (("t.block_number", "t.height"), "height"),
    (("crypto_bitcoin.transactions", "crypto_bitcoin.txs"), "crypto_bitcoin.txs` is not in"),
])
def test_the_name_check_fails_on_a_name_the_schemas_lack(broken, expected):
    query = rendered("extract_outputs").replace(*broken)
    problems = sql_checks.name_problems(query, SHARED_SCHEMA_DIR)
    assert len(problems) == 1 and expected in problems[0]


MONTHS = "DATE_TRUNC(DATE '2024-02-27', MONTH) AND DATE_TRUNC(DATE '2024-03-01', MONTH)"
PARTITION_FILTER = f"t.block_timestamp_month BETWEEN {MONTHS}\n  AND "


@pytest.mark.parametrize("change", [
    # Only the day: BigQuery would read every month of the table.
    (PARTITION_FILTER, ""),
    # Under an OR, the filter prunes nothing.
    (PARTITION_FILTER, f"t.block_timestamp_month BETWEEN {MONTHS}\n  OR "),
    # Against a subquery, not a constant.
    ("DATE_TRUNC(DATE '2024-03-01', MONTH)",
     "(SELECT MAX(block_timestamp_month) FROM `bigquery-public-data.crypto_bitcoin.transactions`)"),
    # On an expression of the partition column.
    ("t.block_timestamp_month BETWEEN", "DATE(t.block_timestamp_month) BETWEEN"),
])
def test_a_scan_without_a_pruning_partition_filter_fails_the_check(change):
    query = rendered("extract_outputs")
    assert change[0] in query
    problems = sql_checks.partition_filter_problems(query.replace(*change))
    assert problems and "partition column `block_timestamp_month`" in problems[0]


def test_the_blocks_table_needs_its_own_partition_column():
    query = rendered("extract_blocks").replace("WHERE timestamp_month BETWEEN", "WHERE number BETWEEN")
    assert "`timestamp_month`" in sql_checks.partition_filter_problems(query)[0]


def test_a_filter_on_another_tables_partition_column_does_not_count():
    query = (
        "SELECT b.number FROM `bigquery-public-data.crypto_bitcoin.blocks` AS b "
        "JOIN `bigquery-public-data.crypto_bitcoin.transactions` AS t ON t.block_hash = b.`hash` "
        "WHERE b.timestamp_month = DATE '2024-03-01' AND b.timestamp_month = DATE '2024-03-01'"
    )
    problems = sql_checks.partition_filter_problems(query)
    assert len(problems) == 1 and "crypto_bitcoin.transactions` (as t)" in problems[0]


@pytest.mark.parametrize("value", ["2024-03-01T10:00:00", "2024-03-01 10:00", "2024-03-01 10:00:00' OR 1=1 --",
                                   "2024-13-01 10:00:00"])
def test_only_a_date_or_a_whole_time_reaches_the_sql(value):
    """The hourly window's bounds: `YYYY-MM-DD HH:MM:SS` exactly, and a real time, or refused."""
    with pytest.raises(ValueError, match="is not a date YYYY-MM-DD"):
        sql.render("hourly_blocks", first_day="2024-03-01", last_day="2024-03-01", start=value,
                   end="2024-03-01 11:00:00")
