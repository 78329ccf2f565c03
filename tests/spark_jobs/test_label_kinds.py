"""Label kinds of spark_jobs/build_features.py (`coinbase_payouts`, `coinbase_receipts`,
`merge_receipts`, `address_labels`, `with_labels`): a pool that pays its miners in the
coinbase labels them `coinbase_miner`, a pool that pays from a wallet labels its receivers
`pool_wallet`, a pools-list address is always `pool_wallet`; the evidence; incremental receipts
equal the history's at once."""
from __future__ import annotations

import datetime as dt

import pytest

from pool_classifier.datasets import POOLS_FILE
from spark_jobs import build_features as job

UTC = dt.timezone.utc
MARCH_S = int(dt.datetime(2024, 3, 1, tzinfo=UTC).timestamp())
DIRECT, WALLET = (9001, "DirectPool"), (9002, "WalletPool")
ANTPOOL_LISTED = "12dRugNcdxK39288NjcDV4GX7rMsKCGn6B"  # AntPool (id 44) in include/pools/pools-v2.json
FEE = "15kiNKfDWsq7UsPg87UwxA8rVvWAjzRkYS"  # another AntPool address, here a direct pool's fee output
BLOCK_COLS = ("block_hash string, block_number long, block_timestamp timestamp, pool_id long, "
              "pool_name string, matched_by string, tag_pool_id long")
COINBASE_COLS = "block_hash string, output_type string, address string, value long"


@pytest.fixture(scope="module")
def pools(spark):
    return spark.read.option("multiLine", True).json(str(POOLS_FILE))


def _blocks(spark, rows):
    return spark.createDataFrame(
        [(f"h{n}", n, dt.datetime.fromtimestamp(MARCH_S + n, tz=UTC), pool[0] if pool else None,
          pool[1] if pool else None, matched, pool[0] if pool and matched == "tag" else None)
         for n, pool, matched in rows], BLOCK_COLS)


def _commitment(block):
    return (block, "nonstandard", f"nonstandard{block:040d}", 0)


# Day 1: the direct pool mines blocks 1–3 (by tag), each paying miners M1–M6 100 each, its fee
# address 10 and, in block 1, M7 and the AntPool-listed address once; the wallet pool mines
# blocks 4–5 (by payout address) paying W1, then W1 and W2; block 9 is nobody's and pays X.
DAY1_BLOCKS = [(1, DIRECT, "tag"), (2, DIRECT, "tag"), (3, DIRECT, "tag"), (4, WALLET, "address"),
               (5, WALLET, "address"), (9, None, "none")]
DAY1_COINBASE = (
    [(b, "pubkeyhash", f"M{i}", 100) for b in (1, 2, 3) for i in range(1, 7)]
    + [(b, "scripthash", FEE, 10) for b in (1, 2, 3)]
    + [(1, "pubkeyhash", "M7", 5), (1, "pubkeyhash", ANTPOOL_LISTED, 5)]
    + [(4, "witness_v0_keyhash", "W1", 600), (5, "witness_v0_keyhash", "W1", 400), (5, "witness_v0_keyhash", "W2", 200)]
    + [(9, "pubkeyhash", "X", 50)] * 5
    + [_commitment(b) for b in (1, 2, 3, 4, 5, 9)]
    + [(4, "nulldata", "opreturn-without-prefix", 0)]
)
# Day 2: the direct pool's block 11 pays M1–M6 again; the wallet pool's block 12 pays W3.
DAY2_BLOCKS = [(11, DIRECT, "tag"), (12, WALLET, "tag")]
DAY2_COINBASE = ([(11, "pubkeyhash", f"M{i}", 100) for i in range(1, 7)] + [(12, "pubkeyhash", "W3", 700)]
                 + [_commitment(b) for b in (11, 12)])


def _coinbase(spark, rows):
    """Coinbase outputs as the job reads them: keyed by block hash (`h<number>`, as `_blocks`)."""
    return spark.createDataFrame([(f"h{block}", *rest) for block, *rest in rows], COINBASE_COLS)


def _receipts(spark, blocks, coinbase):
    payouts = job.coinbase_payouts(_coinbase(spark, coinbase))
    return job.coinbase_receipts(_blocks(spark, blocks), payouts)


def _labels(receipts, pools, **settings):
    settings = {"min_coinbase_outputs": 3, "min_wallet_coinbase_outputs": 1, "miner_payout_min_outputs": 5.0,
                **settings}
    return {r["address"]: r.asDict() for r in job.address_labels(receipts, pools, **settings).collect()}


@pytest.fixture(scope="module")
def day1_labels(spark, pools):
    return _labels(_receipts(spark, DAY1_BLOCKS, DAY1_COINBASE), pools)


def test_commitments_and_zero_values_are_not_payouts(spark):
    payouts = job.coinbase_payouts(_coinbase(spark, DAY1_COINBASE)).collect()
    assert not [r for r in payouts if r["value"] == 0 or r["address"].startswith(("nonstandard", "opreturn"))]
    assert len(payouts) == len(DAY1_COINBASE) - 7


def test_the_pools_tallies_decide_their_payout_style(spark):
    receipts = _receipts(spark, DAY1_BLOCKS, DAY1_COINBASE)
    styles = {r["pool_id"]: r for r in job.pool_payout_styles(receipts, 5.0).collect()}
    direct, wallet = styles[DIRECT[0]], styles[WALLET[0]]
    # 3 blocks × (6 miners + the fee) + M7 + the listed address; commitments left out.
    assert (direct["pool_blocks"], direct["pool_outputs"], direct["pool_value"]) == (3, 23, 3 * 610 + 10)
    assert direct["pool_outputs_per_block"] == pytest.approx(23 / 3) and direct["pool_payout"] == "miners"
    assert (wallet["pool_blocks"], wallet["pool_outputs"], wallet["pool_outputs_per_block"]) == (2, 3, 1.5)
    assert wallet["pool_payout"] == "wallet"
    assert set(styles) == {DIRECT[0], WALLET[0]}  # the unattributed block has no pool


def test_a_direct_pools_miners_are_coinbase_miners_with_their_evidence(day1_labels):
    m1 = day1_labels["M1"]
    assert (m1["label_kind"], m1["label_source"], m1["pool_name"]) == ("coinbase_miner", "coinbase", "DirectPool")
    assert (m1["coinbase_outputs"], m1["coinbase_blocks"], m1["coinbase_value"], m1["pool_blocks"]) == (3, 3, 300, 3)
    assert m1["block_share"] == 1.0 and m1["value_share"] == pytest.approx(300 / 1840)
    assert m1["pool_payout"] == "miners" and m1["original_rule"] is True  # 3 outputs of tagged blocks
    assert "M7" not in day1_labels  # one output < min_coinbase_outputs: a casual miner, unlabelled
    assert "X" not in day1_labels  # paid by an unattributed block


def test_a_wallet_pools_receivers_are_pool_wallets(day1_labels):
    w1, w2 = day1_labels["W1"], day1_labels["W2"]
    assert (w1["label_kind"], w1["label_source"], w1["pool_name"]) == ("pool_wallet", "coinbase", "WalletPool")
    assert (w1["coinbase_outputs"], w1["coinbase_blocks"], w1["coinbase_value"]) == (2, 2, 1000)
    assert (w2["label_kind"], w2["coinbase_outputs"], w2["block_share"]) == ("pool_wallet", 1, 0.5)
    assert w1["value_share"] == pytest.approx(1000 / 1200)
    # Matched by payout address, not by tag: the original rule would not label them.
    assert w1["original_rule"] is False and w2["original_rule"] is False
    assert not [a for a in day1_labels if a.startswith(("nonstandard", "opreturn"))]


def test_the_original_rule_counts_the_blocks_its_tags_alone_name(spark, pools):
    """The original attributed by tags only: a block the list's rule matches by payout address
    counts for it when its tags name the same pool too, not when they name another or none."""
    rows = [(f"h{n}", n, dt.datetime.fromtimestamp(MARCH_S + n, tz=UTC), WALLET[0], WALLET[1], "address", tag)
            for n, tag in ((1, WALLET[0]), (2, WALLET[0]), (3, DIRECT[0]), (4, None))]
    blocks = spark.createDataFrame(rows, BLOCK_COLS)
    coinbase = _coinbase(spark, [(n, "pubkeyhash", "W9", 100) for n in (1, 2, 3, 4)])
    receipts = {r["address"]: r for r in job.coinbase_receipts(blocks, job.coinbase_payouts(coinbase)).collect()}
    assert (receipts["W9"]["coinbase_outputs"], receipts["W9"]["tagged_outputs"]) == (4, 2)
    labels = _labels(job.coinbase_receipts(blocks, job.coinbase_payouts(coinbase)), pools, min_coinbase_outputs=2)
    assert labels["W9"]["original_rule"] is True
    assert _labels(job.coinbase_receipts(blocks, job.coinbase_payouts(coinbase)), pools,
                   min_coinbase_outputs=3)["W9"]["original_rule"] is False


def test_a_listed_address_is_always_a_pool_wallet(day1_labels, pools):
    fee = day1_labels[FEE]  # paid by every block of a direct pool, ≥ 3 outputs: still the pool's own
    assert (fee["label_kind"], fee["label_source"], fee["pool_name"]) == ("pool_wallet", "coinbase", "DirectPool")
    listed = day1_labels[ANTPOOL_LISTED]  # one output of the direct pool (< 3): the list labels it
    assert (listed["label_kind"], listed["label_source"], listed["pool_name"]) == ("pool_wallet", "pool_list",
                                                                                   "AntPool")
    assert listed["coinbase_outputs"] == 0 and listed["pool_blocks"] is None
    n_listed = len({a for p in pools.collect() for a in p["addresses"]})
    assert sum(1 for r in day1_labels.values() if r["label_source"] == "pool_list") == n_listed - 1
    assert len(day1_labels) == len(set(day1_labels))


def test_the_threshold_of_each_kind_is_a_setting(spark, pools):
    receipts = _receipts(spark, DAY1_BLOCKS, DAY1_COINBASE)
    strict = _labels(receipts, pools, min_wallet_coinbase_outputs=2)
    assert strict["W1"]["label_kind"] == "pool_wallet" and "W2" not in strict
    # Every pool a wallet pool: the direct pool's miners and M7 become its wallets.
    all_wallets = _labels(receipts, pools, miner_payout_min_outputs=100.0)
    assert all_wallets["M1"]["label_kind"] == all_wallets["M7"]["label_kind"] == "pool_wallet"
    with pytest.raises(ValueError, match="min_wallet_coinbase_outputs"):
        _labels(receipts, pools, min_wallet_coinbase_outputs=4)


def test_receipts_merged_day_by_day_equal_the_history_at_once(spark, pools):
    day1 = _receipts(spark, DAY1_BLOCKS, DAY1_COINBASE)
    day2 = _receipts(spark, DAY2_BLOCKS, DAY2_COINBASE)
    merged = job.merge_receipts(day1, day2)
    at_once = _receipts(spark, DAY1_BLOCKS + DAY2_BLOCKS, DAY1_COINBASE + DAY2_COINBASE)

    def rows(df):
        return sorted((tuple(r) for r in df.select("address", "pool_id", "pool_name", *job.RECEIPT_TALLIES)
                       .collect()), key=repr)

    assert rows(merged) == rows(at_once)
    assert _labels(merged, pools) == _labels(at_once, pools)
    labels = _labels(merged, pools)
    assert (labels["M1"]["coinbase_blocks"], labels["M1"]["pool_blocks"]) == (4, 4)
    assert labels["W3"]["label_kind"] == "pool_wallet" and labels["W3"]["original_rule"] is False


def test_an_older_receipts_state_is_refused_with_what_to_do(spark):
    old = spark.createDataFrame([("M1", 1, "P", 3)], "address string, pool_id long, pool_name string, "
                                                       "coinbase_outputs long")
    with pytest.raises(job.ReceiptsStateError, match="bootstrap_state"):
        job.merge_receipts(old, _receipts(spark, DAY2_BLOCKS, DAY2_COINBASE))


def test_training_rows_carry_the_kind_and_the_original_rule(spark, pools):
    labels = job.address_labels(_receipts(spark, DAY1_BLOCKS, DAY1_COINBASE), pools, 3)
    rows = spark.createDataFrame([("M1",), ("W1",), ("nobody",)], "address string")
    got = {r["address"]: r for r in job.with_labels(rows, labels).collect()}
    assert (got["M1"]["label"], got["M1"]["label_kind"], got["M1"]["original_label"]) == (1, "coinbase_miner", 1)
    assert (got["W1"]["label"], got["W1"]["label_kind"], got["W1"]["original_label"]) == (1, "pool_wallet", 0)
    assert (got["nobody"]["label"], got["nobody"]["label_kind"], got["nobody"]["original_label"]) == (0, None, 0)


def test_under_one_pools_miner_threshold_an_address_can_be_another_pools_wallet(spark, pools):
    # Z: 2 outputs of the direct pool (< 3, a casual miner there), 1 of the wallet pool's: its wallet.
    blocks = [(1, DIRECT, "tag"), (2, DIRECT, "tag"), (3, DIRECT, "tag"), (4, WALLET, "tag")]
    coinbase = ([(b, "pubkeyhash", f"M{i}", 100) for b in (1, 2, 3) for i in range(1, 7)]
                + [(1, "pubkeyhash", "Z", 5), (2, "pubkeyhash", "Z", 5), (4, "pubkeyhash", "Z", 600)])
    labels = _labels(_receipts(spark, blocks, coinbase), pools)
    assert (labels["Z"]["label_kind"], labels["Z"]["pool_name"], labels["Z"]["coinbase_outputs"]) == (
        "pool_wallet", WALLET[1], 1)
    assert labels["M1"]["label_kind"] == "coinbase_miner"  # the direct pool's steady miners stay miners
