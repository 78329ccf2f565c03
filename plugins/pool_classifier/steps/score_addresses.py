"""score: score one day's active addresses with the champion in Spark; profiles, anomalies
and the drift check beside the predictions.

The Spark job `spark_jobs/score_addresses.py` does the work (the model broadcast to the
executors, applied per Arrow batch with `mapInPandas`); this module says where its inputs
and outputs are, runs it on the target's Spark, and holds `score_batch`, the one function
that turns a batch of feature rows into scored rows, in Spark and in process alike.

Outputs for day `ds` (each folder replaced on a re-run):
* `predictions/address_scores/dt=<ds>/`: address, score (probability of a pool address),
  label (score ≥ the model's threshold), known_pool (labelled from coinbases or the pools
  list), model_version, logical_date;
* `predictions/address_profiles/dt=<ds>/`: address, profile (k-means cluster of the model
  version), anomaly_score (isolation forest; higher = more unusual), is_anomaly,
  model_version, logical_date;
* `predictions/drift/dt=<ds>/drift.json`, `drift.md`: PSI per feature against the model's
  training data. Above the warning level the job warns; above the failure level it writes
  the drift report, no predictions, and fails with DriftError naming the features.

    python -m pool_classifier.steps.score_addresses --ds 2024-03-01 [--model-version hgb-2024-03-01]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.model import registry
from pool_classifier.io import spark_runner as spark_submit
from pool_classifier.model.drift import DriftConfig, DriftError, FeatureDataError
from pool_classifier.model.registry import ModelMismatchError, ModelNotFoundError  # noqa: F401 (raised by this step)
from pool_classifier.targets import Target, current_target

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["address", "score", "label", "known_pool", "model_version", "logical_date"]
PROFILE_COLUMNS = ["address", "profile", "anomaly_score", "is_anomaly", "model_version", "logical_date"]
# What score_batch returns: both of the above in one row.
SCORED_SCHEMA = (
    "address string, score double, label boolean, known_pool boolean, profile int, "
    "anomaly_score double, is_anomaly boolean, model_version string, logical_date date"
)
DRIFT_FILE = "drift.json"
DRIFT_REPORT_FILE = "drift.md"
# The errors the job reports by name (exit code spark_submit.DATA_ERROR_EXIT_CODE): a retry
# would fail the same way.
JOB_ERRORS = (DriftError, FeatureDataError, ModelMismatchError, ModelNotFoundError)


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
    from pool_classifier.steps.train_model import features_matrix, predict_scores

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


def score_in_process(target: Target, ds: str, model_version: str | None = None):
    """The day's scored rows (SCORED_SCHEMA) computed in this process, sorted by address.

    The reference the Spark job is tested against, and the benchmark's baseline.
    """
    import pandas as pd

    version = registry.load_version(target, model_version or registry.champion_version(target, ds))
    features = pd.read_parquet(datasets.features_dir(target, "address_features", ds))
    check_features(version.metadata, features.columns, ds)
    labels = pd.read_parquet(datasets.features_dir(target, "address_labels", ds), columns=["address"])
    features = features.sort_values("address", kind="stable").reset_index(drop=True)
    features["known_pool"] = features["address"].isin(set(labels["address"]))
    return score_batch(version, features[["address", *model_inputs(version.metadata), "known_pool"]], ds)


def score_job_args(target: Target, ds: str, model_version: str | None = None,
                   drift: DriftConfig = DriftConfig()) -> list[str]:
    """Arguments of spark_jobs/score_addresses.py for day `ds` (the same on every target)."""
    args = [
        "--ds", ds,
        "--features", datasets.features_root(target),
        "--registry", datasets.models_root(target),
        "--predictions", datasets.predictions_root(target),
        "--warn-psi", str(drift.warn_psi),
        "--fail-psi", str(drift.fail_psi),
    ]
    return args + (["--model-version", model_version] if model_version else [])


def _reraise_job_error(exc: spark_submit.SparkJobDataError) -> None:
    """The job names its error class in its message: raise that class, not a generic one."""
    text = str(exc)
    for cls in JOB_ERRORS:
        marker = f"{cls.__name__}: "
        if marker in text:
            raise cls(text[text.index(marker) + len(marker):]) from exc
    raise exc


def read_drift(target: Target, ds: str) -> dict:
    return json.loads((Path(datasets.drift_dir(target, ds)) / DRIFT_FILE).read_text())


def score_addresses(target: Target, ds: str, model_version: str | None = None) -> dict:
    """Score day `ds` with the champion (or `model_version`) in Spark; returns a summary."""
    import pyarrow.dataset as ds_

    if target.spark_runner != "local":
        raise NotImplementedError(
            f"score_addresses runs Spark locally; target {target.name!r} submits a "
            f"{target.spark_runner} batch through its own operator."
        )
    try:
        spark_submit.run_local(target, spark_submit.SCORE_JOB, score_job_args(target, ds, model_version))
    except spark_submit.SparkJobDataError as exc:
        _reraise_job_error(exc)
    drift = read_drift(target, ds)
    out = datasets.predictions_dir(target, ds)
    predictions = ds_.dataset(out, format="parquet")
    profiles = ds_.dataset(datasets.profiles_dir(target, ds), format="parquet")
    summary = {
        "path": out,
        "rows": predictions.count_rows(),
        "predicted_pools": int(predictions.to_table(columns=["label"])["label"].to_pandas().sum()),
        "model_version": drift["model_version"],
        "profiles_path": datasets.profiles_dir(target, ds),
        "anomalies": int(profiles.to_table(columns=["is_anomaly"])["is_anomaly"].to_pandas().sum()),
        "drift": {
            "status": drift["status"],
            "warn": drift["warn"],
            "fail": drift["fail"],
            "largest": max(drift["psi"].items(), key=lambda kv: kv[1], default=None),
            "report": f"{datasets.drift_dir(target, ds)}/{DRIFT_REPORT_FILE}",
        },
    }
    if drift["warn"]:
        log.warning("%s", drift["message"])
    log.info("scored %s: %s", ds, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score one day's addresses with the champion (Spark).")
    parser.add_argument("--ds", required=True)
    parser.add_argument("--model-version", help="a registry version instead of the day's champion")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(score_addresses(current_target(), args.ds, args.model_version), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
