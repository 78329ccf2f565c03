"""Scoring a batch of feature rows with a registry version: the one function that turns feature
rows into scored rows (score, decision, profile, anomaly, and the top feature contributions that
explain the score, model/contributions.py), used in the Spark job (per Arrow batch,
`spark_jobs/score_addresses.py`) and in process alike (the reference the job is tested against,
`steps/score_addresses.py`).
"""
from __future__ import annotations

from pool_classifier.model import registry
from pool_classifier.model.registry import ModelMismatchError

# Feature contributions kept per address (model/contributions.py): the k largest by |contribution|.
TOP_K = 5
CONTRIBUTIONS_COLUMN = "top_contributions"
# Their Spark type: a list of (feature, the feature's value, its contribution) structs.
CONTRIBUTIONS_TYPE = "array<struct<feature:string,value:double,contribution:double>>"
# What explains a score: the raw output (probability or log-odds, contributions.RAW_OUTPUT_KINDS),
# the model's expected raw output, the top contributions and the rest of them, so that
# contribution_bias + Σ top_contributions.contribution + contribution_rest = raw_output.
EXPLANATION_COLUMNS = ["raw_output", "contribution_bias", CONTRIBUTIONS_COLUMN, "contribution_rest"]
PREDICTION_COLUMNS = ["address", "score", "label", "known_pool", "model_version", "logical_date",
                      *EXPLANATION_COLUMNS]
PROFILE_COLUMNS = ["address", "profile", "anomaly_score", "is_anomaly", "model_version", "logical_date"]
# What score_batch returns: both of the above in one row (name, Spark SQL type).
SCORED_FIELDS = [
    ("address", "string"), ("score", "double"), ("label", "boolean"), ("known_pool", "boolean"), ("profile", "int"),
    ("anomaly_score", "double"), ("is_anomaly", "boolean"), ("model_version", "string"), ("logical_date", "date"),
    ("raw_output", "double"), ("contribution_bias", "double"), (CONTRIBUTIONS_COLUMN, CONTRIBUTIONS_TYPE),
    ("contribution_rest", "double"),
]
SCORED_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in SCORED_FIELDS)


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


def top_contributions(features: list[str], x, contributions, k: int):
    """The k largest contributions of each row as a list of (feature, value, contribution) structs
    (an Arrow-backed pandas column, built without a Python object per row), and their sum."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from pool_classifier.model.contributions import top_k

    n = len(x)
    top = top_k(contributions, k)
    kept = top.shape[1]
    rows = np.repeat(np.arange(n), kept)
    cols = top.ravel()
    picked = contributions[rows, cols]
    names = pa.array(features, pa.string()).take(pa.array(cols.astype(np.int32)))
    structs = pa.StructArray.from_arrays([names, pa.array(x[rows, cols]), pa.array(picked)],
                                         names=["feature", "value", "contribution"])
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * kept + 1, kept, dtype=np.int32)), structs)
    # Summed in rank order, the same on every run and any batching.
    total = np.zeros(n)
    for j in range(kept):
        total = total + picked.reshape(n, kept)[:, j]
    return pd.Series(pd.arrays.ArrowExtensionArray(lists)), total


def _no_explanation(n: int) -> dict:
    """The explanation columns all null (contributions switched off: top_k = 0)."""
    import pandas as pd

    nulls = pd.Series([None] * n, dtype="float64")
    # None objects, not an Arrow null array: Spark's pandas conversion takes None for a null list
    # (pandas' NA from an Arrow-backed column fails it).
    return {"raw_output": nulls, "contribution_bias": nulls.copy(),
            CONTRIBUTIONS_COLUMN: pd.Series([None] * n, dtype=object), "contribution_rest": nulls.copy()}


def score_batch(version: registry.ModelVersion, batch, ds: str, top_k: int = TOP_K):
    """Scored rows (SCORED_SCHEMA) for a batch of feature rows with a `known_pool` column.

    The score is the version's calibrated probability (model/calibration.py; predict_proba for a
    version saved before calibration) and the label the decision at the version's threshold.
    With every row's score: its raw output, the model's bias and its `top_k` feature contributions
    (model/contributions.py), exact for the model; `top_k` = 0 switches them off (null columns).
    """
    import datetime as dt

    import pandas as pd

    from pool_classifier.model.calibration import apply_map, probabilities
    from pool_classifier.model.profiles import apply_profiles
    from pool_classifier.model.training import features_matrix, predict_scores

    batch = batch.reset_index(drop=True)
    x = features_matrix(batch, version.features)
    n = len(batch)
    calibration = version.metadata.get("calibration")
    if top_k > 0:
        explainer = version.explainer
        # One walk of the trees gives both; the raw output equals the model's own to the bit.
        raw, contributions = explainer.explain(x)
        # The raw output is what the calibration map reads (decision_function, or the forest's
        # predict_proba): not walked twice. Uncalibrated (a version before calibration): predict_proba.
        if calibration is not None:
            scores = apply_map(calibration, raw)
        else:
            scores = raw if explainer.kind == "probability" else predict_scores(version.model, x)
        top, top_sum = top_contributions(version.features, x, contributions, top_k)
        explanation = {
            "raw_output": pd.Series(raw, dtype="float64"),
            "contribution_bias": pd.Series([explainer.bias] * n, dtype="float64"),
            CONTRIBUTIONS_COLUMN: top,
            "contribution_rest": pd.Series(raw - (explainer.bias + top_sum), dtype="float64"),
        }
    else:
        scores = probabilities(version.model, calibration, x)
        explanation = _no_explanation(n)
    profiles = apply_profiles(version.profiles, batch)
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
        **explanation,
    })
