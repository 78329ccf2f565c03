"""build_features: per-address features, per-block pool attribution and pool labels.

Reads one day's extracts (`extracts/{blocks,outputs,inputs}/dt=<ds>`) and the state of
the day before (`state/{address_state,coinbase_receipts}/dt=<ds-1>`), and writes for `ds`:

* `state/address_state`, `state/coinbase_receipts` — the running per-address partials and
  coinbase receipts per (address, pool), history up to and including `ds`;
* `features/address_features` — the addresses active on `ds`, with the columns of
  `pool_classifier.model.feature_spec.FEATURE_COLUMNS`;
* `features/block_pools` — each block of the day with the pool that mined it (matched by
  coinbase tag, else by payout address, else `none`);
* `features/address_labels` — pool addresses: paid by at least N coinbase outputs of
  attributed blocks, plus the pools' known payout addresses;
* `features/training_features` — labelled addresses plus a seeded sample of the others.

The transforms are pure functions of DataFrames; `main` does the I/O. Run with
`spark-submit build_features.py --help` (local mode or Dataproc Serverless alike).
"""
from __future__ import annotations

import argparse
import string
import sys
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pool_classifier import datasets
from pool_classifier.errors import DATA_ERROR_EXIT_CODE, StateOrderError
from pool_classifier.io import spark_io
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from pool_classifier.steps.build_features import SETTINGS

SECONDS_PER_DAY = 86400
SATOSHI_SUM = "decimal(38,0)"


# ---------------------------------------------------------------- features
#
# Features come from mergeable per-address partials, kept as a daily state: each day's
# flows are aggregated into partials (counts, exact sums and sums of squares, month sets,
# first/last block times and sums of gaps between distinct times) and merged into the
# state of the day before. Features are a pure function of the state.

SIDE_PREFIX = {"output": "out", "input": "in"}
# The partial columns of one side, with their Spark types.
PARTIALS = {
    "n": "long",                 # flows (outputs received / inputs spent)
    "value_sum": SATOSHI_SUM,    # Σ value, exact
    "value_sumsq": SATOSHI_SUM,  # Σ value², exact (int64 would overflow)
    "tx": "long",                # distinct transactions (a transaction lies in one day)
    "month_min": "date",
    "month_max": "date",
    "months": "array<date>",     # distinct months, sorted
    "first_time": "long",        # Unix seconds of the first distinct block time
    "last_time": "long",
    "times": "long",             # distinct block times
    "gap_sum": SATOSHI_SUM,      # Σ gaps between consecutive distinct times (s)
    "gap_sumsq": SATOSHI_SUM,    # Σ gaps²
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


def day_partials(flows: DataFrame) -> DataFrame:
    """Both sides' partials per address over the given flows (a day, or any window).

    A side's columns are null where the address has no flow on it. One shuffle: the flows
    are hash-partitioned by address once, then folded per (address, side, transaction) —
    one block time and one month each — and per address, with no exchange in between
    (partitioning by address satisfies both groupings). Each side's distinct block times
    are kept as a sorted array: their gaps telescope (Σ gaps = last − first) and their
    squares are summed over the array. Value sums are exact: int64 per transaction, the
    squares in DECIMAL(38,0).
    """
    value = F.col("value")
    per_tx = (
        flows.repartition("address")
        .groupBy("address", "side", "transaction_hash")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(value).alias("value_sum"),
            F.sum(value.cast(SATOSHI_SUM) * value.cast(SATOSHI_SUM)).alias("value_sumsq"),
            F.min("block_timestamp_month").alias("month"),
            F.min(F.unix_seconds("block_timestamp")).alias("t"),
        )
    )
    folded = []
    for side, p in SIDE_PREFIX.items():
        def on_side(column: F.Column) -> F.Column:
            return F.when(F.col("side") == side, column)

        folded += [
            F.sum(on_side(F.col("n"))).alias(f"{p}_n"),
            F.sum(on_side(F.col("value_sum"))).cast(SATOSHI_SUM).alias(f"{p}_value_sum"),
            F.sum(on_side(F.col("value_sumsq"))).cast(SATOSHI_SUM).alias(f"{p}_value_sumsq"),
            F.count(on_side(F.lit(1))).alias(f"{p}_tx"),
            F.array_sort(F.collect_set(on_side(F.col("month")))).alias(f"{p}_month_set"),
            F.array_sort(F.collect_set(on_side(F.col("t")))).alias(f"{p}_time_set"),
        ]
    per_address = per_tx.groupBy("address").agg(*folded)

    columns = [F.col("address")]
    for p in SIDE_PREFIX.values():
        months, times = F.col(f"{p}_month_set"), F.col(f"{p}_time_set")

        def if_present(column: F.Column) -> F.Column:
            return F.when(F.col(f"{p}_n").isNotNull(), column)

        gap = f"CAST({p}_time_set[i] - {p}_time_set[i - 1] AS {SATOSHI_SUM})"
        gap_sumsq = F.expr(
            f"aggregate(sequence(1, size({p}_time_set) - 1), CAST(0 AS {SATOSHI_SUM}), "
            f"(acc, i) -> CAST(acc + {gap} * {gap} AS {SATOSHI_SUM}))"
        )
        columns += [
            F.col(f"{p}_n"),
            F.col(f"{p}_value_sum"),
            F.col(f"{p}_value_sumsq"),
            if_present(F.col(f"{p}_tx")).alias(f"{p}_tx"),
            if_present(F.array_min(months)).alias(f"{p}_month_min"),
            if_present(F.array_max(months)).alias(f"{p}_month_max"),
            if_present(months).alias(f"{p}_months"),
            if_present(F.array_min(times)).alias(f"{p}_first_time"),
            if_present(F.array_max(times)).alias(f"{p}_last_time"),
            if_present(F.size(times).cast("long")).alias(f"{p}_times"),
            if_present((F.array_max(times) - F.array_min(times)).cast(SATOSHI_SUM)).alias(f"{p}_gap_sum"),
            if_present(F.when(F.size(times) > 1, gap_sumsq).otherwise(F.lit(0).cast(SATOSHI_SUM)))
            .alias(f"{p}_gap_sumsq"),
        ]
    return per_address.select(*columns)

def empty_state(spark: SparkSession) -> DataFrame:
    schema = ", ".join(["address string"] + [f"{p}_{n} {t}" for p in SIDE_PREFIX.values() for n, t in PARTIALS.items()])
    return spark.createDataFrame([], schema)


def _add(a: F.Column, b: F.Column) -> F.Column:
    """a + b where a missing side counts as nothing; null only when both are missing."""
    return F.when(a.isNull(), b).when(b.isNull(), a).otherwise(a + b)


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

        bridge = (new("first_time") - old("last_time")).cast(SATOSHI_SUM)
        both = old("n").isNotNull() & new("n").isNotNull()
        columns += [
            _add(old("n"), new("n")).alias(f"{p}_n"),
            _add(old("value_sum"), new("value_sum")).cast(SATOSHI_SUM).alias(f"{p}_value_sum"),
            _add(old("value_sumsq"), new("value_sumsq")).cast(SATOSHI_SUM).alias(f"{p}_value_sumsq"),
            _add(old("tx"), new("tx")).alias(f"{p}_tx"),
            F.least(old("month_min"), new("month_min")).alias(f"{p}_month_min"),
            F.greatest(old("month_max"), new("month_max")).alias(f"{p}_month_max"),
            F.when(old("months").isNull(), new("months"))
            .when(new("months").isNull(), old("months"))
            .otherwise(F.array_sort(F.array_union(old("months"), new("months"))))
            .alias(f"{p}_months"),
            F.least(old("first_time"), new("first_time")).alias(f"{p}_first_time"),
            F.greatest(old("last_time"), new("last_time")).alias(f"{p}_last_time"),
            _add(old("times"), new("times")).alias(f"{p}_times"),
            (_add(old("gap_sum"), new("gap_sum")) + F.when(both, bridge).otherwise(0))
            .cast(SATOSHI_SUM).alias(f"{p}_gap_sum"),
            (_add(old("gap_sumsq"), new("gap_sumsq")) + F.when(both, bridge * bridge).otherwise(0))
            .cast(SATOSHI_SUM).alias(f"{p}_gap_sumsq"),
        ]
    return joined.select(*columns)


def active_on(ds: str) -> F.Column:
    """True for the state rows of addresses with a flow on day `ds` (the last day merged)."""
    start = F.unix_seconds(F.to_timestamp(F.lit(f"{ds} 00:00:00")))
    return F.greatest("out_last_time", "in_last_time") >= start


def _sample_stddev(n: F.Column, total: F.Column, squares: F.Column) -> F.Column:
    """sqrt((n·Σx² − (Σx)²) / (n(n−1))) with the numerator exact; 0 when n < 2."""
    numerator = (n.cast(SATOSHI_SUM) * squares - total * total).cast("double")
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
        months = F.size(c("months"))
        gaps = c("times") - 1
        derived.update({
            f"{side}_month_min": month_min,
            f"{side}_month_max": month_max,
            f"{side}_active_time": month_max - month_min,
            f"{side}_active_months": months,
            f"total_tx_{side}_count": c("n"),
            f"total_tx_{side}_value": c("value_sum"),
            f"mean_tx_{side}_value": _ratio(c("value_sum"), c("n")),
            f"stddev_tx_{side}_value": _sample_stddev(c("n"), c("value_sum"), c("value_sumsq")),
            f"total_{side}_tx": c("tx"),
            f"mean_monthly_{side}_value": _ratio(c("value_sum"), months),
            f"mean_monthly_{side}_count": _ratio(c("n"), months),
            f"mean_{side}_idle_time": _ratio(c("gap_sum"), gaps),
            f"stddev_{side}_idle_time": _sample_stddev(gaps, c("gap_sum"), c("gap_sumsq")),
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

_UPPER = string.ascii_uppercase
_LOWER = string.ascii_lowercase


def ascii_folded(binary: F.Column) -> F.Column:
    """Bytes as a string of one character per byte, with ASCII letters lower-cased.

    Matching tags on this (never on hex text) is a byte-exact, ASCII-case-insensitive
    search: no match can straddle half-bytes, and non-ASCII bytes compare as themselves.
    """
    return F.translate(F.decode(binary, "ISO-8859-1"), _UPPER, _LOWER)


def pool_tags(pools: DataFrame) -> DataFrame:
    """One row per (pool, tag) with the folded tag to search for."""
    return (
        pools.select("id", "name", F.explode("tags").alias("tag"))
        .where(F.length("tag") > 0)
        .select(
            F.col("id").alias("pool_id"),
            F.col("name").alias("pool_name"),
            ascii_folded(F.encode("tag", "UTF-8")).alias("pattern"),
        )
        .withColumn("pattern_length", F.length("pattern"))
    )


def pool_addresses(pools: DataFrame) -> DataFrame:
    return pools.select(
        F.col("id").alias("pool_id"),
        F.col("name").alias("pool_name"),
        F.explode("addresses").alias("address"),
    )


def attribute_blocks(blocks: DataFrame, coinbase_outputs: DataFrame, pools: DataFrame) -> DataFrame:
    """Each block with its pool: by coinbase tag first, else by payout address, else none.

    Several matching tags: the longest wins (the most specific), then the lowest pool id.
    """
    script = blocks.select(
        "block_hash", "block_number", ascii_folded(F.unhex("coinbase_param")).alias("script")
    )
    tag_hits = script.crossJoin(F.broadcast(pool_tags(pools))).where(
        F.expr("contains(script, pattern)")
    )
    best_tag = tag_hits.withColumn(
        "rank",
        F.row_number().over(
            Window.partitionBy("block_hash").orderBy(F.desc("pattern_length"), "pool_id")
        ),
    ).where("rank = 1")
    by_tag = best_tag.select("block_number", "pool_id", "pool_name", F.lit("tag").alias("matched_by"))

    address_hits = coinbase_outputs.join(F.broadcast(pool_addresses(pools)), "address")
    best_address = address_hits.withColumn(
        "rank", F.row_number().over(Window.partitionBy("block_number").orderBy("pool_id"))
    ).where("rank = 1")
    by_address = best_address.select(
        "block_number", "pool_id", "pool_name", F.lit("address").alias("matched_by")
    )

    tagged = blocks.join(by_tag, "block_number", "left")
    addressed = by_address.select(
        "block_number",
        F.col("pool_id").alias("a_pool_id"),
        F.col("pool_name").alias("a_pool_name"),
        F.col("matched_by").alias("a_matched_by"),
    )
    out = tagged.join(addressed, "block_number", "left")
    return out.select(
        "block_hash",
        "block_number",
        "block_timestamp",
        F.coalesce("pool_id", "a_pool_id").alias("pool_id"),
        F.coalesce("pool_name", "a_pool_name").alias("pool_name"),
        F.coalesce("matched_by", "a_matched_by", F.lit("none")).alias("matched_by"),
    )


def coinbase_receipts(block_pools: DataFrame, coinbase_outputs: DataFrame) -> DataFrame:
    """Coinbase outputs of attributed blocks per (address, pool): the raw material of labels."""
    attributed = block_pools.where(F.col("pool_id").isNotNull()).select(
        "block_number", "pool_id", "pool_name"
    )
    return (
        coinbase_outputs.join(attributed, "block_number")
        .groupBy("address", "pool_id", "pool_name")
        .agg(F.count(F.lit(1)).alias("coinbase_outputs"))
    )


def merge_receipts(state: DataFrame, day: DataFrame) -> DataFrame:
    return (
        state.unionByName(day)
        .groupBy("address", "pool_id", "pool_name")
        .agg(F.sum("coinbase_outputs").alias("coinbase_outputs"))
    )


def address_labels(receipts: DataFrame, pools: DataFrame, min_coinbase_outputs: int) -> DataFrame:
    """Pool addresses: paid by ≥ N coinbase outputs of attributed blocks, or a known payout address.

    An address paid by several pools is labelled with the pool that paid it most often.
    """
    top = receipts.withColumn(
        "rank",
        F.row_number().over(
            Window.partitionBy("address").orderBy(F.desc("coinbase_outputs"), "pool_id")
        ),
    ).where("rank = 1")
    by_coinbase = top.where(F.col("coinbase_outputs") >= min_coinbase_outputs).select(
        "address", "pool_id", "pool_name", "coinbase_outputs", F.lit("coinbase").alias("label_source")
    )
    known = (
        pool_addresses(pools)
        .join(by_coinbase.select("address"), "address", "left_anti")
        .join(receipts.groupBy("address").agg(F.sum("coinbase_outputs").alias("n")), "address", "left")
        .select(
            "address",
            "pool_id",
            "pool_name",
            F.coalesce("n", F.lit(0)).alias("coinbase_outputs"),
            F.lit("pool_list").alias("label_source"),
        )
    )
    return by_coinbase.unionByName(known)


def training_set(state: DataFrame, labels: DataFrame, negatives_per_positive: float, seed: int) -> DataFrame:
    """Features of the labelled addresses in the state, plus a seeded random sample of the others.

    The sample keeps an address when a seeded hash of it falls under the sampling rate:
    random across addresses, the same on every run and on every partitioning. The labels
    are few (thousands) and broadcast, so the state is scanned twice (the counts, then
    the sample) and never shuffled; features are computed for the sampled rows only.
    """
    labelled = state.join(
        F.broadcast(labels.select("address", "pool_id", "pool_name", "label_source")), "address", "left"
    ).withColumn("label", F.col("pool_id").isNotNull().cast("int"))
    # One pass for both counts (label is 0 or 1).
    counts = labelled.agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("positives")).first()
    positives = int(counts["positives"] or 0)
    others = int(counts["rows"]) - positives
    rate = min(1.0, negatives_per_positive * positives / others) if others else 0.0
    draw = (F.xxhash64("address", F.lit(seed)) % 1_000_000_007).cast("double") / 1_000_000_007
    sampled = labelled.where((F.col("label") == 1) | (F.abs(draw) < rate))
    return features_from_state(sampled, keep=("pool_id", "pool_name", "label_source", "label"))


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


def previous_state(spark: SparkSession, where: datasets.HasBucket, table: str, ds: str) -> DataFrame | None:
    """The state of the day before `ds`; None when `ds` starts the history.

    Refuses to build on a gap: merging needs every earlier day, in order.
    """
    days = [d for d in _day_folders(spark, datasets.state_table_root(where, table)) if d < ds]
    if not days:
        return None
    day_before = (date.fromisoformat(ds) - timedelta(days=1)).isoformat()
    if days[-1] != day_before:
        raise StateOrderError(
            f"no state for {day_before} (the latest state before {ds} is {days[-1]}): "
            f"run the days from {(date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()} "
            f"to {day_before} first, in date order."
        )
    return spark_io.read_parquet(spark, datasets.state_dir(where, table, day_before))


def drop_later_states(spark: SparkSession, where: datasets.HasBucket, ds: str) -> list[str]:
    """States after `ds` were built on the old `ds`: remove them so they get rebuilt in order."""
    dropped = []
    for table in datasets.STATE_TABLES:
        for day in _day_folders(spark, datasets.state_table_root(where, table)):
            if day > ds:
                spark_io.remove(spark, datasets.state_dir(where, table, day))
                dropped.append(day)
    return sorted(set(dropped))


def write_table(spark: SparkSession, df: DataFrame, final: str, sort_by: list[str], parts: int = 1) -> int:
    """Publish `df` as the new version of the day `final` (never a half-written day).

    `parts` sorted files (rows hash-partitioned on the first sort column) named
    part-00000.parquet, part-00001.parquet, … in partition order, so a re-run gives the same
    files. Returns the number of rows written.
    """
    spark_io.write_parquet(spark, df, final, sort_by, parts)
    return spark_io.read_parquet(spark, final).count()


# Rows per file of the address state: it grows with the history, and one file means one
# task sorting and writing all of it on one core.
STATE_ROWS_PER_FILE = 500_000
MAX_STATE_FILES = 64


def state_files(rows: int) -> int:
    """How many files the state of about `rows` rows is written as (1 for small states)."""
    return max(1, min(MAX_STATE_FILES, -(-rows // STATE_ROWS_PER_FILE)))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build per-address features and pool labels for a day.")
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD (UTC)")
    parser.add_argument("--bucket", required=True, help="root of extracts/, state/, features/ (a folder or gs://)")
    parser.add_argument("--pools", required=True, help="pools-v2.json (known pools, tags, addresses)")
    parser.add_argument("--min-coinbase-outputs", type=int, default=SETTINGS.min_coinbase_outputs)
    parser.add_argument("--negatives-per-positive", type=float, default=SETTINGS.negatives_per_positive)
    parser.add_argument("--seed", type=int, default=SETTINGS.seed)
    return parser.parse_args(argv)


def run(spark: SparkSession, args: argparse.Namespace) -> str:
    """Build the day: state, labels, features of the active addresses, training set."""
    where, ds = datasets.Bucket(args.bucket.rstrip("/")), args.ds
    previous = previous_state(spark, where, "address_state", ds)
    previous_receipts = previous_state(spark, where, "coinbase_receipts", ds)
    dropped = drop_later_states(spark, where, ds)
    if dropped:
        print(f"build_features {ds}: removed the states of {', '.join(dropped)}, built on the "
              f"old {ds}; re-run those days in order.")

    outputs = read_extract(spark, where, "outputs", ds)
    inputs = read_extract(spark, where, "inputs", ds)
    blocks = read_extract(spark, where, "blocks", ds)
    pools = spark.read.option("multiLine", True).json(args.pools)

    # Parquet counts read only the footers: they size the state's files without computing.
    day_flows = outputs.count() + inputs.count()
    rows_at_most = day_flows + (previous.count() if previous is not None else 0)
    day = day_partials(ordinary_flows(outputs, inputs))
    state = merge_state(previous if previous is not None else empty_state(spark), day)
    n_state = write_table(
        spark, state, datasets.state_dir(where, "address_state", ds), ["address"], state_files(rows_at_most)
    )
    state = spark_io.read_parquet(spark, datasets.state_dir(where, "address_state", ds))

    coinbase_outputs = outputs.where("is_coinbase").select("block_number", "address")
    block_pools = attribute_blocks(blocks, coinbase_outputs, pools).cache()
    receipts = coinbase_receipts(block_pools, coinbase_outputs)
    if previous_receipts is not None:
        receipts = merge_receipts(previous_receipts, receipts)
    write_table(spark, receipts, datasets.state_dir(where, "coinbase_receipts", ds), ["address", "pool_id"])
    receipts = spark_io.read_parquet(spark, datasets.state_dir(where, "coinbase_receipts", ds))
    labels = address_labels(receipts, pools, args.min_coinbase_outputs)

    # Only the addresses active today changed: only they are rescored. Every earlier time
    # in the state is before the day, so the active ones are those last seen on the day
    # (a filter on the state just written: no join).
    active = features_from_state(state.where(active_on(ds)))
    training = training_set(state, labels, args.negatives_per_positive, args.seed)

    n_active = write_table(
        spark, active, datasets.features_dir(where, "address_features", ds), ["address"], state_files(day_flows)
    )
    n_blocks = write_table(spark, block_pools, datasets.features_dir(where, "block_pools", ds), ["block_number"])
    n_attributed = block_pools.where("pool_id IS NOT NULL").count()
    n_labels = write_table(spark, labels, datasets.features_dir(where, "address_labels", ds), ["address"])
    n_training = write_table(spark, training, datasets.features_dir(where, "training_features", ds), ["address"])
    unaddressed = count_unaddressed(outputs, inputs)
    block_pools.unpersist()
    return (
        f"build_features {ds}: {n_active} active addresses featured of {n_state} in the state "
        f"({unaddressed} flows without an address left out); {n_attributed} of {n_blocks} blocks "
        f"attributed to a pool; {n_labels} pool addresses labelled; training set {n_training} rows"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"build_features {args.ds}").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        print(run(spark, args))
    except StateOrderError as exc:
        print(f"StateOrderError: {exc}", file=sys.stderr)
        return DATA_ERROR_EXIT_CODE
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
