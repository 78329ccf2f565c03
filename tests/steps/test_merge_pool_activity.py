"""merge_pool_activity and publish_pool_activity over a real warehouse (a generated day loaded by
the real loader, and the real tagged blocks of shared/): re-runs, hours out of order, a reorged
block, an empty window, bad input, and the table's rows checked against the blocks themselves."""
from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import shutil

import pytest

from pool_classifier import attribution, datasets
from pool_classifier.io import versioned
from pool_classifier.io.warehouse import load_exports
from pool_classifier.steps import merge_pool_activity as merge
from pool_classifier.steps.publish_pool_activity import HOURS_FILE, publish_pool_activity
from pool_classifier.targets import Target, local
from tests.conftest import REAL_DATA
from tools import synthetic_chain

DAY = "2024-03-01"
FS = versioned.LocalFS()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """One generated day (≈ 143 blocks) in export files, and a warehouse loaded from them."""
    root = tmp_path_factory.mktemp("hourly")
    synthetic_chain.generate(root / "chain", dt.date.fromisoformat(DAY), days=1, tx_per_day=400, seed=11)
    load_exports(root / "chain", root / "warehouse.duckdb")
    return root


@pytest.fixture
def target(chain, tmp_path) -> Target:
    """The local target over a private copy of the warehouse (free to reorg), writing to tmp."""
    shutil.copy(chain / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return dataclasses.replace(local.target(), bucket=str(tmp_path / "bucket"), warehouse=str(tmp_path / "warehouse.duckdb"))


def hour_of(target, table: str, hour: str) -> tuple[list[dict], dict]:
    location = datasets.activity_hour_dir(target, table, hour)
    pointer = versioned.read_pointer(FS, location)
    assert pointer is not None, f"{location} was not written"
    rows = [r for path in versioned.data_files(FS, location, pointer=pointer) for r in merge.read_parquet_rows(FS, path)]
    return rows, pointer["meta"]


def source_blocks(target, start: str, end: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(target.warehouse, read_only=True)
    try:
        return con.execute(
            'SELECT number, "hash", coinbase_param, transaction_count FROM "crypto_bitcoin".blocks '
            "WHERE timestamp >= ?::TIMESTAMPTZ AND timestamp < ?::TIMESTAMPTZ ORDER BY number",
            [start + "+00:00", end + "+00:00"]).fetchall()
    finally:
        con.close()


def test_each_hour_holds_its_blocks_per_pool_with_shares_and_the_pools_list(target):
    result = merge.merge_pool_activity(target, "2024-03-01T12")
    assert [h["hour"] for h in result["hours"]] == ["2024-03-01T10", "2024-03-01T11", "2024-03-01T12"]
    pools = attribution.PoolsList.load(datasets.POOLS_FILE)
    for hour in ("2024-03-01T10", "2024-03-01T11", "2024-03-01T12"):
        rows, meta = hour_of(target, "pool_activity_hourly", hour)
        blocks = source_blocks(target, hour.replace("T", " ") + ":00:00", hour.replace("T", " ") + ":59:59.999999")
        assert meta["blocks"] == len(blocks) == sum(r["blocks"] for r in rows) > 0
        assert meta["status"] == "ok" and meta["pools_sha256"] == pools.sha256
        assert abs(sum(r["share"] for r in rows) - 1) < 1e-12
        assert sum(r["transactions"] for r in rows) == sum(b[3] for b in blocks)
        for r in rows:
            assert r["by_tag"] + r["by_address"] + r["by_unknown"] == r["blocks"]
            assert (r["pool_id"] == merge.UNKNOWN_POOL_ID) == (r["by_unknown"] == r["blocks"])
            assert r["pools_sha256"] == pools.sha256 and r["fees"] is not None and r["fees"] >= 0
        assert max(r["newest_block_number"] for r in rows) == blocks[-1][0] == meta["newest_block"]["block_number"]
        # every block of the hour counted once, under the pool the pools list gives it
        per_block, _ = hour_of(target, "block_pools_hourly", hour)
        assert sorted(b["block_number"] for b in per_block) == [b[0] for b in blocks]


def test_a_rerun_replaces_the_hours_with_the_same_rows(target):
    merge.merge_pool_activity(target, "2024-03-01T12")
    first = {h: hour_of(target, "pool_activity_hourly", h)[0] for h in ("2024-03-01T11", "2024-03-01T12")}
    before = versioned.read_pointer(FS, datasets.activity_hour_dir(target, "pool_activity_hourly", "2024-03-01T12"))
    merge.merge_pool_activity(target, "2024-03-01T12")
    after = versioned.read_pointer(FS, datasets.activity_hour_dir(target, "pool_activity_hourly", "2024-03-01T12"))
    assert after["version"] != before["version"]  # replaced, not appended
    assert {h: hour_of(target, "pool_activity_hourly", h)[0] for h in first} == first
    assert len(versioned.versions(FS, datasets.activity_hour_dir(target, "pool_activity_hourly", "2024-03-01T12"))) <= 2


def test_hours_in_any_order_give_the_same_table(target, tmp_path):
    hours = ["2024-03-01T05", "2024-03-01T06", "2024-03-01T07", "2024-03-01T08"]
    for hour in hours:
        merge.merge_pool_activity(target, hour)
    in_order = {h: hour_of(target, "pool_activity_hourly", h)[0] for h in hours}
    recent_in_order = publish_pool_activity(target)
    shuffled = dataclasses.replace(target, bucket=str(tmp_path / "shuffled"))
    for hour in ["2024-03-01T08", "2024-03-01T05", "2024-03-01T07", "2024-03-01T06"]:
        merge.merge_pool_activity(shuffled, hour)
    assert {h: hour_of(shuffled, "pool_activity_hourly", h)[0] for h in hours} == in_order
    # an old hour re-run after the newest does not move the recent view back
    merge.merge_pool_activity(shuffled, "2024-03-01T05")
    recent = publish_pool_activity(shuffled)
    assert (recent["first_hour"], recent["last_hour"], recent["blocks"]) == (
        recent_in_order["first_hour"], recent_in_order["last_hour"], recent_in_order["blocks"]) == (
        "2024-03-01T03", "2024-03-01T08", recent_in_order["blocks"])


def test_a_reorged_block_is_replaced_by_its_successor_at_the_same_height(target):
    import duckdb

    merge.merge_pool_activity(target, "2024-03-01T12")
    per_block, _ = hour_of(target, "block_pools_hourly", "2024-03-01T12")
    gone = per_block[0]
    pools = attribution.PoolsList.load(datasets.POOLS_FILE)
    other = next(p for p in pools.pools if p.tags and p.id != gone["pool_id"] and p.tags[0].isalnum())
    new_hash = "00000000000000000000" + "ab" * 22
    new_param = ("03" + "00" * 3 + other.tags[0].encode().hex())
    con = duckdb.connect(target.warehouse)
    try:
        # the reorg: the block at that height is another block (another hash, another miner)
        con.execute('UPDATE "crypto_bitcoin".blocks SET "hash" = ?, coinbase_param = ? WHERE number = ?',
                    [new_hash, new_param, gone["block_number"]])
        con.execute('DELETE FROM "crypto_bitcoin".transactions WHERE block_number = ? AND is_coinbase',
                    [gone["block_number"]])
    finally:
        con.close()
    merge.merge_pool_activity(target, "2024-03-01T13")  # the next run: the window still holds hour 12
    after, _ = hour_of(target, "block_pools_hourly", "2024-03-01T12")
    assert len(after) == len(per_block)
    assert gone["block_hash"] not in {b["block_hash"] for b in after}
    successor = next(b for b in after if b["block_number"] == gone["block_number"])
    assert (successor["block_hash"], successor["pool_id"], successor["matched_by"]) == (new_hash, other.id, "tag")
    rows, _ = hour_of(target, "pool_activity_hourly", "2024-03-01T12")
    assert next(r for r in rows if r["pool_id"] == other.id)["blocks"] >= 1
    assert sum(r["blocks"] for r in rows) == len(per_block)


def test_no_blocks_in_the_window_records_empty_hours_not_a_failure(target):
    result = merge.merge_pool_activity(target, "2024-03-05T00")
    assert [h["status"] for h in result["hours"]] == ["empty"] * 3 and result["blocks"] == 0
    rows, meta = hour_of(target, "pool_activity_hourly", "2024-03-05T00")
    assert rows == [] and meta["blocks"] == 0 and meta["newest_block"] is None
    recent = publish_pool_activity(target)
    assert recent["hours"] == 3 and recent["blocks"] == 0 and recent["newest_block"] is None
    pointer = versioned.read_pointer(FS, datasets.activity_recent_dir(target))
    hours = merge.read_parquet_rows(FS, next(f for f in versioned.data_files(FS, datasets.activity_recent_dir(target), pointer=pointer) if f.endswith(HOURS_FILE)))
    assert [(h["blocks"], h["status"]) for h in hours] == [(0, "empty")] * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"hour": "yesterday"}, "hour='yesterday' is not an hour"),
    ({"hour": "2024-03-01T12", "window_hours": 1}, "window_hours=1: give 2 to 48"),
    ({"hour": "2999-01-01T00"}, "hour=2999-01-01T00 has not begun"),
])
def test_bad_input_is_refused_by_name(target, kwargs, message):
    with pytest.raises(merge.ActivityRequestError, match=message):
        merge.merge_pool_activity(target, **kwargs)
    assert not FS.exists(datasets.activity_root(target))  # refused before anything was written


def test_the_window_query_is_partition_pruned_across_a_month_boundary():
    start = dt.datetime(2024, 2, 29, 23, tzinfo=dt.timezone.utc)
    params = merge.window_params(start, start + dt.timedelta(hours=2))
    assert params == {"start": "2024-02-29 23:00:00", "end": "2024-03-01 01:00:00",
                      "first_day": "2024-02-29", "last_day": "2024-03-01"}
    from pool_classifier.io.sql_checks import partition_filter_problems

    for name in ("hourly_blocks", "hourly_coinbase_outputs"):
        assert partition_filter_problems(merge.render_sql(name, start, start + dt.timedelta(hours=2))) == []


# ---------------------------------------------------------------- the real tagged blocks


@pytest.fixture(scope="module")
def real_tagged(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagged")
    load_exports(REAL_DATA / "tagged_blocks", root / "warehouse.duckdb")
    target = dataclasses.replace(local.target(), bucket=str(root / "bucket"), warehouse=str(root / "warehouse.duckdb"))
    with gzip.open(REAL_DATA / "tagged_blocks" / "blocks.ndjson.gz", "rt") as f:
        blocks = [json.loads(line) for line in f]
    return target, blocks


def test_the_table_on_the_real_tagged_blocks(real_tagged):
    """Each real block in its hour, under the pool `attribution` gives its coinbase and payouts."""
    target, blocks = real_tagged
    pools = attribution.PoolsList.load(datasets.POOLS_FILE)
    with gzip.open(REAL_DATA / "tagged_blocks" / "coinbase_transactions.ndjson.gz", "rt") as f:
        payouts = {}
        for line in f:
            tx = json.loads(line)
            payouts[tx["block_number"]] = [",".join(o["addresses"] or []) for o in sorted(tx["outputs"], key=lambda o: o["index"])]
    seen = {}
    for block in blocks:
        when = dt.datetime.strptime(block["timestamp"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.timezone.utc)
        hour = merge.hour_name(when)
        merge.merge_pool_activity(target, hour, window_hours=2)
        per_block, meta = hour_of(target, "block_pools_hourly", hour)
        mine = next(b for b in per_block if b["block_number"] == block["number"])
        expected = pools.attribute(block["coinbase_param"], payouts.get(block["number"], []))
        assert (mine["pool_id"], mine["matched_by"]) == (
            merge.UNKNOWN_POOL_ID if expected.pool_id is None else expected.pool_id, expected.matched_by), block["number"]
        assert mine["transactions"] == block["transaction_count"]
        rows, _ = hour_of(target, "pool_activity_hourly", hour)
        assert sum(r["blocks"] for r in rows) == meta["blocks"] == len(per_block)
        seen[block["number"]] = mine["pool_name"]
    named = {name for name in seen.values() if name != merge.UNKNOWN_POOL_NAME}
    # the pools these blocks carry in their coinbase text (tag) or pay (address), as read by eye
    assert {"BTC Guild", "Braiins Pool", "KnCMiner", "AntPool", "BTCC", "F2Pool", "BTC.com", "BTC.TOP"} <= named, named
    assert seen[363703] == "AntPool" and seen[277647] == "BTC Guild" and seen[25000] == merge.UNKNOWN_POOL_NAME


def test_a_stale_block_at_the_main_blocks_height_keeps_its_own_coinbase():
    """Outputs are keyed by block hash: two blocks of one height are attributed and charged fees
    from their own coinbases only."""
    pools = attribution.PoolsList.load(datasets.POOLS_FILE)
    foundry = "12KKDt4Mj7N5UAkQMN7LtPZMayenXHa8KL"  # a Foundry USA payout address of the list
    when = dt.datetime(2024, 3, 1, 12, 5, tzinfo=dt.timezone.utc)
    blocks = [{"block_hash": h, "block_number": 840_000, "block_timestamp": when, "coinbase_param": "00",
               "transaction_count": 1} for h in ("main", "stale")]
    outputs = [{"block_hash": "main", "block_number": 840_000, "output_index": 0, "address": foundry,
                "value": 312_500_000 + 1_000},
               {"block_hash": "stale", "block_number": 840_000, "output_index": 0, "address": "1nobody",
                "value": 312_500_000 + 7}]
    got = {r["block_hash"]: r for r in merge.attribute_blocks(blocks, outputs, pools)}
    assert (got["main"]["pool_name"], got["main"]["matched_by"], got["main"]["fees"]) == ("Foundry USA", "address", 1_000)
    assert (got["stale"]["pool_id"], got["stale"]["matched_by"], got["stale"]["fees"]) == (-1, "none", 7)  # unknown
