"""Scoring a batch of feature rows with a registry version: the one function that turns feature
rows into scored rows, used in the Spark job (per Arrow batch, `spark_jobs/score_addresses.py`)
and in process alike (the reference the job is tested against, `steps/score_addresses.py`).
"""
from __future__ import annotations

from pool_classifier.model import registry
from pool_classifier.model.registry import ModelMismatchError

PREDICTION_COLUMNS = ["address", "score", "label", "known_pool", "model_version", "logical_date"]
PROFILE_COLUMNS = ["address", "profile", "anomaly_score", "is_anomaly", "model_version", "logical_date"]
# What score_batch returns: both of the above in one row.
SCORED_SCHEMA = (
    "address string, score double, label boolean, known_pool boolean, profile int, "
    "anomaly_score double, is_anomaly boolean, model_version string, logical_date date"
)


def model_inputs(metadata: dict) -> list[str]:
    """The feature columns score_batch reads: the classifier's and the profiles'."""
    return sorted(set(metadata["features"]) | set(metadata["profiles"]["features"]))


def check_features(metadata: dict, columns, ds: str) -> None:
    missing = [c for c in model_inputs(metadata) if c not in columns]
    if missing:
        raise ModelMismatchError(
            f"model {metadata['version']} needs features {missing} that the features of {ds} lack; "
            "rebuild the features or retrain."
        )


def score_batch(version: registry.ModelVersion, batch, ds: str):
    """Scored rows (SCORED_SCHEMA) for a batch of feature rows with a `known_pool` column."""
    import datetime as dt

    import pandas as pd

    from pool_classifier.model.profiles import apply_profiles
    from pool_classifier.model.training import features_matrix, predict_scores

    batch = batch.reset_index(drop=True)
    scores = predict_scores(version.model, features_matrix(batch, version.features))
    profiles = apply_profiles(version.profiles, batch)
    n = len(batch)
    return pd.DataFrame({
        "address": batch["address"].astype(object),
        "score": pd.Series(scores, dtype="float64"),
        "label": pd.Series(scores >= version.threshold, dtype="bool"),
        "known_pool": batch["known_pool"].astype("bool"),
        "profile": profiles["profile"].astype("int32").to_numpy(),
        "anomaly_score": profiles["anomaly_score"].astype("float64").to_numpy(),
        "is_anomaly": profiles["is_anomaly"].astype("bool").to_numpy(),
        "model_version": pd.Series([version.version] * n, dtype=object),
        "logical_date": pd.Series([dt.date.fromisoformat(ds)] * n, dtype=object),
    })
