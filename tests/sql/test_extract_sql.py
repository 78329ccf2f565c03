"""Each extract SQL file, transpiled and run by DuckDB, against values computed here
independently from the real NDJSON exports in shared/ (plain json + gzip, no SQL)."""
from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest
import sqlglot

from pool_classifier import datasets
from pool_classifier.io import atomic, sql
from pool_classifier.steps import extract_day as extract
from tests.conftest import REAL_DATA


def _rows(path: Path):
    with gzip.open(path, "rt") as f:
        for line in f:
            yield json.loads(line)


def _day(timestamp: str) -> str:
    assert timestamp.endswith(" UTC")
    return timestamp[:10]


@pytest.fixture(scope="module")
def exports():
    """Blocks and transactions of every real export file, grouped by UTC day."""
    blocks, transactions = defaultdict(list), defaultdict(list)
    for file in sorted(REAL_DATA.rglob("*.ndjson.gz")):
        for row in _rows(file):
            if "transactions" in file.name:
                transactions[_day(row["block_timestamp"])].append(row)
            else:
                blocks[_day(row["timestamp"])].append(row)
    return blocks, transactions


def expected_outputs(transactions):
    return sorted(
        (
            t["hash"], t["block_hash"], t["block_number"], t["is_coinbase"], o["index"], o["type"],
            ",".join(o["addresses"] or []), int(o["value"]),
        )
        for t in transactions
        for o in t["outputs"]
    )


def expected_inputs(transactions):
    return sorted(
        (
            t["hash"], t["block_number"], i["index"], i["spent_transaction_hash"],
            i["spent_output_index"], ",".join(i["addresses"] or []), int(i["value"]),
        )
        for t in transactions
        for i in t["inputs"]
    )


def output_keys(rows):
    return sorted(
        (r["transaction_hash"], r["block_hash"], r["block_number"], r["is_coinbase"], r["output_index"],
         r["output_type"], r["address"], r["value"])
        for r in rows
    )


def input_keys(rows):
    return sorted(
        (r["transaction_hash"], r["block_number"], r["input_index"], r["spent_transaction_hash"],
         r["spent_output_index"], r["address"], r["value"])
        for r in rows
    )


def query(warehouse: str, table: str, ds: str, first_day: str | None = None) -> list[dict]:
    con = extract.connect_warehouse(warehouse)
    try:
        return con.execute(sql.to_duckdb(extract.render_sql(table, ds, first_day))).to_arrow_table().to_pylist()
    finally:
        con.close()


def read_extract(target, table, ds) -> list[dict]:
    return atomic.read_frame(datasets.extract_dir(target, table, ds)).to_dict("records")


# Days of the real data: genesis week (coinbases only), the first payments (block 170,
# 2009-01-12), a busy early day, and 2015-08-01 (block 367,891: P2SH, multisig, OP_RETURN).
DAYS_WITH_BLOCKS = ["2009-01-03", "2009-01-09", "2009-01-12", "2009-01-15", "2009-02-14"]


@pytest.mark.parametrize("ds", DAYS_WITH_BLOCKS)
def test_extract_day_matches_the_exports(real_target, exports, ds):
    blocks, transactions = exports
    result = extract.extract_day(real_target, ds)

    got_blocks = read_extract(real_target, "blocks", ds)
    assert [b["block_hash"] for b in got_blocks] == [
        b["hash"] for b in sorted(blocks[ds], key=lambda b: b["number"])
    ]
    by_hash = {b["hash"]: b for b in blocks[ds]}
    for b in got_blocks:
        want = by_hash[b["block_hash"]]
        assert b["block_number"] == want["number"]
        assert b["coinbase_param"] == want["coinbase_param"]
        assert b["transaction_count"] == want["transaction_count"]
        assert b["block_timestamp"].strftime("%Y-%m-%d %H:%M:%S UTC") == want["timestamp"]
        assert b["block_timestamp"].utcoffset() == dt.timedelta(0)
        assert b["block_timestamp_month"].isoformat() == want["timestamp_month"]

    got_outputs = output_keys(read_extract(real_target, "outputs", ds))
    assert got_outputs == expected_outputs(transactions[ds])
    assert input_keys(read_extract(real_target, "inputs", ds)) == expected_inputs(transactions[ds])
    assert result["outputs"]["rows"] == len(got_outputs)


def test_first_payment_day_has_inputs(real_target, exports):
    """2009-01-12 holds block 170: Satoshi pays Hal Finney 10 BTC (the first spend)."""
    extract.extract_day(real_target, "2009-01-12")
    inputs = read_extract(real_target, "inputs", "2009-01-12")
    first = [r for r in inputs if r["block_number"] == 170]
    assert len(first) == 1
    assert first[0]["address"] == "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
    assert first[0]["value"] == 50 * 100_000_000


def test_modern_block_outputs_and_inputs_are_exact(real_warehouse, exports):
    """Block 367,891 (2015-08-01): multisig, P2SH and OP_RETURN outputs, satoshi exact."""
    _, transactions = exports
    day = transactions["2015-08-01"]
    assert len(day) == 420
    outputs = query(real_warehouse, "outputs", "2015-08-01")
    assert output_keys(outputs) == expected_outputs(day)
    assert any(r["address"].startswith("nonstandard") for r in outputs)
    inputs = query(real_warehouse, "inputs", "2015-08-01")
    assert input_keys(inputs) == expected_inputs(day)
    assert sum(r["value"] for r in inputs) == sum(int(t["input_value"]) for t in day)


def test_day_without_blocks_fails_naming_date_and_table(real_target):
    """2015-08-01 has transactions in the warehouse but its block row is not there."""
    with pytest.raises(extract.NoBlocksError, match=r"2015-08-01.*crypto_bitcoin\.blocks"):
        extract.extract_day(real_target, "2015-08-01")
    # Nothing was written for the day.
    assert not atomic.exists(datasets.extract_dir(real_target, "outputs", "2015-08-01"))
    assert not Path(datasets.extract_dir(real_target, "blocks", "2015-08-01")).exists()


def test_rerun_replaces_the_day_byte_for_byte(real_target):
    extract.extract_day(real_target, "2009-01-12")
    folder = datasets.extract_dir(real_target, "outputs", "2009-01-12")
    first = {Path(f).name: Path(f).read_bytes() for f in atomic.data_files(folder)}
    first_version = atomic.data_files(folder)
    extract.extract_day(real_target, "2009-01-12")
    assert {Path(f).name: Path(f).read_bytes() for f in atomic.data_files(folder)} == first
    assert atomic.data_files(folder) != first_version  # a new version replaced the day...
    # ...and only it and the one it replaced are kept (for readers in flight); no temp folder.
    assert len([p for p in Path(folder).iterdir() if p.name.startswith("v=")]) == 2
    assert not [p for p in Path(folder).parent.iterdir() if p.name.startswith(".")]


def test_a_range_extracts_every_day_from_first_day_to_ds(real_warehouse, exports):
    """The bootstrap's history export: the same SQL over a range of days across months."""
    blocks, transactions = exports
    first, last = "2009-01-09", "2009-02-14"
    days = [d for d in transactions if first <= d <= last]
    assert len({d[:7] for d in days}) == 2 and len(days) > 3
    in_range = [t for d in days for t in transactions[d]]
    assert output_keys(query(real_warehouse, "outputs", last, first)) == expected_outputs(in_range)
    assert input_keys(query(real_warehouse, "inputs", last, first)) == expected_inputs(in_range)
    assert sorted(b["block_number"] for b in query(real_warehouse, "blocks", last, first)) == sorted(
        b["number"] for d in days for b in blocks[d])
    assert any(d < first for d in transactions) and any(d > last for d in transactions)  # days left out


@pytest.mark.parametrize("table", datasets.EXTRACT_TABLES)
def test_sql_filters_the_partition_column(table):
    """A scan without its partition filter would read the whole table on BigQuery."""
    partition = {"blocks": "timestamp_month"}.get(table, "block_timestamp_month")
    tree = sqlglot.parse_one(extract.render_sql(table, "2024-03-05"), read="bigquery")
    where = tree.find(sqlglot.exp.Where)
    assert where is not None
    filtered = {c.name for c in where.find_all(sqlglot.exp.Column)}
    assert partition in filtered


def test_render_refuses_a_non_date():
    with pytest.raises(ValueError):
        extract.render_sql("blocks", "2024-03-05'; DROP TABLE x; --")
