"""The features gate on a real generated day's Spark features, then with one defect each."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps import quality_gate
from pool_classifier.steps.check_features import check_features
from pool_classifier.steps.quality_gate import MAX_MONEY_SATOSHI, QualityGateError
from tests.steps.conftest import DAY1
from tests.steps.gate_helpers import edit, failed_checks, gate_fails, put_nan


def test_the_features_gate_passes_a_real_day_with_figures_per_feature(target):
    record = check_features(target, DAY1)
    assert record["passed"]
    per_feature = record["figures"]["features"]
    assert set(per_feature) == set(features_columns())
    frame = atomic.read_frame(datasets.features_dir(target, "address_features", DAY1))
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
    failed = gate_fails(check_features, target, DAY1)
    assert check in failed, failed
    if value is None:
        rows = quality_gate.read_figures(target, "features", DAY1)["figures"]["rows"]
        assert failed[check] == f"{check}: expected <= 0.0, observed {round(1 / rows, 6)} (1 of {rows} rows)"
    else:
        assert f"{check}: expected 0 values outside" in failed[check] and "observed 1" in failed[check]


def test_a_missing_feature_column_and_a_doubled_address_fail(target):
    edit(datasets.features_dir(target, "address_features", DAY1),
         lambda df: pd.concat([df, df.iloc[[0]]]).drop(columns=["io_max_lag"]))
    with pytest.raises(QualityGateError) as info:
        check_features(target, DAY1)
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
    assert set(gate_fails(check_features, target, DAY1)) == {"side_flags_consistent"}
