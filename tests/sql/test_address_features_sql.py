"""Two independent implementations of the features must agree: the BigQuery SQL in
include/sql/address_features.sql (through sqlglot and DuckDB) and the Spark job.
Integers and satoshi sums exactly, doubles to 1e-9 relative; on every real block of
shared/ and on generated days."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from pool_classifier.io import sql, warehouse
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from pool_classifier.steps import extract_day as extract
from spark_jobs import build_features as job
from tools import synthetic_chain


def sql_features(warehouse_path: str, first_day: str, ds: str) -> dict[str, dict]:
    con = extract.connect_warehouse(warehouse_path)
    try:
        query = sql.to_duckdb(sql.render("address_features", first_day=first_day, ds=ds))
        cursor = con.execute(query)
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row)) for row in cursor.fetchall()}
    finally:
        con.close()


def spark_features(spark, warehouse_path: str, tmp_path) -> dict[str, dict]:
    """The Spark transforms over every day of the warehouse, fed by the extract SQL."""
    con = extract.connect_warehouse(warehouse_path)
    try:
        days = [d.isoformat() for (d,) in con.execute(
            'SELECT DISTINCT CAST(block_timestamp AS DATE) FROM "bigquery-public-data".crypto_bitcoin.transactions ORDER BY 1'
        ).fetchall()]
        for table in ("outputs", "inputs"):
            for ds in days:
                query = sql.to_duckdb(extract.render_sql(table, ds))
                con.execute(f"COPY ({query}) TO '{tmp_path}/{table}-{ds}.parquet' (FORMAT parquet)")
    finally:
        con.close()
    outputs = spark.read.parquet(f"{tmp_path}/outputs-*.parquet")
    inputs = spark.read.parquet(f"{tmp_path}/inputs-*.parquet")
    rows = job.address_features(job.ordinary_flows(outputs, inputs)).collect()
    return {r["address"]: r.asDict() for r in rows}


def assert_same_features(from_sql: dict, from_spark: dict) -> None:
    assert set(from_sql) == set(from_spark)
    mismatches = []
    for address, want in from_spark.items():
        got = from_sql[address]
        for name in (*FEATURE_COLUMNS, FIRST_SEEN):
            a, b = want[name], got[name]
            if isinstance(a, float) or isinstance(b, float):
                same = math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
            elif isinstance(a, Decimal):
                same = a == Decimal(int(b)) and a == a.to_integral_value()
            else:
                same = int(a) == int(b)
            if not same:
                mismatches.append((address, name, a, b))
    assert mismatches == [], mismatches[:10]


def test_sql_and_spark_agree_on_every_real_block(spark, real_warehouse, tmp_path):
    from_sql = sql_features(real_warehouse, "2009-01-03", "2020-12-31")
    from_spark = spark_features(spark, real_warehouse, tmp_path)
    assert len(from_spark) > 900  # the 2009 payments and block 367,891's 420 transactions
    assert_same_features(from_sql, from_spark)
    # The window holds addresses with several receipts and spends: the hard cases.
    assert sum(1 for r in from_spark.values() if r["total_tx_output_count"] >= 3 and r["has_spent"]) >= 5


def test_sql_and_spark_agree_on_generated_days(spark, tmp_path):
    synthetic_chain.generate(tmp_path / "chain", dt.date(2024, 4, 18), days=3, tx_per_day=2000, seed=5)
    wh = str(tmp_path / "wh.duckdb")
    warehouse.load_exports(tmp_path / "chain", wh)
    from_sql = sql_features(wh, "2024-04-18", "2024-04-20")
    from_spark = spark_features(spark, wh, tmp_path)
    assert len(from_spark) > 3000
    assert_same_features(from_sql, from_spark)
    assert any(r["stddev_output_idle_time"] > 0 for r in from_spark.values())


def test_a_day_window_reads_only_its_months():
    rendered = sql.render("address_features", first_day="2024-03-05", ds="2024-03-05")
    assert "DATE_TRUNC(DATE '2024-03-05', MONTH)" in rendered


def test_render_refuses_a_non_date():
    with pytest.raises(ValueError, match="first_day"):
        sql.render("address_features", first_day="yesterday", ds="2024-03-05")
