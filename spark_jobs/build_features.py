"""build_features: per-address features, per-block pool attribution and pool labels.

Reads one day's extracts (`extracts/{blocks,outputs,inputs}/dt=<ds>`) and the state of
the day before (`state/{address_state,coinbase_receipts}/dt=<ds-1>`), and writes for `ds`:

* `state/address_state`, `state/coinbase_receipts` — the running per-address partials, and the
  coinbase receipts per (address, pool) with each pool's own tally (address NULL), history up
  to and including `ds`;
* `features/address_features` — the addresses active on `ds`, with the columns of
  `pool_classifier.model.feature_spec.FEATURE_COLUMNS`;
* `features/block_pools` — each block of the day with the pool that mined it, by
  `pool_classifier.attribution` (the pools list's rule: the first pool in file order whose
  payout address the coinbase pays or whose tag regex is in its script, else `none`), and the
  sha256 of the pools list (`--pools`, read once, local or gs://);
* `features/address_labels` — labelled addresses with their kind (`pool_wallet`: a pool's own
  address; `coinbase_miner`: a miner paid directly by a pool's coinbases), the evidence
  (`address_labels`) and the pools list's sha256;
* `features/training_features` — labelled addresses plus a seeded sample of the others.

The transforms are pure functions of DataFrames; `main` does the I/O. Run with
`spark-submit build_features.py --help` (local mode or Dataproc Serverless alike).
"""
from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pool_classifier import datasets
from pool_classifier.attribution import PoolsList, PoolsListError
from pool_classifier.errors import DATA_ERROR_EXIT_CODE, DataError, StateOrderError
from pool_classifier.io import spark_io, versioned
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from pool_classifier.steps.build_features import SETTINGS

SECONDS_PER_DAY = 86400
SATOSHI_SUM = "decimal(38,0)"


# ---------------------------------------------------------------- features
#
# Features come from mergeable per-address partials, kept as a daily state: each day's
# flows are aggregated into partials (counts, exact sums and sums of squares, the months as
# bits, first/last block times and the sum of squared gaps between distinct times) and
# merged into the state of the day before. Features are a pure function of the state.

SIDE_PREFIX = {"output": "out", "input": "in"}
# Months are kept as bits of MONTH_WORDS 64-bit words, month 0 = January 2009 (the genesis
# month): their union is an OR, their count a bit count. 320 months: to December 2035.
FIRST_YEAR, MONTH_WORDS = 2009, 5
MONTH_BITS = [f"months_{w}" for w in range(MONTH_WORDS)]
# The partial columns of one side, with their Spark types.
PARTIALS = {
    "n": "long",                 # flows (outputs received / inputs spent)
    "value_sum": "long",         # Σ value, exact (int64: far above the money supply)
    "value_sumsq": SATOSHI_SUM,  # Σ value², exact (int64 would overflow)
    "tx": "long",                # distinct transactions (a transaction lies in one day)
    "month_min": "date",
    "month_max": "date",
    **{name: "long" for name in MONTH_BITS},  # the distinct months, as bits
    "first_time": "long",        # Unix seconds of the first distinct block time
    "last_time": "long",
    "times": "long",             # distinct block times
    "gap_sumsq": "long",         # Σ gaps² between consecutive distinct times (Σ gaps = last − first)
}


def ordinary_flows(outputs: DataFrame, inputs: DataFrame) -> DataFrame:
    """Outputs and inputs as one table of flows (side = output | input).

    Coinbase outputs are left out: they label pool addresses, so they must not feed the
    features of the addresses they label. Flows without an address are left out too;
    `count_unaddressed` reports how many.
    """
    columns = ["address", "transaction_hash", "block_timestamp", "block_timestamp_month", "value"]
    received = outputs.where(~F.col("is_coinbase")).select(*columns).withColumn(
        "side", F.lit("output")
    )
    spent = inputs.select(*columns).withColumn("side", F.lit("input"))
    flows = received.unionByName(spent)
    return flows.where(F.col("address").isNotNull() & (F.col("address") != ""))


def count_unaddressed(outputs: DataFrame, inputs: DataFrame) -> int:
    """Flows that name no address (left out of the features, reported in the log)."""
    def missing(df: DataFrame) -> DataFrame:
        return df.where(F.col("address").isNull() | (F.col("address") == ""))

    return missing(outputs).count() + missing(inputs).count()


def month_index() -> F.Column:
    """The flow's month as its index from January 2009; a month out of the bits' range stops the
    job (the state would lose it) saying what to change."""
    month = F.col("block_timestamp_month")
    index = (F.year(month) - FIRST_YEAR) * 12 + F.month(month) - 1
    return F.when((index < 0) | (index >= 64 * MONTH_WORDS), F.raise_error(F.concat(
        F.lit("a flow of month "), month.cast("string"), F.lit(f" is outside the state's {MONTH_WORDS} month words "
                                                               f"(from {FIRST_YEAR}-01): raise MONTH_WORDS"),
    ))).otherwise(index)


def _month_bit(word: int) -> F.Column:
    """1 << (the month's index − 64·word) when the month falls in that word, else 0."""
    index = F.col("_month")
    inside = (index >= word * 64) & (index < (word + 1) * 64)
    # shiftleft with a column amount: only through SQL in this pyspark.
    return F.when(inside, F.expr(f"shiftleft(CAST(1 AS BIGINT), CAST(_month - {word * 64} AS INT))"))


def day_partials(flows: DataFrame, parts: int | None = None) -> DataFrame:
    """Both sides' partials per address over the given flows (a day, or any window).

    A side's columns are null where the address has no flow on it. One shuffle and one sort:
    the flows are hash-partitioned by address (into `parts` partitions, or the session's
    default), sorted within them by (address, side, block time, transaction), so that each
    row knows from the one before it whether it starts a new transaction or a new distinct
    block time (and the gap since the last one). Then one aggregation per (address, side),
    and the two sides side by side. Exact: value sums in int64, their squares in DECIMAL(38,0),
    gaps and their squares in int64 (Σ gap² ≤ (last − first)²).
    """
    value = F.col("value")
    order = Window.partitionBy("address", "side").orderBy("t", "transaction_hash")
    previous_t, previous_tx = F.lag("t").over(order), F.lag("transaction_hash").over(order)
    shuffled = flows.repartition("address") if parts is None else flows.repartition(parts, "address")
    rows = (
        shuffled.withColumn("t", F.unix_seconds("block_timestamp")).withColumn("_month", month_index())
        .withColumn("_new_tx", (previous_tx.isNull() | (previous_tx != F.col("transaction_hash"))).cast("long"))
        .withColumn("_new_t", (previous_t.isNull() | (previous_t != F.col("t"))).cast("long"))
        .withColumn("_gap", F.when(previous_t.isNotNull() & (previous_t != F.col("t")), F.col("t") - previous_t))
    )
    per_side = rows.groupBy("address", "side").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(value).alias("value_sum"),
        F.sum(value.cast(SATOSHI_SUM) * value.cast(SATOSHI_SUM)).cast(SATOSHI_SUM).alias("value_sumsq"),
        F.sum("_new_tx").alias("tx"),
        F.min("block_timestamp_month").alias("month_min"),
        F.max("block_timestamp_month").alias("month_max"),
        *[F.coalesce(F.bit_or(_month_bit(w)), F.lit(0).cast("long")).alias(name) for w, name in enumerate(MONTH_BITS)],
        F.min("t").alias("first_time"),
        F.max("t").alias("last_time"),
        F.sum("_new_t").alias("times"),
        F.coalesce(F.sum(F.col("_gap") * F.col("_gap")), F.lit(0).cast("long")).alias("gap_sumsq"),
    )
    sides = []
    for side, p in SIDE_PREFIX.items():
        sides += [F.max(F.when(F.col("side") == side, F.col(name))).alias(f"{p}_{name}") for name in PARTIALS]
    return per_side.groupBy("address").agg(*sides)


def empty_state(spark: SparkSession) -> DataFrame:
    schema = ", ".join(["address string"] + [f"{p}_{n} {t}" for p in SIDE_PREFIX.values() for n, t in PARTIALS.items()])
    return spark.createDataFrame([], schema)


def _add(a: F.Column, b: F.Column) -> F.Column:
    """a + b where a missing side counts as nothing; null only when both are missing."""
    return F.when(a.isNull(), b).when(b.isNull(), a).otherwise(a + b)


def _or(a: F.Column, b: F.Column) -> F.Column:
    """a | b where a missing side counts as nothing; null only when both are missing."""
    return F.when(a.isNull(), b).when(b.isNull(), a).otherwise(a.bitwiseOR(b))


def merge_state(state: DataFrame, day: DataFrame) -> DataFrame:
    """The state after `day`, whose block times all follow the state's (days in order).

    The gap between the state's last time and the day's first time is the one gap that
    neither side knows; it is added here.
    """
    s, d = state.alias("s"), day.alias("d")
    joined = s.join(d, F.col("s.address") == F.col("d.address"), "full_outer")
    columns = [F.coalesce(F.col("s.address"), F.col("d.address")).alias("address")]
    for p in SIDE_PREFIX.values():
        def old(name: str) -> F.Column:
            return F.col(f"s.{p}_{name}")

        def new(name: str) -> F.Column:
            return F.col(f"d.{p}_{name}")

        bridge = new("first_time") - old("last_time")
        both = old("n").isNotNull() & new("n").isNotNull()
        columns += [
            _add(old("n"), new("n")).alias(f"{p}_n"),
            _add(old("value_sum"), new("value_sum")).alias(f"{p}_value_sum"),
            _add(old("value_sumsq"), new("value_sumsq")).cast(SATOSHI_SUM).alias(f"{p}_value_sumsq"),
            _add(old("tx"), new("tx")).alias(f"{p}_tx"),
            F.least(old("month_min"), new("month_min")).alias(f"{p}_month_min"),
            F.greatest(old("month_max"), new("month_max")).alias(f"{p}_month_max"),
            *[_or(old(name), new(name)).alias(f"{p}_{name}") for name in MONTH_BITS],
            F.least(old("first_time"), new("first_time")).alias(f"{p}_first_time"),
            F.greatest(old("last_time"), new("last_time")).alias(f"{p}_last_time"),
            _add(old("times"), new("times")).alias(f"{p}_times"),
            (_add(old("gap_sumsq"), new("gap_sumsq")) + F.when(both, bridge * bridge).otherwise(0))
            .alias(f"{p}_gap_sumsq"),
        ]
    return joined.select(*columns)


def active_on(ds: str) -> F.Column:
    """True for the state rows of addresses with a flow on day `ds` (the last day merged)."""
    start = F.unix_seconds(F.to_timestamp(F.lit(f"{ds} 00:00:00")))
    return F.greatest("out_last_time", "in_last_time") >= start


def _sample_stddev(n: F.Column, total: F.Column, squares: F.Column) -> F.Column:
    """sqrt((n·Σx² − (Σx)²) / (n(n−1))) with the numerator exact; 0 when n < 2."""
    total = total.cast(SATOSHI_SUM)
    numerator = (n.cast(SATOSHI_SUM) * squares.cast(SATOSHI_SUM) - total * total).cast("double")
    variance = numerator / (n.cast("double") * (n - 1).cast("double"))
    return F.when(n >= 2, F.sqrt(variance)).otherwise(F.lit(0.0))


def _ratio(numerator: F.Column, denominator: F.Column) -> F.Column:
    return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double")).otherwise(0.0)


def features_from_state(state: DataFrame, keep: tuple[str, ...] = ()) -> DataFrame:
    """All features per address, in `FEATURE_COLUMNS` order (undefined → 0, see feature_spec),
    then `first_seen_time`, then the `keep` columns of the state as they are."""
    derived = {}
    for side, p in SIDE_PREFIX.items():
        def c(name: str) -> F.Column:
            return F.col(f"{p}_{name}")

        month_min = F.unix_date(c("month_min")).cast("long") * SECONDS_PER_DAY
        month_max = F.unix_date(c("month_max")).cast("long") * SECONDS_PER_DAY
        months = sum((F.bit_count(c(name)) for name in MONTH_BITS[1:]), F.bit_count(c(MONTH_BITS[0])))
        gaps = c("times") - 1
        gap_sum = c("last_time") - c("first_time")  # the gaps telescope
        derived.update({
            f"{side}_month_min": month_min,
            f"{side}_month_max": month_max,
            f"{side}_active_time": month_max - month_min,
            f"{side}_active_months": months,
            f"total_tx_{side}_count": c("n"),
            f"total_tx_{side}_value": c("value_sum").cast(SATOSHI_SUM),
            f"mean_tx_{side}_value": _ratio(c("value_sum"), c("n")),
            f"stddev_tx_{side}_value": _sample_stddev(c("n"), c("value_sum"), c("value_sumsq")),
            f"total_{side}_tx": c("tx"),
            f"mean_monthly_{side}_value": _ratio(c("value_sum"), months),
            f"mean_monthly_{side}_count": _ratio(c("n"), months),
            f"mean_{side}_idle_time": _ratio(gap_sum, gaps),
            f"stddev_{side}_idle_time": _sample_stddev(gaps, gap_sum, c("gap_sumsq")),
        })
    derived["io_max_lag"] = derived["output_month_max"] - derived["input_month_max"]
    derived["io_min_lag"] = derived["output_month_min"] - derived["input_month_min"]
    derived["has_received"] = F.col("out_n").isNotNull().cast("int")
    derived["has_spent"] = F.col("in_n").isNotNull().cast("int")
    columns = [F.col("address")]
    for name in FEATURE_COLUMNS:
        default = F.lit(0).cast(SATOSHI_SUM) if name.startswith("total_tx_") and name.endswith("_value") else F.lit(0)
        columns.append(F.coalesce(derived[name], default).alias(name))
    # Not a feature: when the address was first seen (for time-based splits), never null.
    columns.append(F.least("out_first_time", "in_first_time").alias(FIRST_SEEN))
    return state.select(*columns, *keep)


def address_features(flows: DataFrame) -> DataFrame:
    """Features over all the given flows at once (= merging their days one by one)."""
    return features_from_state(day_partials(flows))


# ---------------------------------------------------------------- labels

def load_pools(spark: SparkSession, path: str) -> PoolsList:
    """The pools list's file (a local path or gs://), read once on the driver through Hadoop."""
    try:
        data = spark_io.read_bytes(spark, path)
    except FileNotFoundError:
        raise PoolsListError(f"pools list {path}: not found") from None
    return PoolsList.from_bytes(data, source=path)


def pools_frame(spark: SparkSession, pools: PoolsList) -> DataFrame:
    """The list as a small DataFrame (id, name, addresses, tags), in file order."""
    return spark.createDataFrame(
        [(p.id, p.name, list(p.addresses), list(p.tags)) for p in pools.pools],
        "id long, name string, addresses array<string>, tags array<string>",
    )


def pool_addresses(pools: DataFrame) -> DataFrame:
    return pools.select(
        F.col("id").alias("pool_id"),
        F.col("name").alias("pool_name"),
        F.explode("addresses").alias("address"),
    )


ATTRIBUTION_SCHEMA = "block_hash string, pool_id long, pool_name string, matched_by string, tag_pool_id long"


def _attribute_batches(data: bytes, source: str):
    """mapInPandas' function: each block's `PoolsList.attribute`, the list built once per task."""

    def attribute(batches):
        import pandas as pd

        pools = PoolsList.from_bytes(data, source)
        for batch in batches:
            params = batch["coinbase_param"]
            got = [pools.attribute(param, () if addresses is None else addresses)
                   for param, addresses in zip(params, batch["addresses"])]
            by_tags = [pools.tag_pool(param) for param in params]
            yield pd.DataFrame({
                "block_hash": batch["block_hash"],
                "pool_id": pd.array([a.pool_id for a in got], dtype="Int64"),
                "pool_name": [a.pool_name for a in got],
                "matched_by": [a.matched_by for a in got],
                "tag_pool_id": pd.array([p.id if p else None for p in by_tags], dtype="Int64"),
            })

    return attribute


def attribute_blocks(blocks: DataFrame, coinbase_outputs: DataFrame, pools: PoolsList) -> DataFrame:
    """Each block with its pool, by `pool_classifier.attribution` (the pools list's own rule:
    pools in file order, payout addresses before tags, tags as case-insensitive regexes), keyed
    by block hash; `pools_sha256` names the list. `tag_pool_id`: the pool its tags alone name
    (the original's tags-only rule, for its label-rule variant; not written: `BLOCK_POOLS_COLUMNS`).

    `coinbase_outputs`: (block_hash, address) of the coinbase transactions' outputs.
    """
    paid = coinbase_outputs.groupBy("block_hash").agg(F.collect_list("address").alias("addresses"))
    attributed = (
        blocks.select("block_hash", "coinbase_param")
        .join(paid, "block_hash", "left")
        .mapInPandas(_attribute_batches(pools.to_bytes(), pools.source), ATTRIBUTION_SCHEMA)
    )
    return blocks.join(attributed, "block_hash").select(
        "block_hash",
        "block_number",
        "block_timestamp",
        "pool_id",
        "pool_name",
        "matched_by",
        F.lit(pools.sha256).alias("pools_sha256"),
        "tag_pool_id",
    )


# What features/block_pools holds (attribute_blocks' columns less the variant's tag_pool_id).
BLOCK_POOLS_COLUMNS = ("block_hash", "block_number", "block_timestamp", "pool_id", "pool_name", "matched_by",
                       "pools_sha256")


# Coinbase outputs that pay someone: addressed, with value, not a commitment (the witness
# commitment and other OP_RETURN outputs are `nulldata`/`nonstandard…` outputs of value 0).
COMMITMENT_TYPES = ("nulldata", "nonstandard")


def coinbase_payouts(coinbase_outputs: DataFrame) -> DataFrame:
    """The coinbase outputs that pay an address: (block_hash, address, value).

    Left out: outputs without an address, commitments (OP_RETURN: output type `nulldata` or
    `nonstandard`, or bitcoin-etl's `nonstandard<hash>` address) and zero-value outputs. A
    block's payout count is then the number of payees, whatever its commitments.
    """
    address = F.col("address")
    keep = address.isNotNull() & (address != "") & ~address.startswith("nonstandard") & (F.col("value") > 0)
    if "output_type" in coinbase_outputs.columns:
        keep = keep & ~F.coalesce(F.col("output_type"), F.lit("")).isin(*COMMITMENT_TYPES)
    return coinbase_outputs.where(keep).select("block_hash", "address", "value")


# The receipts' tallies: over the attributed blocks of the history, per (address, pool) what
# the pool's blocks paid the address, and per pool (address NULL) what its blocks paid in all.
RECEIPT_TALLIES = ("coinbase_outputs", "coinbase_blocks", "coinbase_value", "tagged_outputs")


def coinbase_receipts(block_pools: DataFrame, payouts: DataFrame) -> DataFrame:
    """The day's coinbase receipts: the raw material of labels, merged day by day.

    One row per (address, pool) paid by the pool's blocks: `coinbase_outputs` (payout
    outputs), `coinbase_blocks` (blocks), `coinbase_value` (satoshi), `tagged_outputs` (outputs
    of the blocks whose tags alone name the pool: the original's tags-only rule's count). And one row per pool with
    `address` NULL: the same tallies over all its blocks (`coinbase_blocks` counts every
    attributed block, even one paying no address), from which its payout style is decided.
    Every tally is a sum over blocks, so a day's rows add to the history's (`merge_receipts`)
    and the bootstrap over the whole history gives the same rows.
    `payouts`: `coinbase_payouts` of the coinbase outputs.
    """
    attributed = block_pools.where(F.col("pool_id").isNotNull()).select(
        "block_hash", "pool_id", "pool_name",
        F.coalesce(F.col("tag_pool_id") == F.col("pool_id"), F.lit(False)).alias("_tagged")
    )
    paid = payouts.join(attributed, "block_hash")
    per_address = paid.groupBy("address", "pool_id", "pool_name").agg(
        F.count(F.lit(1)).alias("coinbase_outputs"),
        F.countDistinct("block_hash").alias("coinbase_blocks"),
        F.sum("value").alias("coinbase_value"),
        F.sum(F.col("_tagged").cast("long")).alias("tagged_outputs"),
    )
    per_pool = attributed.join(payouts, "block_hash", "left").groupBy("pool_id", "pool_name").agg(
        F.count("address").alias("coinbase_outputs"),
        F.countDistinct("block_hash").alias("coinbase_blocks"),
        F.coalesce(F.sum("value"), F.lit(0).cast("long")).alias("coinbase_value"),
        F.sum(F.when(F.col("address").isNotNull(), F.col("_tagged").cast("long")).otherwise(0)).alias("tagged_outputs"),
    ).select(F.lit(None).cast("string").alias("address"), "*")
    return per_address.unionByName(per_pool)


def merge_receipts(state: DataFrame, day: DataFrame) -> DataFrame:
    """The receipts after the day: the tallies of each (address, pool) and of each pool added."""
    missing = [c for c in RECEIPT_TALLIES if c not in state.columns]
    if missing:
        raise ReceiptsStateError(
            f"the coinbase receipts state lacks {missing} (written before the label kinds): rebuild the "
            "state with `python -m pool_classifier.steps.bootstrap_state --ds <the day before>` "
            "(docs/operations.md), then run the days in order"
        )
    return (
        state.select("address", "pool_id", "pool_name", *RECEIPT_TALLIES).unionByName(day)
        .groupBy("address", "pool_id", "pool_name")
        .agg(*[F.sum(c).alias(c) for c in RECEIPT_TALLIES])
    )


class ReceiptsStateError(DataError, ValueError):
    """The coinbase receipts state of the day before cannot be merged (an older layout)."""


POOL_WALLET, COINBASE_MINER = "pool_wallet", "coinbase_miner"
LABEL_KINDS = (POOL_WALLET, COINBASE_MINER)


def pool_payout_styles(receipts: DataFrame, miner_payout_min_outputs: float) -> DataFrame:
    """Per pool, from its row of the receipts (the history of its blocks): `pool_blocks`,
    `pool_outputs` and `pool_value` paid, `pool_outputs_per_block` (mean payout outputs per
    block) and `pool_payout`: `miners` when that mean is at least `miner_payout_min_outputs`
    (the pool pays its miners in the coinbase), else `wallet` (it pays itself, then its miners)."""
    per_block = F.col("coinbase_outputs").cast("double") / F.col("coinbase_blocks").cast("double")
    return receipts.where(F.col("address").isNull()).select(
        "pool_id",
        F.col("coinbase_blocks").alias("pool_blocks"),
        F.col("coinbase_outputs").alias("pool_outputs"),
        F.col("coinbase_value").alias("pool_value"),
        F.when(F.col("coinbase_blocks") > 0, per_block).alias("pool_outputs_per_block"),
    ).withColumn(
        "pool_payout",
        F.when(F.col("pool_outputs_per_block") >= miner_payout_min_outputs, "miners").otherwise("wallet"),
    )


# The columns of `features/address_labels` (the first five as before the kinds).
LABEL_COLUMNS = (
    "address", "pool_id", "pool_name", "coinbase_outputs", "label_source", "label_kind", "coinbase_blocks",
    "coinbase_value", "pool_blocks", "pool_outputs_per_block", "pool_payout", "block_share", "value_share",
    "original_rule",
)


def address_labels(receipts: DataFrame, pools: DataFrame, min_coinbase_outputs: int,
                   min_wallet_coinbase_outputs: int = 1, miner_payout_min_outputs: float = 5.0) -> DataFrame:
    """Labelled addresses, each with its kind and the evidence.

    Each (address, pool) of the receipts is judged by how that pool pays (`pool_payout_styles`);
    an address is labelled for the pool that paid it most often (then the lowest pool id) among
    those whose rule labels it:

    * a pool that pays from a wallet: its coinbases pay the pool itself, so an address paid by
      at least `min_wallet_coinbase_outputs` of them is `pool_wallet`;
    * a pool that pays its miners in the coinbase: an address paid by at least
      `min_coinbase_outputs` of them is `coinbase_miner` (a miner, not the pool's wallet);
    * an address of the pools list is always `pool_wallet` (`label_source` `pool_list`, unless
      the coinbases label it too).

    Evidence: `coinbase_outputs`, `coinbase_blocks`, `coinbase_value` paid by the pool's
    blocks; the pool's `pool_blocks`, `pool_outputs_per_block`, `pool_payout`; `block_share`
    (the share of the pool's blocks that paid it) and `value_share` (of the value they paid);
    `original_rule`: the original classifier would label it (≥ `min_coinbase_outputs` outputs
    of one pool's blocks matched by tag, whatever the kind).
    """
    if not 1 <= min_wallet_coinbase_outputs <= min_coinbase_outputs:
        raise ValueError(f"min_wallet_coinbase_outputs must be in [1, min_coinbase_outputs = {min_coinbase_outputs}]"
                         f", got {min_wallet_coinbase_outputs}: every address the original rule labels must "
                         "stay labelled")
    styles = pool_payout_styles(receipts, miner_payout_min_outputs)
    paid = receipts.where(F.col("address").isNotNull())
    original = paid.groupBy("address").agg(
        (F.max("tagged_outputs") >= min_coinbase_outputs).alias("original_rule"))
    listed = pool_addresses(pools).withColumn(
        "_rank", F.row_number().over(Window.partitionBy("address").orderBy("pool_id"))
    ).where("_rank = 1").select("address", "pool_id", "pool_name", F.lit(True).alias("_listed"))
    by_receipts = (F.when((F.col("pool_payout") == "miners") & (F.col("coinbase_outputs") >= min_coinbase_outputs),
                          F.lit(COINBASE_MINER))
                   .when((F.col("pool_payout") == "wallet")
                         & (F.col("coinbase_outputs") >= min_wallet_coinbase_outputs), F.lit(POOL_WALLET)))
    # Each (address, pool) judged by that pool's rule first; then, among the pools whose rule
    # labels the address, the one that paid it most often (an address under one pool's miner
    # threshold can still be another pool's wallet).
    qualified = paid.drop("tagged_outputs").join(styles, "pool_id", "left").withColumn(
        "label_kind", by_receipts).where(F.col("label_kind").isNotNull())
    top = qualified.withColumn(
        "_rank", F.row_number().over(Window.partitionBy("address").orderBy(F.desc("coinbase_outputs"), "pool_id"))
    ).where("_rank = 1").drop("_rank").join(listed.select("address", "_listed"), "address", "left")
    by_coinbase = top.withColumn(
        "label_kind", F.when(F.col("_listed").isNotNull(), F.lit(POOL_WALLET)).otherwise(F.col("label_kind"))
    ).withColumn("label_source", F.lit("coinbase"))
    known = (
        listed.join(by_coinbase.select("address"), "address", "left_anti")
        .join(paid.drop("pool_name", "tagged_outputs"), ["address", "pool_id"], "left")
        .join(styles, "pool_id", "left")
        .withColumn("label_kind", F.lit(POOL_WALLET))
        .withColumn("label_source", F.lit("pool_list"))
    )

    def evidence(df: DataFrame) -> DataFrame:
        share = {"block_share": ("coinbase_blocks", "pool_blocks"), "value_share": ("coinbase_value", "pool_value")}
        for name, (part, whole) in share.items():
            df = df.withColumn(name, F.when(F.col(whole) > 0, F.coalesce(F.col(part), F.lit(0)).cast("double")
                                            / F.col(whole).cast("double")))
        for name in ("coinbase_outputs", "coinbase_blocks", "coinbase_value"):
            df = df.withColumn(name, F.coalesce(F.col(name), F.lit(0).cast("long")))
        return df.join(original, "address", "left").withColumn(
            "original_rule", F.coalesce("original_rule", F.lit(False))).select(*LABEL_COLUMNS)

    return evidence(by_coinbase).unionByName(evidence(known))


def sample_draw(seed: int) -> F.Column:
    """A seeded uniform draw in [0, 1) per address: the same on every run and partitioning."""
    return F.abs((F.xxhash64("address", F.lit(seed)) % 1_000_000_007).cast("double") / 1_000_000_007)


def sampling_rate(negatives_per_positive: float, positives: int, others: int) -> float:
    """The share of the unlabelled addresses sampled: ~`negatives_per_positive` per positive."""
    return min(1.0, negatives_per_positive * positives / others) if others else 0.0


# The label columns a training row carries: `label` is 1 for a labelled address of any kind
# (the training step picks its target from `label_kind`: model/training.py, `positive_kinds`),
# `original_label` is 1 where the original's rule labels it (the report's variant).
TRAINING_LABEL_COLUMNS = ("pool_id", "pool_name", "label_source", "label_kind", "original_label", "label")


def with_labels(rows: DataFrame, labels: DataFrame) -> DataFrame:
    """`rows` with the label columns of their address (the labels are few: broadcast)."""
    return rows.join(
        F.broadcast(labels.select("address", "pool_id", "pool_name", "label_source", "label_kind", "original_rule")),
        "address", "left",
    ).withColumn("label", F.col("pool_id").isNotNull().cast("int")).withColumn(
        "original_label", F.coalesce(F.col("original_rule"), F.lit(False)).cast("int")).drop("original_rule")


def training_set(candidates: DataFrame, labels: DataFrame, rows: int, negatives_per_positive: float,
                 seed: int) -> DataFrame:
    """Features of the labelled addresses of the state, plus a seeded random sample of the others.

    `candidates` are the state's rows (after the day) of every labelled address and of at least
    every address whose draw falls under the rate (a superset is fine: it is filtered here);
    `rows` is the number of addresses in the state. The sample keeps an address when its
    seeded draw falls under the sampling rate: random across addresses, the same on every run
    and on every partitioning. Features are computed for the sampled rows only.
    """
    labelled = with_labels(candidates, labels)
    positives = int(labelled.agg(F.sum("label")).first()[0] or 0)
    rate = sampling_rate(negatives_per_positive, positives, rows - positives)
    sampled = labelled.where((F.col("label") == 1) | (sample_draw(seed) < rate))
    return features_from_state(sampled, keep=TRAINING_LABEL_COLUMNS)


# ---------------------------------------------------------------- the state's layers
#
# The address state after day d is a base snapshot plus the daily deltas since (each delta: the
# merged partials of the addresses active that day). The latest layer holding an address has
# its partials. A day reads the layers once, keeping only the rows it needs (its active
# addresses, the labelled ones, the sampled ones), and writes only its delta: O(day).

LAYER = "_layer"
ACTIVE = "_active"


def latest_rows(layers: DataFrame, keep: F.Column) -> DataFrame:
    """Per address kept, its row of the latest layer (the state's partials for it)."""
    newest = Window.partitionBy("address").orderBy(F.desc(LAYER))
    return layers.where(keep).withColumn("_rank", F.row_number().over(newest)).where("_rank = 1").drop("_rank")


def needed_rows(layers: DataFrame, day_addresses: DataFrame, labels: DataFrame, seed: int,
                rate_bound: float) -> DataFrame:
    """The layers' latest rows of the addresses the day needs: its active addresses (to merge),
    the labelled ones and those whose draw is under `rate_bound` (the training sample's
    candidates), each flagged `_active`. The day's addresses are broadcast: one scan of the
    layers, no shuffle of the state."""
    active = F.broadcast(day_addresses.select("address").withColumn(ACTIVE, F.lit(True)))
    labelled = F.broadcast(labels.select("address").distinct().withColumn("_labelled", F.lit(True)))
    flagged = layers.join(active, "address", "left").join(labelled, "address", "left")
    keep = F.col(ACTIVE).isNotNull() | F.col("_labelled").isNotNull() | (sample_draw(seed) < rate_bound)
    rows = latest_rows(flagged, keep)
    return rows.withColumn(ACTIVE, F.coalesce(ACTIVE, F.lit(False))).drop("_labelled", LAYER)


def compact(layers: DataFrame) -> DataFrame:
    """Every address's latest partials: the base snapshot that replaces the layers."""
    return latest_rows(layers, F.lit(True)).drop(LAYER)


# ---------------------------------------------------------------- I/O


def read_extract(spark: SparkSession, where: datasets.HasBucket, table: str, ds: str) -> DataFrame:
    """One extracted day of one extract table."""
    return spark_io.read_parquet(spark, datasets.extract_dir(where, table, ds))


def _day_folders(spark: SparkSession, root: str) -> list[str]:
    """The `dt=` days under a folder that have a version in force (a killed writer's
    unpublished folder is not a day), sorted."""
    path, fs = spark_io.file_system(spark, root)
    if not fs.exists(path):
        return []
    names = [status.getPath().getName() for status in fs.listStatus(path)]
    return sorted(n[3:] for n in names if n.startswith("dt=") and spark_io.exists(spark, f"{root}/{n}"))


def check_order(spark: SparkSession, where: datasets.HasBucket, ds: str) -> str | None:
    """The day before `ds`, whose state `ds` builds on; None when `ds` starts the history.

    Refuses to build on a gap: merging needs every earlier day, in order. A day inside the
    history whose earlier states retention removed is refused too (not silently restarted).
    """
    states = _day_folders(spark, datasets.state_table_root(where, "address_state"))
    days = [d for d in states if d < ds]
    day_before = (date.fromisoformat(ds) - timedelta(days=1)).isoformat()
    if not days:
        start = history_start(spark, where, states[-1]) if states else None
        if start is not None and start < ds:
            raise StateOrderError(
                f"no state for {day_before}: the history starts on {start}, and the states before "
                f"{states[0]} were removed by retention. Rebuild the state as of {day_before} with "
                f"`python -m pool_classifier.steps.bootstrap_state --ds {day_before}` (docs/operations.md), "
                f"then run the days from {ds} in order."
            )
        return None
    if days[-1] != day_before:
        raise StateOrderError(
            f"no state for {day_before} (the latest state before {ds} is {days[-1]}): "
            f"run the days from {(date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()} "
            f"to {day_before} first, in date order."
        )
    return day_before


def history_start(spark: SparkSession, where: datasets.HasBucket, day: str) -> str | None:
    """The first day of the history the state after `day` was built from (its manifest's)."""
    location = datasets.state_dir(where, "address_state", day)
    return versioned.read_pointer(spark_io.hadoop_fs(spark), location)["meta"].get("history_from")


def state_layers(spark: SparkSession, where: datasets.HasBucket, day: str) -> tuple[DataFrame, int, dict]:
    """The address state after `day` as its layers (base, then deltas, each row with its
    `_layer`), how many layers hold rows, and its manifest's meta (how many addresses, which
    base, which deltas)."""
    fs = spark_io.hadoop_fs(spark)
    location = datasets.state_dir(where, "address_state", day)
    pointer = versioned.read_pointer(fs, location)
    folders = versioned.resolve(fs, location, pointer)
    files = versioned.data_files(fs, location, pointer=pointer)
    layers, n_layers = None, 0
    for index, folder in enumerate(folders):
        mine = [f for f in files if f.startswith(folder.rstrip("/") + "/")]
        if not mine:
            continue
        layer = spark.read.parquet(*mine).withColumn(LAYER, F.lit(index))
        layers = layer if layers is None else layers.unionByName(layer)
        n_layers += 1
    if layers is None:
        layers = empty_state(spark).withColumn(LAYER, F.lit(0))
    return layers, n_layers, pointer["meta"]


def previous_receipts(spark: SparkSession, where: datasets.HasBucket, day: str | None) -> DataFrame | None:
    return None if day is None else spark_io.read_parquet(spark, datasets.state_dir(where, "coinbase_receipts", day))


def drop_later_states(spark: SparkSession, where: datasets.HasBucket, ds: str) -> list[str]:
    """States after `ds` were built on the old `ds`: remove them (manifests, deltas, bases,
    receipts) so they get rebuilt in order."""
    dropped = []
    for table in datasets.STATE_TABLES:
        for day in _day_folders(spark, datasets.state_table_root(where, table)):
            if day > ds:
                spark_io.remove(spark, datasets.state_dir(where, table, day))
                dropped.append(day)
    for root, folder in ((f"{datasets.state_table_root(where, 'address_state')}/delta", datasets.state_delta_dir),
                         (f"{datasets.state_table_root(where, 'address_state')}/base", datasets.state_base_dir)):
        for day in _day_folders(spark, root):
            if day > ds:
                spark_io.remove(spark, folder(where, day))
    return sorted(set(dropped))


def switch_state(spark: SparkSession, where: datasets.HasBucket, ds: str, layers: list[str], meta: dict) -> None:
    """The manifest of the state after `ds`: the folders in force of its layers, in order."""
    fs = spark_io.hadoop_fs(spark)
    location = datasets.state_dir(where, "address_state", ds)
    # Relative to the manifest: a copy of the bucket keeps its meaning.
    folders = [versioned.relative_to(location, versioned.resolve(fs, layer)[0]) for layer in layers]
    versioned.switch(fs, location, folders, meta)


def write_table(spark: SparkSession, df: DataFrame, final: str, sort_by: list[str], parts: int | None = 1,
                meta: dict | None = None, observe: dict | None = None) -> int:
    """Publish `df` as the new version of the day `final` (never a half-written day).

    `parts` sorted files (rows hash-partitioned on the first sort column) named
    part-00000.parquet, part-00001.parquet, … in partition order, so a re-run gives the same
    files. Returns the number of rows written.
    """
    return spark_io.write_parquet(spark, df, final, sort_by, parts, meta, observe)


# Rows per file of the address state: it grows with the history, and one file means one
# task sorting and writing all of it on one core.
STATE_ROWS_PER_FILE = 500_000
MAX_STATE_FILES = 64


def state_files(rows: int) -> int:
    """How many files the state of about `rows` rows is written as (1 for small states)."""
    return max(1, min(MAX_STATE_FILES, -(-rows // STATE_ROWS_PER_FILE)))


# ---------------------------------------------------------------- bootstrap

# A history is large: more files for it than for a day (and as many partitions to write them).
HISTORY_ROWS_PER_FILE = 2_000_000


class HistoryError(DataError, ValueError):
    """The history to bootstrap from is missing or has a gap."""


def history_days(spark: SparkSession, where: datasets.HasBucket, first: str | None, until: str) -> list[str]:
    """The extracted days from `first` (default: the first one) to `until`, refusing a gap."""
    import datetime as dt

    days = [d for d in _day_folders(spark, datasets.extract_root(where, "blocks")) if d <= until
            and (first is None or d >= first)]
    if not days or days[-1] != until:
        raise HistoryError(f"no extract of {until} under {datasets.extract_root(where, 'blocks')}: extract the "
                           "history up to the day first (extract_day for each day, or the history export)")
    expected = [(dt.date.fromisoformat(days[0]) + dt.timedelta(days=i)).isoformat()
                for i in range((dt.date.fromisoformat(until) - dt.date.fromisoformat(days[0])).days + 1)]
    missing = sorted(set(expected) - set(days))
    if missing:
        raise HistoryError(f"the history from {days[0]} to {until} lacks the extracts of {', '.join(missing[:10])}"
                           f"{' …' if len(missing) > 10 else ''}: extract those days first")
    return days


def read_history(spark: SparkSession, where: datasets.HasBucket, table: str, days: list[str],
                 history: str | None) -> DataFrame:
    if history:
        return spark_io.read_parquet(spark, f"{history.rstrip('/')}/{table}")
    files = [f for day in days for f in spark_io.data_files(spark, datasets.extract_dir(where, table, day))]
    return spark.read.parquet(*files)


def bootstrap(spark: SparkSession, args: argparse.Namespace) -> str:
    """The state as of `--ds` from the whole history up to it, in one batch (`--bootstrap`).

    Every extract-shaped day from `--from` (default: the first extracted day) to `--ds` (or one
    history export per table, `--history`), aggregated at once into the state's partials
    (`day_partials` is exact over any window: the same integers a day-by-day merge gives) and
    the coinbases into the receipts: a base snapshot, its manifest, the receipts of `--ds`. The
    daily runs then continue from the day after as if they had built the history themselves.
    """
    where, until = datasets.Bucket(args.bucket.rstrip("/")), args.ds
    days = [] if args.history else history_days(spark, where, args.first, until)
    tables = {t: read_history(spark, where, t, days, args.history) for t in datasets.EXTRACT_TABLES}
    pools = load_pools(spark, args.pools)
    outputs, inputs = tables["outputs"], tables["inputs"]
    parts = max(1, min(MAX_STATE_FILES, -(-(outputs.count() + inputs.count()) // HISTORY_ROWS_PER_FILE)))
    drop_later_states(spark, where, until)
    with spark_io.job_settings(spark, {"spark.sql.shuffle.partitions": str(parts),
                                       "spark.sql.adaptive.coalescePartitions.enabled": "false"}):
        with spark_io.phase(spark, "bootstrap_state: the receipts of the history's coinbases"):
            coinbase = outputs.where("is_coinbase")
            coinbase_outputs = coinbase.select("block_hash", "address")
            block_pools = attribute_blocks(tables["blocks"], coinbase_outputs, pools)
            write_table(spark, coinbase_receipts(block_pools, coinbase_payouts(coinbase)),
                        datasets.state_dir(where, "coinbase_receipts", until), ["address", "pool_id"])
        with spark_io.phase(spark, "bootstrap_state: every address's partials, one base snapshot"):
            base = day_partials(ordinary_flows(outputs, inputs), parts)
            addresses = write_table(spark, base, datasets.state_base_dir(where, until), ["address"], None)
    meta = {"addresses": addresses, "base": until, "deltas": [], "delta_rows": 0,
            "history_from": days[0] if days else args.first,
            "bootstrapped": {"from": days[0] if days else args.first, "until": until}}
    switch_state(spark, where, until, [datasets.state_base_dir(where, until)], meta)
    return (f"bootstrap_state {until}: {addresses} addresses from "
            f"{f'{len(days)} days ({days[0]} … {until})' if days else args.history}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build per-address features and pool labels for a day.")
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD (UTC)")
    parser.add_argument("--bucket", required=True, help="root of extracts/, state/, features/ (a folder or gs://)")
    parser.add_argument("--pools", required=True, help="pools-v2.json (known pools, tags, addresses)")
    parser.add_argument("--min-coinbase-outputs", type=int, default=SETTINGS.min_coinbase_outputs)
    parser.add_argument("--min-wallet-coinbase-outputs", type=int, default=SETTINGS.min_wallet_coinbase_outputs)
    parser.add_argument("--miner-payout-min-outputs", type=float, default=SETTINGS.miner_payout_min_outputs)
    parser.add_argument("--negatives-per-positive", type=float, default=SETTINGS.negatives_per_positive)
    parser.add_argument("--seed", type=int, default=SETTINGS.seed)
    parser.add_argument("--compact-every-days", type=int, default=SETTINGS.compact_every_days)
    parser.add_argument("--bootstrap", action="store_true",
                        help="build the state as of --ds from the whole history up to it (see `bootstrap`)")
    parser.add_argument("--from", dest="first", help="with --bootstrap: the history's first day (default: the first)")
    parser.add_argument("--history", help="with --bootstrap: a history export (<folder>/{blocks,outputs,inputs})")
    return parser.parse_args(argv)


def run(spark: SparkSession, args: argparse.Namespace) -> str:
    """Build the day: the state's delta (and its compaction when due), labels, the features of
    the active addresses, the training set. With `--bootstrap`: the state as of the day from
    the whole history (`bootstrap`)."""
    if args.bootstrap:
        return bootstrap(spark, args)
    where, ds = datasets.Bucket(args.bucket.rstrip("/")), args.ds
    with spark_io.phase(spark, "build_features: the state's order, the inputs"):
        day_before = check_order(spark, where, ds)
        dropped = drop_later_states(spark, where, ds)
        if dropped:
            print(f"build_features {ds}: removed the states of {', '.join(dropped)}, built on the "
                  f"old {ds}; re-run those days in order.")
        outputs = read_extract(spark, where, "outputs", ds)
        inputs = read_extract(spark, where, "inputs", ds)
        blocks = read_extract(spark, where, "blocks", ds)
        pools = load_pools(spark, args.pools)

    with spark_io.phase(spark, "build_features: labels (blocks, receipts)"):
        labels, counts = label_the_day(spark, where, ds, day_before, outputs, blocks, pools, args)
    # The day's size sets how many files (and partitions) its outputs have; Parquet counts
    # read only the footers. Every shuffle on the address then has that many partitions, so
    # the day's partials, their merge with the state and the delta's write share one.
    parts = state_files(outputs.count() + inputs.count())
    # Fixed partitions: files are the same on every run (no coalescing by runtime sizes).
    with spark_io.job_settings(spark, {"spark.sql.shuffle.partitions": str(parts),
                                       "spark.sql.adaptive.coalescePartitions.enabled": "false"}):
        return _build(spark, args, where, ds, day_before, outputs, inputs, labels, counts, parts)


def _build(spark, args, where, ds, day_before, outputs, inputs, labels, counts, parts) -> str:
    flows = ordinary_flows(outputs, inputs)
    candidates, meta = merge_the_day(spark, where, ds, day_before, flows, labels, parts, args)
    with spark_io.phase(spark, "build_features: write features"):
        # A row-wise function of the delta's sorted files: one features file per delta file.
        n_active = spark_io.write_per_file(spark, datasets.state_delta_dir(where, ds), features_from_state,
                                           datasets.features_dir(where, "address_features", ds))
    with spark_io.phase(spark, "build_features: training set"):
        training = training_set(candidates, labels, meta["addresses"], args.negatives_per_positive, args.seed)
        n_training = write_table(spark, training, datasets.features_dir(where, "training_features", ds), ["address"])
    compacted = ""
    if len(meta["deltas"]) >= args.compact_every_days:
        with spark_io.phase(spark, "build_features: compact the state"):
            compact_state(spark, where, ds, meta)
        compacted = f"; the state compacted into a base of {meta['addresses']} addresses"
    with spark_io.phase(spark, "build_features: counts"):
        unaddressed = count_unaddressed(outputs, inputs)
    return (
        f"build_features {ds}: {n_active} active addresses featured of {meta['addresses']} in the state "
        f"({unaddressed} flows without an address left out); {counts['attributed']} of {counts['blocks']} blocks "
        f"attributed to a pool; {counts['labels']} addresses labelled ({counts['labels'] - counts['miners']} pool wallets, "
        f"{counts['miners']} coinbase miners); training set {n_training} rows"
        f"{compacted}"
    )


def label_the_day(spark, where, ds, day_before, outputs, blocks, pools, args) -> tuple[DataFrame, dict]:
    """Blocks attributed, coinbase receipts merged into their state, labels: written. Returns
    the labels (small: cached) and the counts for the log. Everything here is small (the day's
    blocks and coinbase outputs): cached; the receipts and the labels are read back once
    written, so that the plans after them start from their files (the labels' plan over the
    receipts, the pools and the blocks is long, and every later query would carry it)."""
    coinbase = outputs.where("is_coinbase").select(
        *[c for c in ("block_hash", "address", "value", "output_type") if c in outputs.columns]).cache()
    coinbase_outputs = coinbase.select("block_hash", "address")
    block_pools = attribute_blocks(blocks, coinbase_outputs, pools).cache()
    block_meta: dict = {"pools_sha256": pools.sha256}
    n_blocks = write_table(spark, block_pools.select(*BLOCK_POOLS_COLUMNS), datasets.features_dir(where, "block_pools", ds), ["block_number"],
                           meta=block_meta, observe={"attributed": F.count("pool_id")})
    receipts = coinbase_receipts(block_pools, coinbase_payouts(coinbase))
    previous = previous_receipts(spark, where, day_before)
    if previous is not None:
        receipts = merge_receipts(previous, receipts)
    receipts_dir = datasets.state_dir(where, "coinbase_receipts", ds)
    write_table(spark, receipts, receipts_dir, ["address", "pool_id"])
    labels = address_labels(spark_io.read_parquet(spark, receipts_dir), pools_frame(spark, pools), args.min_coinbase_outputs,
                            args.min_wallet_coinbase_outputs, args.miner_payout_min_outputs)
    labels_dir = datasets.features_dir(where, "address_labels", ds)
    label_meta: dict = {"pools_sha256": pools.sha256}
    n_labels = write_table(spark, labels.withColumn("pools_sha256", F.lit(pools.sha256)), labels_dir, ["address"], meta=label_meta,
                           observe={"miners": F.coalesce(F.sum((F.col("label_kind") == COINBASE_MINER).cast("long")),
                                                       F.lit(0))})
    for small in (coinbase, block_pools):
        small.unpersist()
    labels = spark_io.read_parquet(spark, labels_dir).cache()
    return labels, {"blocks": n_blocks, "attributed": block_meta["attributed"], "labels": n_labels,
                    "miners": label_meta["miners"]}


def merge_the_day(spark, where, ds, day_before, flows, labels, parts, args) -> tuple[DataFrame, dict]:
    """The day merged into the state: its delta written (the merged partials of its active
    addresses), the manifest switched. Returns the state's rows after the day that the training
    set may need (the delta, and the layers' rows of the labelled and sampled addresses), and
    the manifest's meta."""
    day = day_partials(flows, parts)
    if day_before is None:  # the history starts here: the day's partials are the state
        previous, needed, found_active = {"addresses": 0, "base": None, "deltas": [], "history_from": ds}, None, 0
        delta = day
    else:
        layers, _, previous = state_layers(spark, where, day_before)
        n_labels = labels.count()
        # Every candidate of the sample is kept: the rate can only be lower than this bound
        # (the state only grows, and at most every label is a positive).
        others_at_least = previous["addresses"] - n_labels
        bound = min(1.0, args.negatives_per_positive * n_labels / others_at_least) if others_at_least > 0 else 1.0
        with spark_io.phase(spark, "build_features: read the state (the rows the day needs)"):
            needed = needed_rows(layers, flows.select("address").distinct(), labels, args.seed, bound).cache()
            found_active = needed.where(ACTIVE).count()
        delta = merge_state(needed.where(ACTIVE).drop(ACTIVE), day)
    with spark_io.phase(spark, "build_features: day partials, merged, written as the state's delta"):
        # Partitioned by address already (the partials' shuffle, which the merge keeps): written as is.
        n_delta = write_table(spark, delta, datasets.state_delta_dir(where, ds), ["address"], None)
    meta = {
        "addresses": previous["addresses"] + n_delta - found_active,
        "base": previous["base"],
        "deltas": [*previous["deltas"], ds],
        "delta_rows": n_delta,
        "history_from": previous.get("history_from"),
    }
    layer_locations = ([datasets.state_base_dir(where, meta["base"])] if meta["base"] else []) + [
        datasets.state_delta_dir(where, d) for d in meta["deltas"]]
    switch_state(spark, where, ds, layer_locations, meta)
    written = spark_io.read_parquet(spark, datasets.state_delta_dir(where, ds))
    candidates = written if needed is None else written.unionByName(needed.where(~F.col(ACTIVE)).drop(ACTIVE))
    return candidates, meta


def compact_state(spark: SparkSession, where: datasets.HasBucket, ds: str, meta: dict) -> None:
    """The state after `ds` as one base snapshot (idempotent: the same rows on every run);
    the manifest of `ds` then names the base alone. Then retention: the states older than the
    base before this one are removed (`remove_states_before`)."""
    layers, _, _ = state_layers(spark, where, ds)
    previous_base = meta["base"]
    write_table(spark, compact(layers), datasets.state_base_dir(where, ds), ["address"],
                state_files(meta["addresses"]))
    meta.update(base=ds, deltas=[])
    switch_state(spark, where, ds, [datasets.state_base_dir(where, ds)], meta)
    if previous_base is not None:
        remove_states_before(spark, where, previous_base)


def remove_states_before(spark: SparkSession, where: datasets.HasBucket, base_day: str) -> None:
    """Keep the states from `base_day` on (its manifest names its base alone): remove the
    older manifests and receipts, the older bases and the deltas up to `base_day`, which no
    kept manifest names. Manifests first, so no kept name ever points at a removed folder."""
    for table in datasets.STATE_TABLES:
        for day in _day_folders(spark, datasets.state_table_root(where, table)):
            if day < base_day:
                spark_io.remove(spark, datasets.state_dir(where, table, day))
    root = datasets.state_table_root(where, "address_state")
    for day in _day_folders(spark, f"{root}/delta"):
        if day <= base_day:
            spark_io.remove(spark, datasets.state_delta_dir(where, day))
    for day in _day_folders(spark, f"{root}/base"):
        if day < base_day:
            spark_io.remove(spark, datasets.state_base_dir(where, day))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"build_features {args.ds}").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        print(run(spark, args))
    except DataError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return DATA_ERROR_EXIT_CODE
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
