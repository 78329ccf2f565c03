"""train and score on feature files written here: seeded, saved with metadata, scored."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pool_classifier import datasets, score, train
from pool_classifier.feature_spec import FEATURE_COLUMNS

DS = "2024-03-02"


def write_day(target, n_pools=60, n_others=3000, seed=0):
    """Features where pool addresses spend often in many small payouts (a learnable signal)."""
    rng = np.random.default_rng(seed)
    n = n_pools + n_others
    frame = pd.DataFrame({c: rng.normal(0, 1, n) for c in FEATURE_COLUMNS})
    is_pool = np.arange(n) < n_pools
    frame["total_tx_input_count"] += np.where(is_pool, 4.0, 0.0)
    frame["mean_tx_output_value"] += np.where(is_pool, -2.0, 0.0)
    frame.insert(0, "address", [f"addr{i:05d}" for i in range(n)])
    labels = pd.DataFrame(
        {
            "address": frame["address"][is_pool],
            "pool_id": 44,
            "pool_name": np.where(np.arange(n_pools) % 2, "AntPool", "F2Pool"),
            "coinbase_outputs": 25,
            "label_source": "coinbase",
        }
    )
    training = frame.merge(labels[["address", "pool_name"]], on="address", how="left")
    training["label"] = training["pool_name"].notna().astype("int32")
    for table, df in (
        ("address_features", frame), ("address_labels", labels), ("training_features", training)
    ):
        folder = Path(datasets.features_dir(target, table, DS))
        folder.mkdir(parents=True)
        df.to_parquet(folder / "part-00000.parquet", index=False)


def test_training_is_reproducible_and_saves_metadata(local_target):
    write_day(local_target)
    first = train.train_model(local_target, DS)
    model_bytes = (Path(first["path"]) / train.MODEL_FILE).read_bytes()
    second = train.train_model(local_target, DS)
    assert first["metrics"] == second["metrics"]
    assert (Path(second["path"]) / train.MODEL_FILE).read_bytes() == model_bytes

    metadata = json.loads((Path(first["path"]) / train.METADATA_FILE).read_text())
    assert metadata["version"] == f"rf-{DS}"
    assert metadata["features"] == list(train.ORIGINAL_FEATURES)
    assert metadata["data"]["positives"] == 60
    assert metadata["data"]["positives_per_pool"] == {"AntPool": 30, "F2Pool": 30}
    assert metadata["config"]["model_params"]["n_estimators"] == 200
    assert set(metadata["libraries"]) >= {"scikit-learn", "numpy", "python"}
    assert metadata["metrics"]["pr_auc"] > 0.8  # the signal is strong; a broken fit is not


def test_too_few_positives_fail_clearly(local_target):
    write_day(local_target, n_pools=3)
    with pytest.raises(train.TrainingDataError, match="only 3 labelled pool addresses"):
        train.train_model(local_target, DS)


def test_scoring_writes_one_row_per_address(local_target):
    write_day(local_target)
    version = train.train_model(local_target, DS)["version"]
    result = score.score_addresses(local_target, DS, version)
    predictions = pd.read_parquet(result["path"])
    assert len(predictions) == 3060 == result["rows"]
    assert list(predictions.columns) == [
        "address", "score", "label", "known_pool", "model_version", "logical_date"
    ]
    assert predictions["score"].between(0, 1).all()
    assert predictions["known_pool"].sum() == 60
    assert (predictions["model_version"] == version).all()
    assert str(predictions["logical_date"].iloc[0]) == DS
    # The known pools score higher than the rest, on the whole.
    assert predictions.groupby("known_pool")["score"].mean()[True] > 0.5


def test_scoring_refuses_a_model_whose_features_are_missing(local_target):
    write_day(local_target)
    version = train.train_model(local_target, DS)["version"]
    folder = Path(datasets.features_dir(local_target, "address_features", DS))
    frame = pd.read_parquet(folder).drop(columns=["io_max_lag"])
    frame.to_parquet(folder / "part-00000.parquet", index=False)
    with pytest.raises(score.ModelMismatchError, match="io_max_lag"):
        score.score_addresses(local_target, DS, version)


def test_scoring_a_missing_model_says_what_to_run(local_target):
    write_day(local_target)
    with pytest.raises(FileNotFoundError, match="run train_model"):
        score.score_addresses(local_target, DS, "rf-1999-01-01")
