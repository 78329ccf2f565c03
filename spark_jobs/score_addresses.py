"""score_addresses: score one day's active addresses with a registry model, in Spark.

Reads `features/address_features/dt=<ds>` and `features/address_labels/dt=<ds>`, and the
model version from the registry (`<bucket>/models`): the day's champion
from `champion.json`, or `--model-version`. The driver reads the version's files through
Hadoop's file systems (local paths and gs:// alike), checks them against this code, and
broadcasts their bytes; each executor unpickles them once and scores Arrow batches with `mapInPandas`
through `pool_classifier.model.scoring.score_batch`, the function in-process scoring uses too.

Writes for `ds`, each folder swapped into place whole (never half-written):
* `predictions/drift/dt=<ds>/{drift.json,drift.md}`: PSI per feature against the training data;
* `predictions/address_scores/dt=<ds>/`: the predictions, with the model version, and what
  explains each: its raw output, the model's bias, its top `--top-k` feature contributions and
  the rest of them (model/contributions.py);
* `predictions/address_profiles/dt=<ds>/`: profile and anomaly score per address.

When the drift is far above its limit, the features hold nulls, the model does not match
this code, or there is no model, it exits with code 3 after printing `<ErrorClass>: why`
(a retry would fail the same way); with drift far above the limit, only the drift report is
written.

    spark-submit score_addresses.py --ds 2024-03-01 --bucket <bucket> [--model-version V] [--top-k 5]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool_classifier import datasets
from pool_classifier.errors import DATA_ERROR_EXIT_CODE
from pool_classifier.io import spark_io
from pool_classifier.model import drift, registry
from pool_classifier.model.scoring import (
    PREDICTION_COLUMNS,
    PROFILE_COLUMNS,
    SCORED_SCHEMA,
    TOP_K,
    check_features,
    model_inputs,
)
from pool_classifier.steps.score_addresses import DRIFT_FILE, DRIFT_REPORT_FILE, JOB_ERRORS

# Rows per predictions file: a day is one file up to this size.
ROWS_PER_FILE = 2_000_000
# Rows per Arrow batch handed to the model (Spark's default 10,000 pays scikit-learn's
# per-call overhead five times as often).
ARROW_BATCH_ROWS = 50_000
# The job's session properties (set for the job, restored after it when the session is shared).
SESSION_SETTINGS = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS)}


# ---------------------------------------------------------------- transforms


def with_known_pool(features: DataFrame, labels: DataFrame) -> DataFrame:
    """Features plus `known_pool`: the address is a labelled pool wallet (coinbases or the pools
    list); a coinbase miner (`label_kind`) is labelled, but not a pool's wallet."""
    if "label_kind" in labels.columns:
        labels = labels.where(F.col("label_kind") == "pool_wallet")
    known = labels.select("address").distinct().withColumn("known_pool", F.lit(True))
    return features.join(known, "address", "left").withColumn("known_pool", F.coalesce("known_pool", F.lit(False)))


def score(features: DataFrame, model, inputs: list[str], ds: str, top_k: int = TOP_K) -> DataFrame:
    """Scored rows (score.SCORED_SCHEMA) for the `inputs` columns of `features` (+ known_pool),
    with the `top_k` feature contributions of each.

    `model` is a Broadcast of (version, model bytes, profiles bytes, metadata): each Python
    worker unpickles it once (and builds its contributions' tables once), then scores Arrow batches.
    """
    def score_batches(batches):
        from pool_classifier.model import registry as registry_
        from pool_classifier.model import scoring

        loaded = registry_.cached_version_from_bytes(*model.value)
        for batch in batches:
            yield scoring.score_batch(loaded, batch, ds, top_k)

    # Doubles cross to Python as Arrow doubles (exact satoshi DECIMALs would arrive as Python
    # Decimal objects, slow to convert); score_batch casts to double all the same.
    columns = [F.col(c).cast("double").alias(c) for c in inputs]
    return features.select("address", *columns, "known_pool").mapInPandas(score_batches, SCORED_SCHEMA)


def drift_counts(features: DataFrame, reference: dict):
    """Rows per (feature, bin) of the reference bins, as drift.bin_counts gives them (pandas).

    One aggregation in the JVM (no Python pass): bin i holds edges[i-1] ≤ x < edges[i], as
    numpy's searchsorted(side="right"); nulls and NaN count in drift.NULL_BIN.
    """
    import pandas as pd

    aggregates, keys = [], []
    for name, spec in reference.items():
        x = F.col(name).cast("double")
        bounds = [None, *spec["edges"], None]
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            inside = F.lit(True)
            if lo is not None:
                inside = inside & (x >= F.lit(lo))
            if hi is not None:
                inside = inside & (x < F.lit(hi))
            aggregates.append(F.count_if(x.isNotNull() & ~F.isnan(x) & inside))
            keys.append((name, i))
        aggregates.append(F.count_if(x.isNull() | F.isnan(x)))
        keys.append((name, drift.NULL_BIN))
    row = features.agg(*(a.alias(f"c{i}") for i, a in enumerate(aggregates))).head()
    return pd.DataFrame({
        "feature": [k[0] for k in keys],
        "bin": pd.Series([k[1] for k in keys], dtype="int32"),
        "rows": pd.Series([int(row[f"c{i}"]) for i in range(len(keys))], dtype="int64"),
    })


# ---------------------------------------------------------------- I/O


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """One small file's bytes (local, gs://), in the driver; a missing one names the step to run."""
    try:
        return spark_io.read_bytes(spark, path)
    except FileNotFoundError:
        raise registry.ModelNotFoundError(f"{path} not found; run train_model for the day first.") from None


def resolve_version(spark: SparkSession, where: datasets.HasBucket, ds: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    pointer = datasets.champion_file(where)
    path, fs = spark_io.file_system(spark, pointer)
    if not fs.exists(path):
        raise registry.ModelNotFoundError(
            f"no champion for {ds}: {pointer} does not exist; run train_model for the day first."
        )
    entry = registry.champion_entry(json.loads(read_bytes(spark, pointer))["promotions"], ds)
    if entry is None:
        raise registry.ModelNotFoundError(
            f"no champion for {ds} in {pointer}: no training run of {ds} or earlier promoted a model; "
            "run train_model for the day first."
        )
    return entry["version"]


def load_model(spark: SparkSession, where: datasets.HasBucket, version: str) -> tuple[str, bytes, bytes, dict]:
    """The version's files as bytes, checked against this code (ModelMismatchError)."""
    folder = datasets.model_dir(where, version)
    metadata = json.loads(read_bytes(spark, f"{folder}/{registry.METADATA_FILE}"))
    registry.check_compatible(version, metadata)
    model_bytes = read_bytes(spark, f"{folder}/{registry.MODEL_FILE}")
    profiles_bytes = read_bytes(spark, f"{folder}/{registry.PROFILES_FILE}")
    return version, model_bytes, profiles_bytes, metadata


def write_table(spark: SparkSession, df: DataFrame, final: str, rows: int) -> None:
    """`df` as Parquet files sorted by address, named part-00000.parquet, …, swapped into place.

    Rows are hash-partitioned on the address (one file per ROWS_PER_FILE rows), so a re-run
    writes the same files.
    """
    spark_io.write_parquet(spark, df, final, ["address"], max(1, -(-rows // ROWS_PER_FILE)))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score one day's addresses with a registry model.")
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD (UTC)")
    parser.add_argument("--bucket", required=True, help="root of features/, models/ and predictions/ (a folder or gs://)")
    parser.add_argument("--model-version", help="score with this version instead of the day's champion")
    parser.add_argument("--warn-psi", type=float, default=drift.DriftConfig.warn_psi)
    parser.add_argument("--fail-psi", type=float, default=drift.DriftConfig.fail_psi)
    parser.add_argument("--top-k", type=int, default=TOP_K, help="feature contributions kept per address (0: none)")
    args = parser.parse_args(argv)
    if args.top_k < 0:
        parser.error(f"--top-k {args.top_k}: give 0 (no contributions) or more")
    return args


def run(spark: SparkSession, args: argparse.Namespace) -> dict:
    where = datasets.Bucket(args.bucket.rstrip("/"))
    started = time.monotonic()
    seconds = {}
    version = resolve_version(spark, where, args.ds, args.model_version)
    model = load_model(spark, where, version)
    metadata = model[3]

    features = spark_io.read_parquet(spark, datasets.features_dir(where, "address_features", args.ds))
    check_features(metadata, features.columns, args.ds)
    labels = spark_io.read_parquet(spark, datasets.features_dir(where, "address_labels", args.ds))

    seconds["load model"] = time.monotonic() - started
    reference = metadata["drift_reference"]
    counts = drift_counts(features, reference)
    result = drift.evaluate(
        reference, counts, drift.DriftConfig(warn_psi=args.warn_psi, fail_psi=args.fail_psi),
        what=f"the features of {args.ds}",
    )
    status = "fail" if result["fail"] else "warn" if result["warn"] else "ok"
    result = {**result, "ds": args.ds, "model_version": version, "status": status, "message": drift.message(result)}
    spark_io.write_text_files(spark, datasets.drift_dir(where, args.ds), {
        DRIFT_FILE: json.dumps(result, indent=2, sort_keys=True) + "\n",
        DRIFT_REPORT_FILE: drift.render_markdown(result, args.ds, version),
    })
    seconds["drift check"] = time.monotonic() - started - sum(seconds.values())
    if result["fail"]:
        raise drift.DriftError(result["message"])
    if result["warn"]:
        print(f"WARNING {result['message']}", file=sys.stderr)

    broadcast = spark.sparkContext.broadcast(model)
    scored = score(with_known_pool(features, labels), broadcast, model_inputs(metadata), args.ds, args.top_k).cache()
    rows = scored.count()
    seconds["score"] = time.monotonic() - started - sum(seconds.values())
    write_table(spark, scored.select(*PREDICTION_COLUMNS), datasets.predictions_dir(where, args.ds), rows)
    write_table(spark, scored.select(*PROFILE_COLUMNS), datasets.profiles_dir(where, args.ds), rows)
    predicted = scored.where("label").count()
    anomalies = scored.where("is_anomaly").count()
    scored.unpersist()
    broadcast.destroy()
    seconds["write"] = time.monotonic() - started - sum(seconds.values())
    return {
        "ds": args.ds, "model_version": version, "rows": rows, "predicted_pools": predicted,
        "anomalies": anomalies, "drift": status, "drift_message": result["message"],
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName(f"score_addresses {args.ds}").getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    try:
        summary = run(spark, args)
    except JOB_ERRORS as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return DATA_ERROR_EXIT_CODE
    finally:
        spark.stop()
    print(f"score_addresses {args.ds}: {json.dumps(summary, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
