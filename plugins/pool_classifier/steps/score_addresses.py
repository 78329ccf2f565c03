"""score_addresses: score one day's active addresses with the champion in Spark; profiles,
anomalies and the drift check beside the predictions.

The Spark job `spark_jobs/score_addresses.py` does the work (the model broadcast to the
executors, applied per Arrow batch with `mapInPandas`); this module builds its arguments,
runs it in this process on the local Spark, and runs the same `model.scoring.score_batch` in process
(`score_in_process`): the job's reference.

Outputs for day `ds` (each folder replaced on a re-run):
* `predictions/address_scores/dt=<ds>/`: address, score (probability of a pool address),
  label (score ≥ the model's threshold), known_pool (labelled from coinbases or the pools
  list), model_version, logical_date; and what explains the score (model/contributions.py):
  raw_output (probability or log-odds), contribution_bias, top_contributions (the `TOP_K`
  largest: feature, its value, its contribution), contribution_rest;
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
from pool_classifier.io import atomic, spark_runner
from pool_classifier.model import registry
from pool_classifier.model.drift import DriftConfig, DriftError, FeatureDataError
from pool_classifier.model.registry import ModelMismatchError, ModelNotFoundError
from pool_classifier.model.scoring import TOP_K, check_features, model_inputs, score_batch
from pool_classifier.targets import Target, current_target

log = logging.getLogger(__name__)

TASK_ID = "score_addresses"
DRIFT_FILE = "drift.json"
DRIFT_REPORT_FILE = "drift.md"
# The errors the job reports by name (exit code errors.DATA_ERROR_EXIT_CODE): a retry
# would fail the same way.
JOB_ERRORS = (DriftError, FeatureDataError, ModelMismatchError, ModelNotFoundError)


def score_in_process(target: Target, ds: str, model_version: str | None = None, top_k: int = TOP_K):
    """The day's scored rows (SCORED_SCHEMA) computed in this process, sorted by address.

    The reference the Spark job is tested against, and the benchmark's baseline.
    """

    version = registry.load_version(target, model_version or registry.champion_version(target, ds))
    features = atomic.read_frame(datasets.features_dir(target, "address_features", ds))
    check_features(version.metadata, features.columns, ds)
    labels = atomic.read_frame(datasets.features_dir(target, "address_labels", ds))
    if "label_kind" in labels.columns:  # a pool wallet is a known pool; a coinbase miner is not
        labels = labels[labels["label_kind"] == "pool_wallet"]
    features = features.sort_values("address", kind="stable").reset_index(drop=True)
    features["known_pool"] = features["address"].isin(set(labels["address"]))
    return score_batch(version, features[["address", *model_inputs(version.metadata), "known_pool"]], ds, top_k)


def job_args(where: datasets.HasBucket, ds: str, model_version: str | None = None,
             drift: DriftConfig = DriftConfig(), top_k: int = TOP_K) -> list[str]:
    """Arguments of spark_jobs/score_addresses.py for day `ds` (the same on every target)."""
    args = ["--ds", ds, "--bucket", where.bucket, "--warn-psi", str(drift.warn_psi), "--fail-psi", str(drift.fail_psi),
            "--top-k", str(top_k)]
    return args + (["--model-version", model_version] if model_version else [])


def drift_file(target: Target, ds: str, name: str = DRIFT_FILE) -> str:
    """A file of the day's drift check, in the version in force."""
    files = atomic.data_files(datasets.drift_dir(target, ds), suffix=f"/{name}")
    if not files:
        raise FileNotFoundError(f"no drift check in force at {datasets.drift_dir(target, ds)}: run score_addresses for {ds}")
    return files[0]


def read_drift(target: Target, ds: str) -> dict:
    return json.loads(Path(drift_file(target, ds)).read_text())


def score_addresses(target: Target, ds: str, model_version: str | None = None) -> dict:
    """Score day `ds` with the champion (or `model_version`) in Spark; returns a summary."""
    import pyarrow.dataset as ds_

    try:
        spark_runner.run(target, TASK_ID, job_args(target, ds, model_version))
    except spark_runner.SparkJobDataError as exc:
        spark_runner.reraise_job_error(exc, JOB_ERRORS)
    drift = read_drift(target, ds)
    out = datasets.predictions_dir(target, ds)
    predictions = ds_.dataset(atomic.files_or_fail(out), format="parquet", partitioning=None)
    profiles = ds_.dataset(atomic.files_or_fail(datasets.profiles_dir(target, ds)), format="parquet", partitioning=None)
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
            "report": drift_file(target, ds, DRIFT_REPORT_FILE),
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
