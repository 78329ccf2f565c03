"""The daily state: built day by day it equals a full recomputation; a re-run of an earlier
day then the following days gives the same state; a gap is refused with what to run; only
the day's active addresses are featured; coinbase receipts never reach the features."""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
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


@pytest.fixture(scope="module")
def daily(spark, chain_target, tmp_path_factory):
    """The three days built in order with the default settings (three deltas: no compaction
    yet), in a bucket of their own. Read it; to change it, take a `copy_of` it."""
    target = copy_of(chain_target, tmp_path_factory.mktemp("daily"), extracts_only=True)
    for ds in DAYS:
        run_day(spark, target, ds)
    return target


def copy_of(target, folder: Path, extracts_only: bool = False):
    """The target on a copy of its bucket (or of its extracts only: a bucket before any run)."""
    copy = dataclasses.replace(target, bucket=str(folder / "bucket"))
    if extracts_only:
        shutil.copytree(Path(target.bucket) / "extracts", folder / "bucket" / "extracts")
    else:
        shutil.copytree(target.bucket, folder / "bucket")
    return copy


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


def test_pipeline_days_rerun_and_order(spark, daily, tmp_path):
    chain_target = copy_of(daily, tmp_path)  # the three days, run in order
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


def state_rows(spark, target, ds):
    """The state after `ds` as one row per address (its layers resolved), and its manifest."""
    layers, n_layers, meta = job.state_layers(spark, target, ds)
    return rows_by_address(job.compact(layers)), n_layers, meta


def day_outputs(spark, target, ds):
    """Every output of the day that a run writes, as rows by address per dataset."""
    return {
        name: rows_by_address(spark.read.parquet(*atomic.data_files(datasets.features_dir(target, name, ds))))
        for name in ("address_features", "training_features", "address_labels")
    }


def test_compaction_changes_no_feature_and_retention_keeps_rerunnable_days(spark, daily, tmp_path):
    assert build_features.SETTINGS.compact_every_days > len(DAYS)
    layered, n_layered, meta = state_rows(spark, daily, DAYS[2])
    assert (n_layered, meta["base"], meta["deltas"]) == (3, None, DAYS)  # three deltas, no base
    uncompacted = day_outputs(spark, daily, DAYS[2])
    assert len(layered) == meta["addresses"] and meta["history_from"] == DAYS[0]

    compacted_target = copy_of(daily, tmp_path, extracts_only=True)
    for ds in DAYS:  # every day compacts: day 3's compaction removes what only day 1 needed
        message = run_day(spark, compacted_target, ds, compact_every_days=1)
        assert "the state compacted into a base" in message
    compacted, n_compacted, meta = state_rows(spark, compacted_target, DAYS[2])
    assert (n_compacted, meta["base"], meta["deltas"]) == (1, DAYS[2], [])
    assert compacted == layered
    assert day_outputs(spark, compacted_target, DAYS[2]) == uncompacted

    # Retention: the states from the base before the last one (day 2) on are kept.
    def kept(folder, days):
        return [d for d in days if atomic.exists(folder(compacted_target, d))]

    assert kept(lambda t, d: datasets.state_dir(t, "address_state", d), DAYS) == DAYS[1:]
    assert kept(lambda t, d: datasets.state_dir(t, "coinbase_receipts", d), DAYS) == DAYS[1:]
    assert kept(datasets.state_base_dir, DAYS) == DAYS[1:]
    assert kept(datasets.state_delta_dir, DAYS) == DAYS[2:]
    # Day 3 can still be re-run (on day 2's base); day 2 cannot, and says to bootstrap.
    run_day(spark, compacted_target, DAYS[2], compact_every_days=1)
    assert state_rows(spark, compacted_target, DAYS[2])[0] == layered
    with pytest.raises(job.StateOrderError, match=rf"the history starts on {DAYS[0]}.*steps.bootstrap_state --ds {DAYS[0]}"):
        run_day(spark, compacted_target, DAYS[1], compact_every_days=1)
    assert state_rows(spark, compacted_target, DAYS[2])[0] == layered  # the refusal changed nothing


def test_bootstrap_then_daily_equals_daily_from_the_start(spark, daily, tmp_path):
    daily_state, _, daily_meta = state_rows(spark, daily, DAYS[2])
    daily_outputs = day_outputs(spark, daily, DAYS[2])

    boot = copy_of(daily, tmp_path, extracts_only=True)
    argv = build_features.job_args(boot, DAYS[1], str(POOLS_FILE), build_features.SETTINGS)
    message = job.run(spark, job.parse_args([*argv, "--bootstrap"]))
    assert message.startswith(f"bootstrap_state {DAYS[1]}: ") and f"2 days ({DAYS[0]} … {DAYS[1]})" in message
    _, n_layers, meta = state_rows(spark, boot, DAYS[1])
    assert (n_layers, meta["base"], meta["deltas"]) == (1, DAYS[1], [])

    run_day(spark, boot, DAYS[2])  # the daily run continues from the bootstrapped state
    boot_state, _, boot_meta = state_rows(spark, boot, DAYS[2])
    assert len(daily_state) > 1000
    assert boot_state == daily_state and boot_meta["addresses"] == daily_meta["addresses"]
    assert day_outputs(spark, boot, DAYS[2]) == daily_outputs
    receipts = [rows_by_address(spark.read.parquet(*atomic.data_files(
        datasets.state_dir(t, "coinbase_receipts", DAYS[2])))) for t in (daily, boot)]
    assert receipts[0] == receipts[1] and receipts[0]


def test_bootstrap_refuses_a_gap_in_the_history(spark, chain_target, tmp_path):
    gap = copy_of(chain_target, tmp_path, extracts_only=True)
    shutil.rmtree(datasets.extract_dir(gap, "blocks", DAYS[1]))
    argv = build_features.job_args(gap, DAYS[2], str(POOLS_FILE), build_features.SETTINGS)
    with pytest.raises(job.HistoryError, match=rf"from {DAYS[0]} to {DAYS[2]} lacks the extracts of {DAYS[1]}"):
        job.run(spark, job.parse_args([*argv, "--bootstrap"]))
    assert not atomic.exists(datasets.state_dir(gap, "address_state", DAYS[2]))
