"""Training: reproducible to the byte, split by time, the baseline and the challenger on the same
rows, the metrics of the report, the cadence."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pool_classifier.model import registry, training
from pool_classifier.model.feature_spec import FIRST_SEEN, ORIGINAL_FEATURES
from pool_classifier.steps import score_addresses, should_train, train_model
from tests.model.features_day import feature_rows, write_day

DS = "2024-03-02"


def test_two_trainings_give_the_same_model_metrics_and_predictions(local_target):
    write_day(local_target, DS)
    first = train_model.train_model(local_target, DS)
    folder = Path(first["path"])
    saved = {name: (folder / name).read_bytes() for name in (registry.MODEL_FILE, registry.PROFILES_FILE)}
    predictions = score_addresses.score_in_process(local_target, DS)

    second = train_model.train_model(local_target, DS)
    assert second["version"] == first["version"]
    assert second["metrics"] == first["metrics"] and second["candidates"] == first["candidates"]
    assert {name: (folder / name).read_bytes() for name in saved} == saved
    pd.testing.assert_frame_equal(score_addresses.score_in_process(local_target, DS), predictions)
    # The signal is strong: a broken fit would not find it.
    assert first["metrics"]["pr_auc"] > 0.8


def test_metadata_records_data_split_features_params_metrics_and_libraries(local_target):
    write_day(local_target, DS)
    result = train_model.train_model(local_target, DS)
    metadata = json.loads((Path(result["path"]) / registry.METADATA_FILE).read_text())

    assert metadata["version"] == result["version"] == f"{metadata['candidate']}-{DS}"
    assert metadata["data"]["positives"] == 60
    assert metadata["data"]["positives_per_pool"] == {"AntPool": 30, "F2Pool": 30}
    assert metadata["data"]["window"] == {"first_day": DS, "last_day": DS}  # no extracts: the day itself
    assert metadata["split"]["key"] == FIRST_SEEN
    assert metadata["features"] == metadata["candidates"][metadata["candidate"]]["features"]
    assert metadata["candidates"]["rf"]["features"] == list(ORIGINAL_FEATURES)
    assert metadata["candidates"]["hgb"]["features"] == list(training.BEHAVIOUR_FEATURES)
    assert {c["name"]: c["params"] for c in metadata["config"]["candidates"]}["rf"] == {
        "n_estimators": 200, "class_weight": "balanced"}
    assert set(metadata["libraries"]) >= {"scikit-learn", "numpy", "joblib", "python"}
    assert len(metadata["git_commit"]) == 40 or metadata["git_commit"] == "unknown"
    metrics = metadata["metrics"]
    assert set(metrics) >= {"pr_auc", "precision", "recall", "recall_at_95_precision", "per_pool_recall", "confusion"}
    assert set(metrics["per_pool_recall"]) <= {"AntPool", "F2Pool"}
    assert sum(r["positives"] for r in metrics["per_pool_recall"].values()) == metrics["positives"]
    c = metrics["confusion"]
    assert c["tp"] + c["fn"] == metrics["positives"] == metadata["split"]["eval_positives"]
    assert c["tp"] + c["fp"] + c["tn"] + c["fn"] == metadata["split"]["eval_rows"]
    assert metrics["recall"] == pytest.approx(c["tp"] / (c["tp"] + c["fn"]))


def test_the_split_trains_before_the_cutoff_and_evaluates_after_it():
    rows = feature_rows(n_pools=40, n_others=2000)
    rows["label"] = (np.arange(len(rows)) < 40).astype(int)
    config = training.TrainConfig(eval_fraction=0.25)
    split = training.time_split(rows, config)

    first_seen = rows[FIRST_SEEN].to_numpy()
    assert first_seen[split.train].max() <= split.info["cutoff_time"] <= first_seen[split.evaluate].min()
    assert (split.train ^ split.evaluate).all()  # every row on exactly one side
    assert split.info["eval_positives"] == 10 == rows["label"][split.evaluate].sum()
    assert split.info["train_rows"] + split.info["eval_rows"] == len(rows)
    # The same rows in another order split the same way.
    shuffled = rows.sample(frac=1, random_state=1)
    again = training.time_split(shuffled, config)
    assert set(shuffled["address"][again.evaluate]) == set(rows["address"][split.evaluate])


def test_without_first_seen_time_the_split_falls_back_to_the_first_month():
    rows = feature_rows(n_pools=40, n_others=2000).drop(columns=[FIRST_SEEN])
    rows["label"] = (np.arange(len(rows)) < 40).astype(int)
    rows["output_month_min"] = np.where(np.arange(len(rows)) % 2, 1_706_745_600, 0)  # Feb 2024 or never
    rows["input_month_min"] = 1_709_251_200  # Mar 2024
    split = training.time_split(rows, training.TrainConfig())
    assert split.info["key"].startswith("min(output_month_min, input_month_min)")
    february = rows["output_month_min"].to_numpy() > 0
    # Every February address trains before any March-only address evaluates.
    assert split.info["cutoff_utc"].startswith("2024-03-01")
    assert not (split.evaluate & february).any()


def test_negatives_can_be_thinned_to_a_ratio_seeded(local_target):
    write_day(local_target, DS)
    config = training.TrainConfig(negatives_per_positive=10)
    rows = train_model.training_set(local_target, DS, config)
    assert (rows["label"] == 1).sum() == 60 and (rows["label"] == 0).sum() == 600
    assert rows["address"].is_monotonic_increasing
    assert rows["address"].tolist() == train_model.training_set(local_target, DS, config)["address"].tolist()
    other_seed = train_model.training_set(local_target, DS, training.TrainConfig(negatives_per_positive=10, seed=7))
    assert other_seed["address"].tolist() != rows["address"].tolist()


def test_too_few_positives_fail_clearly(local_target):
    write_day(local_target, DS, n_pools=3)
    with pytest.raises(training.TrainingDataError, match="only 3 labelled pool addresses"):
        train_model.train_model(local_target, DS)


def test_a_missing_training_set_says_what_to_run(local_target):
    with pytest.raises(training.TrainingDataError, match="run build_features for 2024-03-02"):
        train_model.train_model(local_target, DS)


def test_recall_at_95_precision_is_read_off_the_curve():
    from pool_classifier.model.evaluation import recall_at_precision

    y = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # Above 0.6 all three are pools (precision 1, recall 3/4); adding 0.6 drops precision to 3/4.
    assert recall_at_precision(y, scores) == (0.75, 0.7)
    # The only pool scores lowest: no threshold reaches 95 % precision.
    assert recall_at_precision(np.array([0, 1]), np.array([0.9, 0.1])) == (0.0, None)


@pytest.mark.parametrize("every,ds,expected", [
    (1, "2024-03-02", True),
    (7, "2024-03-04", True),   # a Monday
    (7, "2024-03-05", False),
    (7, "2024-03-11", True),
])
def test_cadence(every, ds, expected):
    assert should_train.is_training_day(ds, every) is expected


def test_a_day_without_a_champion_needs_training_whatever_the_cadence(local_target):
    weekly = training.TrainConfig(retrain_every_days=7)
    assert should_train.needs_training(local_target, "2024-03-05", weekly)  # a Tuesday, but no champion yet
    registry.record_decision(local_target, "2024-03-04", {"version": "hgb-2024-03-04", "pr_auc": 0.9, "reason": "r"})
    assert not should_train.needs_training(local_target, "2024-03-05", weekly)  # the Monday's champion scores
    assert should_train.needs_training(local_target, "2024-03-11", weekly)
    assert should_train.needs_training(local_target, "2024-03-03", weekly)  # before any champion


def test_importance_uses_every_evaluation_pool_and_a_sample_of_the_others_beyond_the_cap(local_target):
    from pool_classifier.model.profiles import ProfileConfig

    write_day(local_target, DS)
    config = training.TrainConfig(
        candidates=(training.Candidate("hgb", "HistGradientBoostingClassifier", training.BEHAVIOUR_FEATURES, {"max_iter": 30}),),
        importance_rows=300, importance_repeats=1, profiles=ProfileConfig(k_max=3),
    )
    result = train_model.train_model(local_target, DS, config)
    metadata = json.loads((Path(result["path"]) / registry.METADATA_FILE).read_text())
    assert metadata["importance_rows"] == {"rows": 300, "positives": metadata["split"]["eval_positives"]}
    assert "300 evaluation rows (15 pools, the others a seeded sample)" in Path(result["report"]).read_text()


# ------------------------------------------------------------------ the target and the label kinds


def test_coinbase_miners_are_neither_trained_on_nor_evaluated_and_are_reported_apart(local_target):
    write_day(local_target, DS, n_miners=40)
    result = train_model.train_model(local_target, DS)
    metadata = json.loads((Path(result["path"]) / registry.METADATA_FILE).read_text())

    assert metadata["target"] == {"positive_kinds": ["pool_wallet"], "left_out": 40,
                                  "rows_per_kind": {"coinbase_miner": 40, "pool_wallet": 60, "unlabelled": 2960}}
    assert metadata["data"]["positives"] == 60 and metadata["data"]["negatives_sampled"] == 2960
    split = metadata["split"]
    # The 40 miners on no side: fitting, calibration or evaluation.
    assert split["train_rows"] + split["calibration_rows"] + split["eval_rows"] == 3020
    kinds = metadata["per_kind"]
    assert kinds["coinbase_miner"]["rows"] == 40 and kinds["coinbase_miner"]["scope"] == "all rows"
    assert kinds["coinbase_miner"]["target"] is False
    wallet = kinds["pool_wallet"]
    assert wallet["target"] is True and wallet["rows"] == split["eval_positives"]
    assert wallet["share_predicted"] == pytest.approx(metadata["metrics"]["recall"])
    negatives = metadata["metrics"]["confusion"]["fp"] + metadata["metrics"]["confusion"]["tn"]
    assert kinds["unlabelled"]["rows"] == negatives
    assert kinds["unlabelled"]["predicted_pool"] == metadata["metrics"]["confusion"]["fp"]
    # The miners have no pool signal here: the model must not take them for pool wallets.
    assert kinds["coinbase_miner"]["share_predicted"] < 0.2 < wallet["share_predicted"]
    report = Path(result["report"]).read_text()
    assert "## Label kinds" in report and "| coinbase_miner | no | 40 | all rows |" in report


def test_the_target_is_a_setting(local_target):
    write_day(local_target, DS, n_miners=40)
    config = training.TrainConfig(positive_kinds=("pool_wallet", "coinbase_miner"))
    rows = train_model.training_set(local_target, DS, config)
    assert rows["label"].sum() == 100 and not rows[training.APART].any()
    # Thinning the negatives keeps every labelled row, apart ones included.
    thin = train_model.training_set(local_target, DS, training.TrainConfig(negatives_per_positive=5))
    assert (thin["label"].sum(), thin[training.APART].sum(), len(thin)) == (60, 40, 60 + 40 + 300)
    with pytest.raises(training.TrainingDataError, match="target kinds"):
        train_model.training_set(local_target, DS, training.TrainConfig(positive_kinds=("nothing",)))


def test_the_original_label_rule_is_reported_next_to_the_fixed_one(local_target):
    write_day(local_target, DS, n_miners=40)
    result = train_model.train_model(local_target, DS)
    metadata = json.loads((Path(result["path"]) / registry.METADATA_FILE).read_text())
    rules = metadata["label_rules"]
    assert rules["fixed"]["positives"] == 60 and rules["fixed"]["metrics"] == metadata["candidates"]["rf"]["metrics"]
    original = rules["original"]
    assert original["positives"] == 30 + 40  # the AntPool wallets and every miner
    assert original["candidate"] == "rf" and 0 < original["train_positives"] < 70
    on_target = original["on_fixed_target"]
    assert (on_target["rows"], on_target["positives"]) == (metadata["split"]["eval_rows"],
                                                            metadata["split"]["eval_positives"])
    # Trained to find signal-less miners and half the wallets, it finds the wallets worse than the fixed rule.
    assert on_target["pr_auc"] < rules["fixed"]["metrics"]["pr_auc"]
    report = Path(result["report"]).read_text()
    assert "## Label rules" in report and training.ORIGINAL_RULE in report
    no_variant = train_model.train_model(local_target, DS, training.TrainConfig(original_rule_variant=False))
    assert "original" not in json.loads((Path(no_variant["path"]) / registry.METADATA_FILE).read_text())["label_rules"]
