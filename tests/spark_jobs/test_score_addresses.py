"""Scoring in Spark: the same rows as in-process scoring, the drift counts of pandas, the champion
resolved by the job, clear refusals; and the job itself through spark-submit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model import calibration, drift, registry, scoring, training
from pool_classifier.model.profiles import ProfileConfig
from pool_classifier.steps import score_addresses, train_model
from spark_jobs import score_addresses as job
from tests.model.features_day import write_day, write_parquet

DS = "2024-03-02"
FAST = dict(profiles=ProfileConfig(k_max=3), importance_repeats=1)
CONFIGS = {
    "rf": training.TrainConfig(candidates=(training.Candidate(
        "rf", "RandomForestClassifier", training.ORIGINAL_FEATURES, {"n_estimators": 40, "class_weight": "balanced"}),), **FAST),
    "hgb": training.TrainConfig(candidates=(training.Candidate(
        "hgb", "HistGradientBoostingClassifier", training.BEHAVIOUR_FEATURES, {"max_iter": 50}),), **FAST),
}


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its top contributions as tuples of (feature, value, contribution): one form
    for what score_batch returns (Arrow-backed), Spark's toPandas and a Parquet read give."""
    out = frame.copy()
    out[scoring.CONTRIBUTIONS_COLUMN] = [
        tuple((c["feature"], c["value"], c["contribution"]) for c in top) for top in frame[scoring.CONTRIBUTIONS_COLUMN]]
    return out


def _spark_scored(spark, target, version: str | None = None, partitions: int = 3,
                  top_k: int = scoring.TOP_K) -> pd.DataFrame:
    model = job.load_model(spark, target, version or job.resolve_version(spark, target, DS, None))
    features = spark.read.parquet(*atomic.data_files(datasets.features_dir(target, "address_features", DS)))
    features = features.repartition(partitions)
    labels = spark.read.parquet(*atomic.data_files(datasets.features_dir(target, "address_labels", DS)))
    broadcast = spark.sparkContext.broadcast(model)
    scored = job.score(job.with_known_pool(features, labels), broadcast, scoring.model_inputs(model[3]), DS, top_k)
    return scored.toPandas().sort_values("address", kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("candidate", sorted(CONFIGS))
def test_spark_scoring_equals_in_process_scoring_row_for_row(spark, local_target, candidate):
    write_day(local_target, DS)
    train_model.train_model(local_target, DS, CONFIGS[candidate])
    in_process = score_addresses.score_in_process(local_target, DS)
    in_spark = _spark_scored(spark, local_target)

    assert len(in_spark) == 3060 and in_spark["known_pool"].sum() == 60
    assert (in_spark["model_version"] == f"{candidate}-{DS}").all()
    # Exactly equal: the same scores and contributions to the last bit, whatever the partitioning.
    pd.testing.assert_frame_equal(plain(in_spark), plain(in_process), check_exact=True)
    assert (in_spark[scoring.CONTRIBUTIONS_COLUMN].map(len) == scoring.TOP_K).all()
    # And the scores mean something: the pools score higher.
    assert in_spark.groupby("known_pool")["score"].mean()[True] > 0.5
    # The score is the version's calibrated probability, the label the decision at its stored threshold.
    metadata = registry.read_metadata(local_target, f"{candidate}-{DS}")
    np.testing.assert_allclose(in_spark["score"], calibration.apply_map(metadata["calibration"], in_spark["raw_output"]),
                               rtol=1e-12)
    assert metadata["threshold"] == metadata["calibration"]["decision"]["threshold"]
    assert (in_spark["label"] == (in_spark["score"] >= metadata["threshold"])).all()


def test_spark_scoring_decides_at_the_threshold_stored_in_the_metadata(spark, local_target):
    write_day(local_target, DS)
    version = train_model.train_model(local_target, DS, CONFIGS["hgb"])["version"]
    before = _spark_scored(spark, local_target)
    # Another threshold in the version's metadata (as a data scientist might set it): Spark decides at it.
    file = Path(registry.version_dir(local_target, version)) / registry.METADATA_FILE
    metadata = json.loads(file.read_text())
    metadata["threshold"] = float(np.quantile(before["score"], 0.9))
    file.write_text(json.dumps(metadata))
    after = _spark_scored(spark, local_target)
    pd.testing.assert_series_equal(after["score"], before["score"])
    assert (after["label"] == (after["score"] >= metadata["threshold"])).all()
    assert after["label"].sum() != before["label"].sum()


def test_spark_scoring_without_contributions_writes_them_null(spark, local_target):
    write_day(local_target, DS)
    train_model.train_model(local_target, DS, CONFIGS["hgb"])
    in_spark = _spark_scored(spark, local_target, top_k=0)
    in_process = score_addresses.score_in_process(local_target, DS, top_k=0)

    assert in_spark[scoring.EXPLANATION_COLUMNS].isna().all().all()
    pd.testing.assert_frame_equal(in_spark.drop(columns=scoring.EXPLANATION_COLUMNS),
                                  in_process.drop(columns=scoring.EXPLANATION_COLUMNS), check_exact=True)


def test_spark_drift_counts_equal_the_pandas_counts(spark):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(0, 1, 500), "b": rng.integers(0, 3, 500).astype("float64")})
    ref = drift.reference(frame, ["a", "b"], bins=10)
    today = frame.copy()
    today.loc[:9, "a"] = ref["a"]["edges"][3]  # exactly on an edge
    today.loc[10:12, "b"] = None
    expected = drift.bin_counts(today, ref).sort_values(["feature", "bin"]).reset_index(drop=True)
    counted = job.drift_counts(spark.createDataFrame(today), ref).sort_values(["feature", "bin"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(counted, expected)


def test_the_job_refuses_a_model_that_does_not_match_this_code(spark, local_target):
    write_day(local_target, DS)
    version = train_model.train_model(local_target, DS, CONFIGS["hgb"])["version"]
    file = Path(registry.version_dir(local_target, version)) / registry.METADATA_FILE
    metadata = json.loads(file.read_text())
    metadata["libraries"]["joblib"] = "0.1"
    file.write_text(json.dumps(metadata))
    with pytest.raises(registry.ModelMismatchError, match=r"joblib 0\.1 \(installed"):
        job.load_model(spark, local_target, version)


def test_the_job_keeps_the_top_5_contributions_unless_told_and_refuses_a_negative_top_k(capsys):
    assert job.parse_args(["--ds", DS, "--bucket", "/tmp/b"]).top_k == scoring.TOP_K == 5
    assert job.parse_args(["--ds", DS, "--bucket", "/tmp/b", "--top-k", "0"]).top_k == 0
    with pytest.raises(SystemExit):
        job.parse_args(["--ds", DS, "--bucket", "/tmp/b", "--top-k", "-1"])
    assert "--top-k -1: give 0 (no contributions) or more" in capsys.readouterr().err
    assert score_addresses.job_args(datasets.Bucket("/tmp/b"), DS)[-2:] == ["--top-k", "5"]


def test_the_job_names_what_is_missing(spark, local_target):
    with pytest.raises(registry.ModelNotFoundError, match="no champion for 2024-03-02"):
        job.resolve_version(spark, local_target, DS, None)
    with pytest.raises(registry.ModelNotFoundError, match="hgb-1999-01-01/metadata.json not found"):
        job.load_model(spark, local_target, "hgb-1999-01-01")


@pytest.mark.slow
def test_score_addresses_runs_the_spark_job_with_the_champion(local_target):
    write_day(local_target, DS)
    trained = train_model.train_model(local_target, DS, CONFIGS["hgb"])
    result = score_addresses.score_addresses(local_target, DS)

    assert result["model_version"] == trained["champion"] == f"hgb-{DS}"
    assert result["rows"] == 3060
    assert result["drift"]["status"] == "ok" and result["drift"]["fail"] == []
    predictions = result["path"]
    assert [Path(f).name for f in atomic.data_files(predictions)] == ["part-00000.parquet"]
    # The Parquet schema the API's fixture copies (tests/api/real_schema.json) is the job's.
    real = json.loads((Path(__file__).parents[1] / "api" / "real_schema.json").read_text())
    schema = pq.read_schema(atomic.data_files(predictions)[0])
    assert [[n, str(schema.field(n).type)] for n in schema.names] == real["predictions/address_scores"]
    expected = score_addresses.score_in_process(local_target, DS)
    written = atomic.read_frame(predictions)
    pd.testing.assert_frame_equal(plain(written), plain(expected[scoring.PREDICTION_COLUMNS]), check_exact=True)
    profiles = atomic.read_frame(result["profiles_path"])
    pd.testing.assert_frame_equal(profiles, expected[scoring.PROFILE_COLUMNS], check_exact=True)
    assert result["predicted_pools"] == int(written["label"].sum())
    assert Path(result["drift"]["report"]).read_text().startswith(f"# Drift check for {DS}")


@pytest.mark.slow
def test_far_drift_fails_the_run_naming_the_features_and_writes_no_predictions(local_target):
    frame = write_day(local_target, DS)
    train_model.train_model(local_target, DS, CONFIGS["hgb"])
    frame["stddev_tx_input_value"] = frame["stddev_tx_input_value"] * 1e6 + 1e6
    with atomic.write_dir(datasets.features_dir(local_target, "address_features", DS)) as folder:
        write_parquet(frame, folder / "part-00000.parquet")

    with pytest.raises(drift.DriftError, match=r"stddev_tx_input_value \(PSI \d+\.\d+\)"):
        score_addresses.score_addresses(local_target, DS)
    assert not atomic.exists(datasets.predictions_dir(local_target, DS))
    report = score_addresses.read_drift(local_target, DS)
    assert report["status"] == "fail" and report["fail"] == ["stddev_tx_input_value"]


def test_a_known_pool_is_a_labelled_pool_wallet_not_a_coinbase_miner(spark):
    features = spark.createDataFrame([("W",), ("M",), ("U",)], "address string")
    labels = spark.createDataFrame([("W", "pool_wallet"), ("M", "coinbase_miner")], "address string, label_kind string")
    known = {r["address"]: r["known_pool"] for r in job.with_known_pool(features, labels).collect()}
    assert known == {"W": True, "M": False, "U": False}
    # labels written before the kinds: every labelled address is a pool's
    unkinded = {r["address"]: r["known_pool"] for r in job.with_known_pool(features, labels.drop("label_kind")).collect()}
    assert unkinded == {"W": True, "M": True, "U": False}
