"""build_features: per-address features, per-block pool attribution and pool labels.

Reads the extracted days (`extracts/{blocks,outputs,inputs}/dt=…`) up to the logical
date and writes three Parquet folders for that date:

* `address_features` — one row per address seen in ordinary transactions, with the
  columns of `pool_classifier.feature_spec.FEATURE_COLUMNS`;
* `block_pools` — each block of the day with the pool that mined it (matched by coinbase
  tag, else by payout address, else `none`);
* `address_labels` — pool addresses: paid by at least N coinbase outputs of attributed
  blocks, plus the pools' known payout addresses.

The transforms are pure functions of DataFrames; `main` does the I/O. Run with
`spark-submit build_features.py --help` (local mode or Dataproc Serverless alike).
"""
from __future__ import annotations

import argparse
import string
import sys
import uuid

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pool_classifier.feature_spec import FEATURE_COLUMNS, SIDES

SECONDS_PER_DAY = 86400
SATOSHI_SUM = "decimal(38,0)"


# ---------------------------------------------------------------- features


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


def side_features(flows: DataFrame, side: str) -> DataFrame:
    """Features of one side (output = received, input = spent) per address."""
    f = flows.where(F.col("side") == side)
    month_seconds = F.unix_date("block_timestamp_month").cast("long") * SECONDS_PER_DAY
    agg = f.groupBy("address").agg(
        F.min(month_seconds).alias(f"{side}_month_min"),
        F.max(month_seconds).alias(f"{side}_month_max"),
        F.countDistinct("block_timestamp_month").alias(f"{side}_active_months"),
        F.count(F.lit(1)).alias(f"total_tx_{side}_count"),
        F.sum(F.col("value").cast(SATOSHI_SUM)).cast(SATOSHI_SUM).alias(f"total_tx_{side}_value"),
        F.stddev_samp(F.col("value").cast("double")).alias(f"stddev_tx_{side}_value"),
        F.countDistinct("transaction_hash").alias(f"total_{side}_tx"),
    )
    total = F.col(f"total_tx_{side}_value").cast("double")
    count = F.col(f"total_tx_{side}_count").cast("double")
    months = F.col(f"{side}_active_months").cast("double")
    agg = (
        agg.withColumn(f"{side}_active_time", F.col(f"{side}_month_max") - F.col(f"{side}_month_min"))
        .withColumn(f"mean_tx_{side}_value", total / count)
        .withColumn(f"mean_monthly_{side}_value", total / months)
        .withColumn(f"mean_monthly_{side}_count", count / months)
    )
    return agg.join(idle_times(f, side), "address", "left")


def idle_times(side_flows: DataFrame, side: str) -> DataFrame:
    """Mean and sample stddev of gaps between consecutive distinct block times, per address."""
    seconds = F.unix_seconds("block_timestamp")
    times = side_flows.select("address", seconds.alias("t")).distinct()
    previous = F.lag("t").over(Window.partitionBy("address").orderBy("t"))
    gaps = times.withColumn("gap", (F.col("t") - previous).cast("double")).where(
        F.col("gap").isNotNull()
    )
    return gaps.groupBy("address").agg(
        F.avg("gap").alias(f"mean_{side}_idle_time"),
        F.stddev_samp("gap").alias(f"stddev_{side}_idle_time"),
    )


def address_features(flows: DataFrame) -> DataFrame:
    """All features per address, in `FEATURE_COLUMNS` order (undefined → 0, see feature_spec)."""
    received = side_features(flows, "output").withColumn("has_received", F.lit(1))
    spent = side_features(flows, "input").withColumn("has_spent", F.lit(1))
    both = received.join(spent, "address", "full_outer")
    lag_max = F.col("output_month_max") - F.col("input_month_max")
    lag_min = F.col("output_month_min") - F.col("input_month_min")
    both = both.withColumn("io_max_lag", lag_max).withColumn("io_min_lag", lag_min)
    columns = [F.col("address")]
    for name in FEATURE_COLUMNS:
        value = F.col(name)
        if name.startswith("total_tx_") and name.endswith("_value"):
            value = F.coalesce(value, F.lit(0).cast(SATOSHI_SUM))
        else:
            value = F.coalesce(value, F.lit(0))
        columns.append(value.alias(name))
    return both.select(*columns)


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


def address_labels(
    block_pools: DataFrame, coinbase_outputs: DataFrame, pools: DataFrame, min_coinbase_outputs: int
) -> DataFrame:
    """Pool addresses: paid by ≥ N coinbase outputs of attributed blocks, or a known payout address.

    An address paid by several pools is labelled with the pool that paid it most often.
    """
    attributed = block_pools.where(F.col("pool_id").isNotNull()).select(
        "block_number", "pool_id", "pool_name"
    )
    paid = (
        coinbase_outputs.join(attributed, "block_number")
        .groupBy("address", "pool_id", "pool_name")
        .agg(F.count(F.lit(1)).alias("coinbase_outputs"))
    )
    top = paid.withColumn(
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
        .join(paid.groupBy("address").agg(F.sum("coinbase_outputs").alias("n")), "address", "left")
        .select(
            "address",
            "pool_id",
            "pool_name",
            F.coalesce("n", F.lit(0)).alias("coinbase_outputs"),
            F.lit("pool_list").alias("label_source"),
        )
    )
    return by_coinbase.unionByName(known)


# ---------------------------------------------------------------- I/O


def read_days(spark: SparkSession, root: str, ds: str, *, only_ds: bool = False) -> DataFrame:
    """All extracted days ≤ ds of one extract table (partition-pruned on `dt`)."""
    df = spark.read.option("basePath", root).parquet(root)
    day = F.lit(ds).cast("date")
    return df.where(F.col("dt") == day if only_ds else F.col("dt") <= day).drop("dt")


def publish(spark: SparkSession, df: DataFrame, final: str, sort_by: list[str]) -> int:
    """Write `df` beside `final`, then swap it into place (never a half-written folder).

    One sorted file named part-00000.parquet, so a re-run gives byte-identical output.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    Path = jvm.org.apache.hadoop.fs.Path
    final_path = Path(final)
    fs = final_path.getFileSystem(conf)
    fs.setWriteChecksum(False)  # no .crc side files on a local disk (a no-op on GCS)
    parent = final_path.getParent()
    tmp = Path(parent, f".{final_path.getName()}.tmp-{uuid.uuid4().hex[:12]}")
    df.repartition(1).sortWithinPartitions(*sort_by).write.parquet(tmp.toString())
    for status in fs.listStatus(tmp):
        if status.getPath().getName().startswith("part-"):
            fs.rename(status.getPath(), Path(tmp, "part-00000.parquet"))
    for status in fs.listStatus(tmp):  # _SUCCESS and checksum files are not data
        if status.getPath().getName() != "part-00000.parquet":
            fs.delete(status.getPath(), False)
    old = None
    if fs.exists(final_path):
        old = Path(parent, f".{final_path.getName()}.old-{uuid.uuid4().hex[:12]}")
        fs.rename(final_path, old)
    fs.rename(tmp, final_path)
    if old is not None:
        fs.delete(old, True)
    return spark.read.parquet(final).count()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build per-address features and pool labels.")
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD (UTC)")
    parser.add_argument("--extracts", required=True, help="root of extracts/ (blocks, outputs, inputs)")
    parser.add_argument("--pools", required=True, help="pools-v2.json (known pools, tags, addresses)")
    parser.add_argument("--features-out", required=True)
    parser.add_argument("--block-pools-out", required=True)
    parser.add_argument("--labels-out", required=True)
    parser.add_argument("--min-coinbase-outputs", type=int, default=20)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"build_features {args.ds}").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    root = args.extracts.rstrip("/")
    outputs = read_days(spark, f"{root}/outputs", args.ds)
    inputs = read_days(spark, f"{root}/inputs", args.ds)
    blocks = read_days(spark, f"{root}/blocks", args.ds)
    pools = spark.read.option("multiLine", True).json(args.pools)

    coinbase_outputs = outputs.where("is_coinbase").select("block_number", "address")
    block_pools = attribute_blocks(blocks, coinbase_outputs, pools).cache()
    labels = address_labels(block_pools, coinbase_outputs, pools, args.min_coinbase_outputs)
    features = address_features(ordinary_flows(outputs, inputs))
    day_blocks = block_pools.where(F.to_date("block_timestamp") == F.lit(args.ds).cast("date"))

    unaddressed = count_unaddressed(outputs, inputs)
    n_features = publish(spark, features, args.features_out, ["address"])
    n_blocks = publish(spark, day_blocks, args.block_pools_out, ["block_number"])
    n_attributed = spark.read.parquet(args.block_pools_out).where("pool_id IS NOT NULL").count()
    n_labels = publish(spark, labels, args.labels_out, ["address"])
    print(
        f"build_features {args.ds}: {n_features} addresses featured "
        f"({unaddressed} flows without an address left out), {n_attributed} of {n_blocks} "
        "blocks attributed to a pool, "
        f"{n_labels} pool addresses labelled"
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
