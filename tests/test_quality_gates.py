"""The quality gates on one real generated day (extract, Spark features, model, scores), then
on copies of its files with one defect each: every defect fails the check that names it, with
the expected and the observed numbers, and the figures are kept whether it passes or fails."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pool_classifier import datasets, targets
from pool_classifier.steps import extract_day as extract
from pool_classifier.steps import build_features as features
from pool_classifier.steps import quality_gates
from pool_classifier.steps import score_addresses as score
from tools import synthetic_chain
from pool_classifier.steps import train_model as train
from pool_classifier.io import warehouse
from pool_classifier.steps.quality_gates import MAX_MONEY_SATOSHI, QualityGateError

DAY0, DAY1, DAY2 = "2024-02-29", "2024-03-01", "2024-03-02"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> targets.Target:
    """Two generated days loaded and extracted; day 1 featured, trained and scored."""
    root = tmp_path_factory.mktemp("gates")
    target = dataclasses.replace(
        targets.TARGETS["local"](), bucket=str(root / "bucket"), warehouse=str(root / "warehouse.duckdb")
    )
    synthetic_chain.generate(root / "chain", dt.date.fromisoformat(DAY1), days=2, tx_per_day=1500, seed=3)
    warehouse.load_exports(root / "chain", target.warehouse)
    extract.extract_day(target, DAY1)
    extract.extract_day(target, DAY2)
    features.build_features(target, DAY1)
    model = train.train_model(target, DAY1)
    score.score_addresses(target, DAY1, model["version"])
    return target


@pytest.fixture
def target(built, tmp_path) -> targets.Target:
    """A private copy of the built bucket, free to damage."""
    shutil.copytree(built.bucket, tmp_path / "bucket")
    return dataclasses.replace(built, bucket=str(tmp_path / "bucket"))


def edit(folder: str, change) -> None:
    """Rewrite the Parquet file of a day's folder through `change(DataFrame) -> DataFrame`
    (same column types; every column may now hold nulls, and pandas' NaN becomes null)."""
    (file,) = sorted(Path(folder).glob("*.parquet"))
    table = pq.read_table(file)
    frame = change(table.to_pandas())
    schema = pa.schema([table.schema.field(c).with_nullable(True) for c in frame.columns])
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), file)


def put_nan(folder: str, column: str, row: int) -> None:
    """Write a real NaN (not a null) into one double of a day's Parquet file."""
    (file,) = sorted(Path(folder).glob("*.parquet"))
    table = pq.read_table(file)
    values = table.column(column).to_numpy().copy()
    values[row] = np.nan
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, table.schema.field(column), pa.array(values)), file)


def failed_checks(error: QualityGateError) -> dict[str, str]:
    """check name -> its line in the error message."""
    lines = [line.strip()[2:] for line in str(error).splitlines() if line.strip().startswith("- ")]
    return {line.split(":")[0]: line for line in lines}


def gate_fails(check, target, ds) -> dict[str, str]:
    with pytest.raises(QualityGateError) as info:
        check(target, ds)
    record = quality_gates.read_figures(target, check.__name__.replace("check_", ""), ds)
    assert record["passed"] is False
    assert {c["name"] for c in record["checks"] if not c["passed"]} == set(failed_checks(info.value))
    assert quality_gates.figures_path(target, check.__name__.replace("check_", ""), ds) in str(info.value)
    return failed_checks(info.value)


# ---------------------------------------------------------------- extract


def test_the_extract_gate_passes_a_real_day_and_keeps_its_figures(target):
    record = quality_gates.check_extract(target, DAY2)
    assert record["passed"] and all(c["passed"] for c in record["checks"])
    kept = json.loads(Path(quality_gates.figures_path(target, "extract", DAY2)).read_text())
    assert kept == json.loads(json.dumps(record, default=str))
    figures = kept["figures"]
    blocks = pd.read_parquet(datasets.extract_dir(target, "blocks", DAY2))
    outputs = pd.read_parquet(datasets.extract_dir(target, "outputs", DAY2))
    assert figures["blocks"] == len(blocks)
    assert figures["transactions_expected"] == blocks["transaction_count"].sum()
    assert figures["transactions_observed"] == outputs["transaction_hash"].nunique()
    assert figures["previous_day_last_block"] == figures["first_block"] - 1
    assert kept["settings"]["midnight_window_seconds"]["reason"]


def _drop_block(target, ds: str, position: int) -> int:
    """Remove one block and its transactions from a day's extract; returns its number."""
    blocks = pd.read_parquet(datasets.extract_dir(target, "blocks", ds)).sort_values("block_number")
    number = int(blocks["block_number"].iloc[position])
    for table in datasets.EXTRACT_TABLES:
        edit(datasets.extract_dir(target, table, ds), lambda df: df[df["block_number"] != number])
    return number


def test_a_block_missing_in_the_middle_of_the_day_fails_contiguity(target):
    number = _drop_block(target, DAY1, 40)
    failed = gate_fails(quality_gates.check_extract, target, DAY1)
    assert list(failed) == ["block_numbers_contiguous"]
    assert f"observed 1 (blocks" in failed["block_numbers_contiguous"]
    assert f"missing: {number}..{number}" in failed["block_numbers_contiguous"]


def test_a_gap_next_to_midnight_is_timestamp_disorder_not_a_loss(target):
    """A block stamped just after midnight belongs to the next day; its neighbours, stamped
    just before, stay: the gap is accepted and counted."""
    blocks = pd.read_parquet(datasets.extract_dir(target, "blocks", DAY1)).sort_values("block_number")
    number = _drop_block(target, DAY1, len(blocks) - 2)
    late = pd.Timestamp(f"{DAY1} 23:58:00", tz="UTC")

    def stamp(df):
        df = df.copy()
        near = df["block_number"].isin([number - 1, number + 1])
        df.loc[near, "block_timestamp"] = late
        return df

    edit(datasets.extract_dir(target, "blocks", DAY1), stamp)
    record = quality_gates.check_extract(target, DAY1)
    assert record["figures"]["missing_block_numbers"] == 1
    assert record["figures"]["missing_block_numbers_unexplained"] == 0


def test_a_lost_transaction_fails_the_transaction_count(target):
    outputs = pd.read_parquet(datasets.extract_dir(target, "outputs", DAY1))
    lost = outputs.loc[~outputs["is_coinbase"], "transaction_hash"].iloc[0]
    expected = outputs["transaction_hash"].nunique()
    for table in ("outputs", "inputs"):
        edit(datasets.extract_dir(target, table, DAY1), lambda df: df[df["transaction_hash"] != lost])
    failed = gate_fails(quality_gates.check_extract, target, DAY1)
    assert failed == {"transaction_count": (
        f"transaction_count: expected {expected} transactions (sum of blocks.transaction_count), "
        f"observed {expected - 1} (1 blocks whose outputs show another number of transactions)"
    )}


def test_duplicated_rows_and_a_hash_in_two_blocks_fail(target):
    edit(datasets.extract_dir(target, "outputs", DAY1), lambda df: pd.concat([df, df.iloc[[5]]]))
    failed = gate_fails(quality_gates.check_extract, target, DAY1)
    assert set(failed) == {"output_rows_unique"}

    def same_hash_in_two_blocks(df, hash_value):
        df = df.copy()
        first, other = df["block_number"].min(), df["block_number"].max()
        for block in (first, other):
            tx = df.loc[df["block_number"] == block, "transaction_hash"].iloc[-1]
            df.loc[df["transaction_hash"] == tx, "transaction_hash"] = hash_value
        return df

    for table in ("outputs", "inputs"):
        edit(datasets.extract_dir(target, table, DAY2), lambda df: same_hash_in_two_blocks(df, "ab" * 32))
    assert set(gate_fails(quality_gates.check_extract, target, DAY2)) == {"transaction_hashes_unique"}


def test_the_two_bip30_transactions_may_appear_in_two_blocks(target):
    bip30 = quality_gates.SETTINGS.known_duplicate_transactions[0]

    def same_hash_in_two_blocks(df):
        df = df.copy()
        for block in (df["block_number"].min(), df["block_number"].max()):
            tx = df.loc[df["block_number"] == block, "transaction_hash"].iloc[-1]
            df.loc[df["transaction_hash"] == tx, "transaction_hash"] = bip30
        return df

    for table in ("outputs", "inputs"):
        edit(datasets.extract_dir(target, table, DAY2), same_hash_in_two_blocks)
    assert quality_gates.check_extract(target, DAY2)["passed"]


def test_impossible_values_fail(target):
    def damage(df):
        df = df.copy()
        df.loc[df.index[3], "value"] = -5
        df.loc[df.index[4], "value"] = MAX_MONEY_SATOSHI + 1
        return df

    edit(datasets.extract_dir(target, "outputs", DAY1), damage)
    failed = gate_fails(quality_gates.check_extract, target, DAY1)
    assert failed == {"output_values_valid": (
        f"output_values_valid: expected 0 output values null, negative or > {MAX_MONEY_SATOSHI} satoshi, "
        "observed 2 (null 0, negative 1, above the money supply 1)"
    )}


def test_blocks_missing_between_two_days_fail(target):
    _drop_block(target, DAY2, 0)
    failed = gate_fails(quality_gates.check_extract, target, DAY2)
    assert set(failed) == {"follows_previous_day"}
    assert "expected 0 blocks missing since the day before, observed 1" in failed["follows_previous_day"]


def test_a_day_with_no_extract_is_named(target):
    shutil.rmtree(datasets.extract_dir(target, "inputs", DAY1))
    with pytest.raises(QualityGateError, match=r"no Parquet files in .*extracts/inputs/dt=2024-03-01"):
        quality_gates.check_extract(target, DAY1)


# ---------------------------------------------------------------- features


def test_the_features_gate_passes_a_real_day_with_figures_per_feature(target):
    record = quality_gates.check_features(target, DAY1)
    assert record["passed"]
    per_feature = record["figures"]["features"]
    assert set(per_feature) == set(features_columns())
    frame = pd.read_parquet(datasets.features_dir(target, "address_features", DAY1))
    assert record["figures"]["rows"] == len(frame)
    for name, f in per_feature.items():
        assert f["null_rate"] == 0.0
        assert f["min"] == pytest.approx(float(frame[name].astype("float64").min()))
        assert f["max"] == pytest.approx(float(frame[name].astype("float64").max()))


def features_columns():
    from pool_classifier.model.feature_spec import FEATURE_COLUMNS

    return FEATURE_COLUMNS


@pytest.mark.parametrize("column,value,check", [
    ("mean_tx_output_value", None, "null_rate[mean_tx_output_value]"),
    ("total_tx_output_count", -1, "range[total_tx_output_count]"),
    ("has_spent", 2, "range[has_spent]"),
    ("output_month_min", 1_000_000_000, "range[output_month_min]"),   # 2001: before the genesis block
    ("stddev_tx_input_value", float("nan"), "range[stddev_tx_input_value]"),
    ("mean_tx_output_value", float(MAX_MONEY_SATOSHI) * 2, "range[mean_tx_output_value]"),
])
def test_a_bad_feature_value_fails_its_check(target, column, value, check):
    def damage(df):
        df = df.copy()
        if value is None:
            df[column] = df[column].astype("object")
        df.loc[df.index[7], column] = value
        return df

    folder = datasets.features_dir(target, "address_features", DAY1)
    if isinstance(value, float) and np.isnan(value):
        put_nan(folder, column, 7)
    else:
        edit(folder, damage)
    failed = gate_fails(quality_gates.check_features, target, DAY1)
    assert check in failed, failed
    if value is None:
        rows = quality_gates.read_figures(target, "features", DAY1)["figures"]["rows"]
        assert failed[check] == f"{check}: expected <= 0.0, observed {round(1 / rows, 6)} (1 of {rows} rows)"
    else:
        assert f"{check}: expected 0 values outside" in failed[check] and "observed 1" in failed[check]


def test_a_missing_feature_column_and_a_doubled_address_fail(target):
    edit(datasets.features_dir(target, "address_features", DAY1),
         lambda df: pd.concat([df, df.iloc[[0]]]).drop(columns=["io_max_lag"]))
    with pytest.raises(QualityGateError) as info:
        quality_gates.check_features(target, DAY1)
    failed = failed_checks(info.value)
    assert failed["feature_columns"] == (
        f"feature_columns: expected all {len(features_columns())} feature columns, observed missing ['io_max_lag']"
    )
    assert "addresses_unique" in failed


def test_flags_that_contradict_the_counts_fail(target):
    def damage(df):
        df = df.copy()
        spender = df.index[df["has_spent"] == 1][0]
        df.loc[spender, "has_spent"] = 0
        return df

    edit(datasets.features_dir(target, "address_features", DAY1), damage)
    assert set(gate_fails(quality_gates.check_features, target, DAY1)) == {"side_flags_consistent"}


# ---------------------------------------------------------------- scores


def _previous_day_like(target) -> None:
    """Day 0's predictions: a copy of day 1's (the same distribution)."""
    shutil.copytree(datasets.predictions_dir(target, DAY1), datasets.predictions_dir(target, DAY0))


def test_the_scores_gate_takes_the_first_day_as_baseline_then_compares(target):
    first = quality_gates.check_scores(target, DAY1)
    assert first["passed"] and first["figures"]["previous_day"] is None
    _previous_day_like(target)
    second = quality_gates.check_scores(target, DAY1)
    assert second["passed"]
    assert second["figures"]["psi"] == pytest.approx(0.0)
    assert second["figures"]["previous_day"]["histogram"] == second["figures"]["histogram"]
    predictions = pd.read_parquet(datasets.predictions_dir(target, DAY1))
    assert sum(second["figures"]["histogram"]) == len(predictions)
    assert second["figures"]["predicted_pools"] == int(predictions["label"].sum())


def test_a_shifted_score_distribution_fails_against_the_day_before(target):
    _previous_day_like(target)

    def shift(df):
        df = df.copy()
        rng = np.random.default_rng(0)
        half = rng.random(len(df)) < 0.5
        df.loc[half, "score"] = 0.95
        df.loc[half, "label"] = True
        return df

    edit(datasets.predictions_dir(target, DAY1), shift)
    failed = gate_fails(quality_gates.check_scores, target, DAY1)
    assert set(failed) == {"score_psi", "predicted_pool_share"}
    assert failed["score_psi"].startswith("score_psi: expected <= 0.25, observed ")
    assert float(failed["score_psi"].split("observed ")[1].split(" ")[0]) > 1


def test_invalid_or_missing_scores_fail(target):
    def damage(df):
        df = df.iloc[1:].copy()          # one featured address left unscored
        df.loc[df.index[0], "score"] = 1.5
        df.loc[df.index[1], "score"] = np.nan
        return df

    edit(datasets.predictions_dir(target, DAY1), damage)
    failed = gate_fails(quality_gates.check_scores, target, DAY1)
    assert set(failed) == {"every_featured_address_scored", "scores_valid"}
    assert failed["scores_valid"] == "scores_valid: expected 0 scores null or outside [0, 1], observed 2"
    assert failed["every_featured_address_scored"].endswith("(1 featured addresses without a score)")


def test_every_threshold_carries_its_reason():
    reasons = quality_gates.SETTINGS.reasons()
    assert set(reasons) == {f.name for f in dataclasses.fields(quality_gates.GateSettings)}
    assert all(len(r["reason"]) > 40 for r in reasons.values())


def test_the_gate_runs_from_the_command_line(built, monkeypatch, capsys, tmp_path):
    shutil.copytree(built.bucket, tmp_path / "data" / "bucket")
    monkeypatch.setenv(targets.DATA_DIR_ENV, str(tmp_path / "data"))
    assert quality_gates.main(["extract", "--ds", DAY1]) == 0
    assert "quality gate 'extract' passed for 2024-03-01" in capsys.readouterr().out
    edit(str(tmp_path / "data" / "bucket" / "predictions" / "address_scores" / f"dt={DAY1}"),
         lambda df: df.assign(score=-1.0))
    assert quality_gates.main(["scores", "--ds", DAY1]) == 1
    assert "scores_valid: expected 0 scores null or outside [0, 1]" in capsys.readouterr().err
