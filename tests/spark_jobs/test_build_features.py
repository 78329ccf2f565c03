"""The transforms of spark_jobs/build_features.py on tiny hand-made DataFrames and on the
real tagged blocks of shared/, with one session-scoped local SparkSession."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from pool_classifier.attribution import PoolsList, PoolsListError
from pool_classifier.datasets import POOLS_FILE
from pool_classifier.io import atomic
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from spark_jobs import build_features as job
from tests.conftest import REAL_DATA
from tests.test_attribution import TAGGED_BLOCKS

UTC = dt.timezone.utc
MARCH = dt.date(2024, 3, 1)
APRIL = dt.date(2024, 4, 1)
MARCH_S = int(dt.datetime(2024, 3, 1, tzinfo=UTC).timestamp())
APRIL_S = int(dt.datetime(2024, 4, 1, tzinfo=UTC).timestamp())

OUTPUT_COLS = "transaction_hash string, block_number long, block_timestamp timestamp, " \
    "block_timestamp_month date, is_coinbase boolean, output_index long, output_type string, " \
    "address string, value long"
INPUT_COLS = "transaction_hash string, block_number long, block_timestamp timestamp, " \
    "block_timestamp_month date, input_index long, spent_transaction_hash string, " \
    "spent_output_index long, address string, value long"


def ts(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=UTC)


def out(tx, block, t, month, address, value, coinbase=False, index=0):
    return (tx, block, ts(t), month, coinbase, index, "pubkeyhash", address, value)


def inp(tx, block, t, month, address, value, index=0):
    return (tx, block, ts(t), month, index, "prev", 0, address, value)


@pytest.fixture(scope="module")
def flows(spark):
    big = 2_000_000_000_000_000  # 20 M BTC in satoshi: sums of such values overflow no int64 here
    t1, t2, t3 = MARCH_S + 1000, MARCH_S + 4600, APRIL_S + 100
    outputs = spark.createDataFrame(
        [
            out("tx1", 1, t1, MARCH, "A", 100),
            out("tx1", 1, t1, MARCH, "A", 300, index=1),
            out("tx2", 2, t2, MARCH, "A", 200),
            out("tx3", 3, t3, APRIL, "A", 400),
            out("tx3", 3, t3, APRIL, "B", 50, index=1),
            out("cb1", 1, t1, MARCH, "C", 625_000_000, coinbase=True),
            out("cb1", 1, t1, MARCH, "A", 999, coinbase=True, index=1),
            out("tx4", 3, t3, APRIL, "W", big),
            out("tx5", 3, t3, APRIL, "W", big),
            out("tx6", 3, t3, APRIL, "", 7),
        ],
        OUTPUT_COLS,
    )
    inputs = spark.createDataFrame(
        [inp("tx3", 3, t3, APRIL, "A", 600), inp("tx4", 3, t3, APRIL, "D", 10)], INPUT_COLS
    )
    return outputs, inputs


@pytest.fixture(scope="module")
def features(flows):
    outputs, inputs = flows
    rows = job.address_features(job.ordinary_flows(outputs, inputs)).collect()
    return {r["address"]: r.asDict() for r in rows}


def test_feature_columns_in_spec_order(flows):
    outputs, inputs = flows
    df = job.address_features(job.ordinary_flows(outputs, inputs))
    assert df.columns == ["address", *FEATURE_COLUMNS, FIRST_SEEN]


def test_first_seen_is_the_earliest_ordinary_flow(features):
    assert features["A"][FIRST_SEEN] == MARCH_S + 1000  # its first receipt
    assert features["D"][FIRST_SEEN] == APRIL_S + 100  # spend-only: its spend
    assert "C" not in features  # a coinbase receipt alone is not a flow


def test_coinbase_receipts_and_empty_addresses_are_not_features(features, flows):
    assert "C" not in features  # paid only by a coinbase
    assert "" not in features
    assert features["A"]["total_tx_output_count"] == 4  # A's coinbase receipt (999) left out
    assert job.count_unaddressed(*flows) == 1


def test_receive_side_features_by_hand(features):
    a = features["A"]
    assert a["output_month_min"] == MARCH_S and a["output_month_max"] == APRIL_S
    assert a["output_active_time"] == APRIL_S - MARCH_S
    assert a["output_active_months"] == 2
    assert a["total_tx_output_value"] == Decimal(1000)
    assert a["mean_tx_output_value"] == pytest.approx(250.0)
    assert a["stddev_tx_output_value"] == pytest.approx(129.09944487358055)  # stdev(100,300,200,400)
    assert a["total_output_tx"] == 3
    # The meaning, not the original's defect: per DISTINCT month, not per row.
    assert a["mean_monthly_output_value"] == pytest.approx(500.0)
    assert a["mean_monthly_output_count"] == pytest.approx(2.0)
    gaps = [3600, (APRIL_S + 100) - (MARCH_S + 4600)]
    assert a["mean_output_idle_time"] == pytest.approx(sum(gaps) / 2)
    mean = sum(gaps) / 2
    assert a["stddev_output_idle_time"] == pytest.approx(
        (sum((g - mean) ** 2 for g in gaps) / 1) ** 0.5
    )


def test_spend_side_and_lags(features):
    a = features["A"]
    assert a["has_spent"] == 1 and a["has_received"] == 1
    assert a["total_tx_input_count"] == 1 and a["total_tx_input_value"] == Decimal(600)
    assert a["input_month_min"] == APRIL_S and a["input_active_months"] == 1
    assert a["io_max_lag"] == 0  # last receipt and last spend both in April
    assert a["io_min_lag"] == MARCH_S - APRIL_S
    assert a["stddev_tx_input_value"] == 0  # one value: undefined → 0
    assert a["mean_input_idle_time"] == 0  # one spending time: undefined → 0


def test_receive_only_address_is_kept_with_defaults(features):
    b = features["B"]
    assert b["has_received"] == 1 and b["has_spent"] == 0
    for name in FEATURE_COLUMNS:
        if name.startswith("input_") or "_input_" in name or name.startswith("io_"):
            assert b[name] == 0, name


def test_spend_only_address(features):
    d = features["D"]
    assert d["has_received"] == 0 and d["has_spent"] == 1
    assert d["total_tx_input_value"] == Decimal(10)


def test_satoshi_sums_are_exact_beyond_double_precision(features):
    w = features["W"]
    assert w["total_tx_output_value"] == Decimal(4_000_000_000_000_000)
    assert w["stddev_tx_output_value"] == 0


# ----------------------------------------------------------------- labels

BLOCK_COLS = "block_hash string, block_number long, block_timestamp timestamp, " \
    "block_timestamp_month date, coinbase_param string, transaction_count long"


@pytest.fixture(scope="module")
def pools_list():
    return PoolsList.load(POOLS_FILE)


@pytest.fixture(scope="module")
def pools(spark, pools_list):
    return job.pools_frame(spark, pools_list)


def _block(number, param, block_hash=None):
    return (block_hash or f"h{number}", number, ts(MARCH_S + number), MARCH, param, 1)


COINBASE_COLS = "block_hash string, address string"


def test_attribution_by_tag_case_insensitive_and_byte_aligned(spark, pools_list):
    antpool = b"\x03\x01\x02\x03" + b"mined by ANTPOOL x"
    # "/ViaBTC/" hex is 2f5669614254432f; shifted by half a byte inside another hex string
    # it must not match (the original's LIKE on hex did).
    shifted = "a" + "2f5669614254432f" + "0"
    foundry_address = "12KKDt4Mj7N5UAkQMN7LtPZMayenXHa8KL"
    blocks = spark.createDataFrame(
        [_block(1, antpool.hex()), _block(2, shifted), _block(3, "deadbeef"), _block(4, None)],
        BLOCK_COLS,
    )
    coinbase = spark.createDataFrame([("h3", foundry_address), ("h2", "1someoneelse")], COINBASE_COLS)
    attributed = job.attribute_blocks(blocks, coinbase, pools_list)
    written = attributed.select(*job.BLOCK_POOLS_COLUMNS)
    got = {r["block_number"]: r for r in written.collect()}
    assert (got[1]["pool_name"], got[1]["matched_by"]) == ("AntPool", "tag")
    assert (got[2]["pool_name"], got[2]["matched_by"]) == (None, "none")
    assert (got[3]["pool_name"], got[3]["matched_by"]) == ("Foundry USA", "address")
    assert (got[4]["pool_id"], got[4]["matched_by"]) == (None, "none")
    assert {r["pools_sha256"] for r in got.values()} == {hashlib.sha256(POOLS_FILE.read_bytes()).hexdigest()}
    assert written.columns == ["block_hash", "block_number", "block_timestamp", "pool_id", "pool_name",
                               "matched_by", "pools_sha256"]
    # What the tags alone say (the original rule's attribution): block 3 pays Foundry but has no tag.
    tags_only = {r["block_number"]: r["tag_pool_id"] for r in attributed.collect()}
    assert tags_only == {1: got[1]["pool_id"], 2: None, 3: None, 4: None}


def test_attribution_keys_by_block_hash_and_follows_the_lists_order(spark, pools_list):
    """Two blocks of one height (a stale block beside the main one): each gets its own coinbase's
    outputs. And an earlier pool's tag beats a later pool's payout address (file order)."""
    foundry = "12KKDt4Mj7N5UAkQMN7LtPZMayenXHa8KL"  # Foundry USA (id 111), late in the list
    blocks = spark.createDataFrame(
        [_block(7, None, "main7"), _block(7, None, "stale7"), _block(8, b"/ViaBTC/".hex())], BLOCK_COLS
    )
    coinbase = spark.createDataFrame([("main7", foundry), ("stale7", "1nobody"), ("h8", foundry)], COINBASE_COLS)
    got = {r["block_hash"]: (r["pool_name"], r["matched_by"])
           for r in job.attribute_blocks(blocks, coinbase, pools_list).collect()}
    # ViaBTC is pool 73, before Foundry USA in the file: its tag wins over Foundry's address
    assert [p.name for p in pools_list.pools].index("ViaBTC") < [p.name for p in pools_list.pools].index("Foundry USA")
    assert got == {"main7": ("Foundry USA", "address"), "stale7": (None, "none"), "h8": ("ViaBTC", "tag")}


def test_the_pools_list_is_read_through_hadoop_with_a_clear_error(spark, tmp_path):
    good = tmp_path / "pools.json"
    good.write_bytes(POOLS_FILE.read_bytes())
    assert job.load_pools(spark, f"file://{good}").sha256 == hashlib.sha256(good.read_bytes()).hexdigest()
    with pytest.raises(PoolsListError, match="nowhere.json: not found"):
        job.load_pools(spark, str(tmp_path / "nowhere.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": 1, "name": "A", "addresses": [], "tags": ["(x"]}]')
    with pytest.raises(PoolsListError, match="bad.json: pool 1"):
        job.load_pools(spark, str(bad))


# The labels (kinds, thresholds, evidence, receipts): tests/spark_jobs/test_label_kinds.py.


def test_real_tagged_blocks_with_their_coinbase_outputs(spark, pools_list):
    """Every real tagged block of shared/ with its real coinbase outputs, through the Spark job:
    the pool and `matched_by` listed per block in tests/test_attribution.py."""
    folder = REAL_DATA / "tagged_blocks"
    with gzip.open(folder / "blocks.ndjson.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    with gzip.open(folder / "coinbase_transactions.ndjson.gz", "rt") as f:
        coinbase = [json.loads(line) for line in f]
    blocks = spark.createDataFrame(
        [
            (r["hash"], r["number"], dt.datetime.strptime(r["timestamp"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC),
             dt.date.fromisoformat(r["timestamp_month"]), r["coinbase_param"], r["transaction_count"])
            for r in rows
        ],
        BLOCK_COLS,
    )
    # as extract_outputs gives them: one row per output, its addresses joined by ','
    outputs = spark.createDataFrame(
        [(tx["block_hash"], ",".join(o["addresses"] or [])) for tx in coinbase for o in tx["outputs"]], COINBASE_COLS
    )
    got = {r["block_number"]: (r["pool_name"], r["matched_by"])
           for r in job.attribute_blocks(blocks, outputs, pools_list).collect()}
    assert got == TAGGED_BLOCKS


def test_writing_a_table_replaces_the_folder_with_the_same_content(spark, flows, tmp_path):
    from tools.run_summary import folder_checksum

    outputs, inputs = flows
    features = job.address_features(job.ordinary_flows(outputs, inputs))
    final = tmp_path / "address_features" / "dt=2024-04-01"
    assert job.write_table(spark, features, str(final), ["address"]) == 4
    first = folder_checksum(final)
    assert job.write_table(spark, features, str(final), ["address"]) == 4
    assert folder_checksum(final) == first
    assert [Path(f).name for f in atomic.data_files(final)] == ["part-00000.parquet"]
    # The new version and the one it replaced (kept one publish for readers in flight), a
    # pointer, nothing else: no temp folder, no _SUCCESS, no checksum file.
    versions = sorted(p.name for p in final.iterdir() if p.name.startswith("v="))
    assert len(versions) == 2 and sorted(p.name for p in final.iterdir()) == ["_current.json", *versions]
    assert [p.name for p in (final / versions[-1]).iterdir()] == ["part-00000.parquet"]
    assert [p.name for p in final.parent.iterdir()] == ["dt=2024-04-01"]


def test_real_block_367891_is_attributed_by_its_payout_address(spark, pools_list):
    """The 2015-08-01 block's row is not in shared/, only its transactions: its coinbase pays
    1KFHE7w8BhaENAswwryaoccDb6qcT6DbYY, F2Pool's known payout address."""
    with gzip.open(REAL_DATA / "block_367891_transactions.ndjson.gz", "rt") as f:
        coinbase = next(json.loads(line) for line in f if json.loads(line)["is_coinbase"])
    outputs = spark.createDataFrame(
        [(coinbase["block_hash"], ",".join(o["addresses"])) for o in coinbase["outputs"]], COINBASE_COLS
    )
    blocks = spark.createDataFrame([_block(367891, None, coinbase["block_hash"])], BLOCK_COLS)
    [row] = job.attribute_blocks(blocks, outputs, pools_list).collect()
    assert (row["pool_name"], row["matched_by"]) == ("F2Pool", "address")
