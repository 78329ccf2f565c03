"""score: score every featured address of one day with a saved model; write predictions.

Predictions: address, score (probability of being a pool address), label (score ≥ the
model's threshold), known_pool (labelled from coinbases or the pools list), model
version, logical date. One Parquet file per day, replaced on a re-run.

    python -m pool_classifier.score --ds 2024-03-01 --model-version rf-2024-03-01
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.storage import publish_dir
from pool_classifier.targets import Target, current_target
from pool_classifier.train import METADATA_FILE, MODEL_FILE

PREDICTIONS_FILE = "predictions.parquet"


class ModelMismatchError(RuntimeError):
    """The saved model does not fit the features it is asked to score."""


def load_model(target: Target, version: str):
    """The model and its metadata; fails clearly when the folder is missing or incomplete."""
    import joblib

    folder = Path(datasets.model_dir(target, version))
    if not (folder / MODEL_FILE).exists() or not (folder / METADATA_FILE).exists():
        raise FileNotFoundError(
            f"model {version!r} not found at {folder} (needs {MODEL_FILE} and {METADATA_FILE}); "
            "run train_model for that day first."
        )
    metadata = json.loads((folder / METADATA_FILE).read_text())
    return joblib.load(folder / MODEL_FILE), metadata


def score_addresses(target: Target, ds: str, model_version: str) -> dict:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, metadata = load_model(target, model_version)
    features = pd.read_parquet(datasets.features_dir(target, "address_features", ds))
    missing = [c for c in metadata["features"] if c not in features.columns]
    if missing:
        raise ModelMismatchError(
            f"model {model_version} needs features {missing} that the features of {ds} lack; "
            "rebuild the features or retrain."
        )
    labels = pd.read_parquet(
        datasets.features_dir(target, "address_labels", ds), columns=["address"]
    )
    features = features.sort_values("address", kind="stable").reset_index(drop=True)
    x = features[metadata["features"]].astype("float64").to_numpy()
    scores = model.predict_proba(x)[:, 1] if len(features) else []
    threshold = metadata["metrics"]["threshold"]
    predictions = pd.DataFrame(
        {
            "address": features["address"],
            "score": pd.Series(scores, dtype="float64"),
            "label": pd.Series(scores, dtype="float64") >= threshold,
            "known_pool": features["address"].isin(set(labels["address"])),
            "model_version": model_version,
            "logical_date": pd.Series([pd.Timestamp(ds).date()] * len(features), dtype="object"),
        }
    )
    out = datasets.predictions_dir(target, ds)
    with publish_dir(out) as tmp:
        table = pa.Table.from_pandas(predictions, preserve_index=False)
        pq.write_table(table, Path(tmp) / PREDICTIONS_FILE)
    return {
        "path": out,
        "rows": int(len(predictions)),
        "predicted_pools": int(predictions["label"].sum()),
        "model_version": model_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score one day's addresses.")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--model-version", required=True)
    args = parser.parse_args(argv)
    print(score_addresses(current_target(), args.ds, args.model_version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
