"""The hourly table attributes every block as the daily features job does: the same generated
day through both paths — `merge_pool_activity` over the warehouse, hour by hour, and the daily
Spark job's `attribute_blocks` over the day's extract (the `block_pools` it publishes) — gives
each block the same pool and the same `matched_by`, with the same pools list's sha256."""
from __future__ import annotations

import dataclasses
import datetime as dt

from pool_classifier import attribution, datasets
from pool_classifier.io import versioned
from pool_classifier.io.warehouse import load_exports
from pool_classifier.steps import extract_day
from pool_classifier.steps import merge_pool_activity as merge
from pool_classifier.targets import local
from spark_jobs import build_features
from tools import synthetic_chain

DAY = "2024-03-01"


def test_every_block_of_a_day_gets_the_daily_jobs_pool(tmp_path, spark):
    synthetic_chain.generate(tmp_path / "chain", dt.date.fromisoformat(DAY), days=1, tx_per_day=600, seed=23)
    load_exports(tmp_path / "chain", tmp_path / "warehouse.duckdb")
    target = dataclasses.replace(local.target(), bucket=str(tmp_path / "bucket"), warehouse=str(tmp_path / "warehouse.duckdb"))
    pools = attribution.PoolsList.load(datasets.POOLS_FILE)

    # the hourly path: every hour of the day, in runs of 3 h
    for hour in range(2, 24, 3):
        merge.merge_pool_activity(target, f"{DAY}T{hour:02d}", pools=pools)
    fs = versioned.LocalFS()
    hourly = {}
    for h in range(24):
        location = datasets.activity_hour_dir(target, "block_pools_hourly", f"{DAY}T{h:02d}")
        assert versioned.read_pointer(fs, location)["meta"]["pools_sha256"] == pools.sha256
        for path in versioned.data_files(fs, location):
            for row in merge.read_parquet_rows(fs, path):
                hourly[row["block_hash"]] = (row["block_number"], row["pool_id"], row["matched_by"])

    # the daily path: the day's extract, and the features job's attribution of it
    extract_day.extract_table(target, DAY, "blocks")
    extract_day.extract_table(target, DAY, "outputs")
    blocks = spark.read.parquet(*versioned.data_files(fs, datasets.extract_dir(target, "blocks", DAY)))
    outputs = spark.read.parquet(*versioned.data_files(fs, datasets.extract_dir(target, "outputs", DAY)))
    coinbase_outputs = outputs.where("is_coinbase").select("block_hash", "address")
    daily_rows = build_features.attribute_blocks(blocks, coinbase_outputs, pools).collect()
    daily = {r["block_hash"]: (r["block_number"], merge.UNKNOWN_POOL_ID if r["pool_id"] is None else r["pool_id"],
                               r["matched_by"]) for r in daily_rows}
    assert {r["pools_sha256"] for r in daily_rows} == {pools.sha256}

    assert len(daily) == len(hourly) > 100
    assert hourly == daily
    # the day exercises every way of matching, so the comparison means something
    assert {m for _, _, m in hourly.values()} == {"tag", "address", "none"}
