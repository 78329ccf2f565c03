"""The registry: the promotion rule, the champion per day, re-runs, and loading refused when the
feature list or the libraries differ."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pool_classifier.model import registry, training
from pool_classifier.model.profiles import ProfileConfig
from pool_classifier.steps import train_model
from tests.model.features_day import write_day

DAY_1, DAY_2 = "2024-03-01", "2024-03-02"
# Small settings: these tests are about the rule, not the models.
FAST = dict(profiles=ProfileConfig(k_max=3), importance_repeats=1)
STRONG = training.TrainConfig(
    candidates=(training.Candidate("hgb", "HistGradientBoostingClassifier", training.BEHAVIOUR_FEATURES, {"max_iter": 50}),),
    **FAST,
)
# Only noise: the signal is in total_tx_input_count and mean_tx_output_value.
WEAK = training.TrainConfig(
    candidates=(training.Candidate("noise", "HistGradientBoostingClassifier", ("io_max_lag", "io_min_lag"), {"max_iter": 20}),),
    **FAST,
)


def _two_days(target):
    frame = write_day(target, DAY_1)
    write_day(target, DAY_2, frame=frame)


def test_a_worse_challenger_is_not_promoted_and_the_champion_stays(local_target, caplog):
    _two_days(local_target)
    first = train_model.train_model(local_target, DAY_1, STRONG)
    assert first["promoted"] and first["champion"] == f"hgb-{DAY_1}"

    with caplog.at_level("INFO", logger="pool_classifier.steps.train_model"):
        second = train_model.train_model(local_target, DAY_2, WEAK)
    assert not second["promoted"]
    assert second["champion"] == f"hgb-{DAY_1}" == registry.champion_version(local_target, DAY_2)
    assert f"does not beat the champion hgb-{DAY_1}" in second["reason"]
    assert second["reason"] in caplog.text  # the task log says why
    # Compared on the same rows: the challenger's PR-AUC below the champion's + margin.
    assert second["challenger_metrics_vs_champion"]["rows"] == second["champion_metrics"]["rows"]
    assert second["challenger_metrics_vs_champion"]["pr_auc"] < second["champion_metrics"]["pr_auc"] + 0.01
    # The run is kept in the registry all the same, with its report.
    assert Path(second["path"], registry.METADATA_FILE).exists() and Path(second["report"]).exists()
    assert [p["version"] for p in registry.read_promotions(local_target)] == [f"hgb-{DAY_1}"]


def test_a_better_challenger_is_promoted(local_target):
    _two_days(local_target)
    train_model.train_model(local_target, DAY_1, WEAK)
    second = train_model.train_model(local_target, DAY_2, STRONG)
    assert second["promoted"], second["reason"]
    assert "beats the champion noise-2024-03-01" in second["reason"]
    assert registry.champion_version(local_target, DAY_1) == f"noise-{DAY_1}"
    assert registry.champion_version(local_target, DAY_2) == f"hgb-{DAY_2}"


def test_a_challenger_within_the_margin_is_not_promoted(local_target):
    _two_days(local_target)
    train_model.train_model(local_target, DAY_1, STRONG)
    # The same model again: equal PR-AUC is not a gain.
    second = train_model.train_model(local_target, DAY_2, STRONG)
    assert not second["promoted"]
    assert second["challenger_metrics_vs_champion"]["pr_auc"] == second["champion_metrics"]["pr_auc"]


def test_re_running_a_day_rewrites_its_own_decision_only(local_target):
    _two_days(local_target)
    train_model.train_model(local_target, DAY_1, WEAK)
    train_model.train_model(local_target, DAY_2, STRONG)
    before = registry.read_promotions(local_target)
    # Day 1 again: compared with the champion before day 1 (none), as the first time.
    again = train_model.train_model(local_target, DAY_1, WEAK)
    assert again["promoted"] and "first champion" in again["reason"]
    assert registry.read_promotions(local_target) == before


def test_no_champion_yet_is_a_clear_error(local_target):
    with pytest.raises(registry.ModelNotFoundError, match="run train_model"):
        registry.champion_version(local_target, DAY_1)


@pytest.fixture
def saved_version(local_target):
    write_day(local_target, DAY_1)
    version = train_model.train_model(local_target, DAY_1, STRONG)["version"]
    return local_target, version, Path(registry.version_dir(local_target, version)) / registry.METADATA_FILE


def _edit(file: Path, change) -> None:
    metadata = json.loads(file.read_text())
    change(metadata)
    file.write_text(json.dumps(metadata))


def test_loading_checks_the_library_versions(saved_version):
    target, version, file = saved_version
    assert registry.load_version(target, version).model is not None
    installed = registry.library_versions()["scikit-learn"]
    _edit(file, lambda m: m["libraries"].update({"scikit-learn": "0.24.2"}))
    with pytest.raises(registry.ModelMismatchError, match=rf"scikit-learn 0\.24\.2 \(installed: {installed}\)"):
        registry.load_version(target, version)


def test_loading_checks_the_feature_list_and_version(saved_version):
    target, version, file = saved_version
    _edit(file, lambda m: m["features"].append("coinbase_count"))
    with pytest.raises(registry.ModelMismatchError, match=r"features \['coinbase_count'\]"):
        registry.load_version(target, version)
    _edit(file, lambda m: (m["features"].remove("coinbase_count"), m.update({"feature_version": "1"})))
    with pytest.raises(registry.ModelMismatchError, match="feature version '1'"):
        registry.load_version(target, version)


def test_a_version_pickled_by_the_old_package_layout_is_refused_by_name(saved_version):
    """Its profiles pickle names `pool_classifier.profiles`, which no longer exists: refused
    before unpickling, so training replaces it and scoring says to retrain."""
    target, version, file = saved_version
    registry.load_version(target, version)
    _edit(file, lambda m: m.pop("pickle_layout"))
    with pytest.raises(registry.ModelMismatchError, match="package layout '1'"):
        registry.load_version(target, version)


def test_a_champion_that_no_longer_loads_is_replaced_saying_why(saved_version):
    target, version, file = saved_version
    write_day(target, DAY_2)
    _edit(file, lambda m: m["libraries"].update({"numpy": "1.0.0"}))
    result = train_model.train_model(target, DAY_2, WEAK)
    assert result["promoted"]
    assert f"champion {version} cannot score any more" in result["reason"] and "numpy 1.0.0" in result["reason"]
