"""The extract gate on a real generated day, then on copies of its files with one defect each:
every defect fails the check that names it, with the expected and observed numbers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps import quality_gate
from pool_classifier.steps.check_extract import check_extract
from pool_classifier.steps.quality_gate import MAX_MONEY_SATOSHI, QualityGateError
from tests.steps.conftest import DAY1, DAY2
from tests.steps.gate_helpers import edit, gate_fails


def test_the_extract_gate_passes_a_real_day_and_keeps_its_figures(target):
    record = check_extract(target, DAY2)
    assert record["passed"] and all(c["passed"] for c in record["checks"])
    kept = json.loads(Path(quality_gate.figures_path(target, "extract", DAY2)).read_text())
    assert kept == json.loads(json.dumps(record, default=str))
    figures = kept["figures"]
    blocks = atomic.read_frame(datasets.extract_dir(target, "blocks", DAY2))
    outputs = atomic.read_frame(datasets.extract_dir(target, "outputs", DAY2))
    assert figures["blocks"] == len(blocks)
    assert figures["transactions_expected"] == blocks["transaction_count"].sum()
    assert figures["transactions_observed"] == outputs["transaction_hash"].nunique()
    assert figures["previous_day_last_block"] == figures["first_block"] - 1
    assert kept["settings"]["midnight_window_seconds"]["reason"]


def _drop_block(target, ds: str, position: int) -> int:
    """Remove one block and its transactions from a day's extract; returns its number."""
    blocks = atomic.read_frame(datasets.extract_dir(target, "blocks", ds)).sort_values("block_number")
    number = int(blocks["block_number"].iloc[position])
    for table in datasets.EXTRACT_TABLES:
        edit(datasets.extract_dir(target, table, ds), lambda df: df[df["block_number"] != number])
    return number


def test_a_block_missing_in_the_middle_of_the_day_fails_contiguity(target):
    number = _drop_block(target, DAY1, 40)
    failed = gate_fails(check_extract, target, DAY1)
    assert list(failed) == ["block_numbers_contiguous"]
    assert "observed 1 (blocks" in failed["block_numbers_contiguous"]
    assert f"missing: {number}..{number}" in failed["block_numbers_contiguous"]


def test_a_gap_next_to_midnight_is_timestamp_disorder_not_a_loss(target):
    """A block stamped just after midnight belongs to the next day; its neighbours, stamped
    just before, stay: the gap is accepted and counted."""
    blocks = atomic.read_frame(datasets.extract_dir(target, "blocks", DAY1)).sort_values("block_number")
    number = _drop_block(target, DAY1, len(blocks) - 2)
    late = pd.Timestamp(f"{DAY1} 23:58:00", tz="UTC")

    def stamp(df):
        df = df.copy()
        near = df["block_number"].isin([number - 1, number + 1])
        df.loc[near, "block_timestamp"] = late
        return df

    edit(datasets.extract_dir(target, "blocks", DAY1), stamp)
    record = check_extract(target, DAY1)
    assert record["figures"]["missing_block_numbers"] == 1
    assert record["figures"]["missing_block_numbers_unexplained"] == 0


def test_a_lost_transaction_fails_the_transaction_count(target):
    outputs = atomic.read_frame(datasets.extract_dir(target, "outputs", DAY1))
    lost = outputs.loc[~outputs["is_coinbase"], "transaction_hash"].iloc[0]
    expected = outputs["transaction_hash"].nunique()
    for table in ("outputs", "inputs"):
        edit(datasets.extract_dir(target, table, DAY1), lambda df: df[df["transaction_hash"] != lost])
    failed = gate_fails(check_extract, target, DAY1)
    assert failed == {"transaction_count": (
        f"transaction_count: expected {expected} transactions (sum of blocks.transaction_count), "
        f"observed {expected - 1} (1 blocks whose outputs show another number of transactions)"
    )}


def test_duplicated_rows_and_a_hash_in_two_blocks_fail(target):
    edit(datasets.extract_dir(target, "outputs", DAY1), lambda df: pd.concat([df, df.iloc[[5]]]))
    failed = gate_fails(check_extract, target, DAY1)
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
    assert set(gate_fails(check_extract, target, DAY2)) == {"transaction_hashes_unique"}


def test_the_two_bip30_transactions_may_appear_in_two_blocks(target):
    bip30 = quality_gate.SETTINGS.known_duplicate_transactions[0]

    def same_hash_in_two_blocks(df):
        df = df.copy()
        for block in (df["block_number"].min(), df["block_number"].max()):
            tx = df.loc[df["block_number"] == block, "transaction_hash"].iloc[-1]
            df.loc[df["transaction_hash"] == tx, "transaction_hash"] = bip30
        return df

    for table in ("outputs", "inputs"):
        edit(datasets.extract_dir(target, table, DAY2), same_hash_in_two_blocks)
    assert check_extract(target, DAY2)["passed"]


def test_impossible_values_fail(target):
    def damage(df):
        df = df.copy()
        df.loc[df.index[3], "value"] = -5
        df.loc[df.index[4], "value"] = MAX_MONEY_SATOSHI + 1
        return df

    edit(datasets.extract_dir(target, "outputs", DAY1), damage)
    failed = gate_fails(check_extract, target, DAY1)
    assert failed == {"output_values_valid": (
        f"output_values_valid: expected 0 output values null, negative or > {MAX_MONEY_SATOSHI} satoshi, "
        "observed 2 (null 0, negative 1, above the money supply 1)"
    )}


def test_blocks_missing_between_two_days_fail(target):
    _drop_block(target, DAY2, 0)
    failed = gate_fails(check_extract, target, DAY2)
    assert set(failed) == {"follows_previous_day"}
    assert "expected 0 blocks missing since the day before, observed 1" in failed["follows_previous_day"]


def test_a_day_with_no_extract_is_named(target):
    shutil.rmtree(datasets.extract_dir(target, "inputs", DAY1))
    with pytest.raises(QualityGateError, match=r"no Parquet files in .*extracts/inputs/dt=2024-03-01"):
        check_extract(target, DAY1)
