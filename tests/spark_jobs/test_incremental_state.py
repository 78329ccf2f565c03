"""The daily state: built day by day it equals a full recomputation; a re-run of an earlier
day then the following days gives the same state; a gap is refused with what to run; only
the day's active addresses are featured; coinbase receipts never reach the features."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from pool_classifier import datasets
from pool_classifier.datasets import POOLS_FILE
from pool_classifier.io import atomic, warehouse
from pool_classifier.steps import build_features, extract_day
from pool_classifier.targets import current_target
from spark_jobs import build_features as job
from tools import synthetic_chain
from tools.run_summary import folder_checksum

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]


@pytest.fixture(scope="module")
def chain_target(tmp_path_factory):
    """Three generated days, loaded and extracted into a module-wide bucket."""
    root = tmp_path_factory.mktemp("incremental")
    synthetic_chain.generate(root / "chain", dt.date.fromisoformat(DAYS[0]), days=3, tx_per_day=1500, seed=11)
    target = dataclasses.replace(
        current_target(), bucket=str(root / "bucket"), warehouse=str(root / "wh.duckdb")
    )
    warehouse.load_exports(root / "chain", target.warehouse)
    for ds in DAYS:
        extract_day.extract_day(target, ds)
    return target


def run_day(spark, target, ds, **settings):
    argv = build_features.job_args(target, ds, str(POOLS_FILE), dataclasses.replace(build_features.SETTINGS, **settings))
    return job.run(spark, job.parse_args(argv))


def flows_of(spark, target, days):
    outputs = spark.read.parquet(*[f for d in days for f in atomic.data_files(datasets.extract_dir(target, "outputs", d))])
    inputs = spark.read.parquet(*[f for d in days for f in atomic.data_files(datasets.extract_dir(target, "inputs", d))])
    return outputs, inputs


def rows_by_address(df):
    return {r["address"]: r.asDict() for r in df.collect()}


def test_day_by_day_state_equals_full_recomputation(spark, chain_target):
    state = job.empty_state(spark)
    for ds in DAYS:
        outputs, inputs = flows_of(spark, chain_target, [ds])
        state = job.merge_state(state, job.day_partials(job.ordinary_flows(outputs, inputs)))
        state = spark.createDataFrame(state.collect(), state.schema)  # cut the lineage, as on disk
    incremental = rows_by_address(job.features_from_state(state))
    full = rows_by_address(job.address_features(job.ordinary_flows(*flows_of(spark, chain_target, DAYS))))
    assert len(full) > 1000
    assert incremental == full  # every column exactly: integers, decimals and doubles
    multi_day = [a for a, r in full.items() if r["mean_output_idle_time"] > 86400]
    assert multi_day, "some addresses must receive on several days for the gap merge to be tested"


def test_pipeline_days_rerun_and_order(spark, chain_target):
    for ds in DAYS:
        run_day(spark, chain_target, ds)
    state_dir = Path(datasets.state_dir(chain_target, "address_state", DAYS[2]))
    clean = folder_checksum(state_dir)

    # Only the addresses active on the day are featured (and so rescored).
    active = spark.read.parquet(*atomic.data_files(datasets.features_dir(chain_target, "address_features", DAYS[2])))
    outputs, inputs = flows_of(spark, chain_target, [DAYS[2]])
    day_addresses = job.ordinary_flows(outputs, inputs).select("address").distinct()
    assert active.count() == day_addresses.count()
    assert active.join(day_addresses, "address", "left_anti").count() == 0
    assert spark.read.parquet(*atomic.data_files(state_dir)).count() > active.count()

    # Re-running an earlier day drops the later states; re-running them restores the same state.
    message = run_day(spark, chain_target, DAYS[1])
    assert not atomic.exists(state_dir)
    run_day(spark, chain_target, DAYS[2])
    assert folder_checksum(state_dir) == clean

    # A gap in the history is refused, naming the days to run.
    import shutil

    shutil.rmtree(datasets.state_dir(chain_target, "address_state", DAYS[1]))
    with pytest.raises(job.StateOrderError, match=r"no state for 2024-03-02.*run the days from 2024-03-02 to 2024-03-02"):
        run_day(spark, chain_target, DAYS[2])
    assert "training set" in message


def test_training_set_is_seeded_and_samples_negatives(spark, chain_target):
    run_day(spark, chain_target, DAYS[0], negatives_per_positive=3, min_coinbase_outputs=5)
    path = datasets.features_dir(chain_target, "training_features", DAYS[0])
    first = rows_by_address(spark.read.parquet(*atomic.data_files(path)))
    positives = sum(r["label"] for r in first.values())
    negatives = len(first) - positives
    assert positives >= 10
    assert 1.5 * positives < negatives < 4.5 * positives
    run_day(spark, chain_target, DAYS[0], negatives_per_positive=3, min_coinbase_outputs=5)
    assert rows_by_address(spark.read.parquet(*atomic.data_files(path))) == first
    # Not the first addresses in order: the sample spreads over the whole address range.
    all_active = sorted(rows_by_address(spark.read.parquet(
        *atomic.data_files(datasets.features_dir(chain_target, "address_features", DAYS[0])))))
    sampled = sorted(a for a, r in first.items() if r["label"] == 0)
    assert sampled != all_active[: len(sampled)]


def test_removing_coinbase_receipts_leaves_training_features_unchanged(spark, chain_target):
    outputs, inputs = flows_of(spark, chain_target, DAYS)
    paid = outputs.where("is_coinbase").groupBy("address").count().where("count >= 5")
    spenders = job.ordinary_flows(outputs, inputs).select("address").distinct()
    miners = [r["address"] for r in paid.join(spenders, "address").limit(20).collect()]
    assert miners, "the generated chain must have miners that also transact"
    without = outputs.where(~(F.col("is_coinbase") & F.col("address").isin(miners)))
    with_receipts = rows_by_address(
        job.address_features(job.ordinary_flows(outputs, inputs)).where(F.col("address").isin(miners))
    )
    without_receipts = rows_by_address(
        job.address_features(job.ordinary_flows(without, inputs)).where(F.col("address").isin(miners))
    )
    assert with_receipts == without_receipts and len(with_receipts) == len(miners)
