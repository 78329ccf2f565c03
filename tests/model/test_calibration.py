"""Calibration and the decision threshold: the map improves the Brier score of a miscalibrated model
on rows it never saw, its weights make the probability that of the sampled population, the
threshold reaches the target precision on the evaluation rows (or says it cannot), and a trained
version stores, reloads and scores with both."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator

from pool_classifier import datasets
from pool_classifier.io import versioned
from pool_classifier.model import calibration, registry
from pool_classifier.steps import score_addresses, train_model
from tests.model.features_day import write_day

DS = "2024-03-02"


def population(n: int, base_rate: float, seed: int):
    """Rows whose pool probability is known: a logistic signal on two features (`base_rate`: at
    the features' mean; the share of pools is ~10× higher)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 2))
    logit = np.log(base_rate / (1 - base_rate)) + 2.5 * x[:, 0] + 1.0 * x[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


def balanced_model(x, y):
    """Balanced class weights: ranks well, overstates every probability (the project's setting)."""
    return HistGradientBoostingClassifier(class_weight="balanced", max_iter=50, random_state=0).fit(x, y)


@pytest.mark.parametrize("method", calibration.METHODS)
def test_the_map_improves_the_brier_score_on_rows_neither_saw(method):
    x, y = population(30_000, 0.003, seed=1)  # ~3 % pools
    fit, cal, held = np.split(np.arange(len(y)), [10_000, 20_000])
    model = balanced_model(x[fit], y[fit])
    raw = model.predict_proba(x[held])[:, 1]

    record = calibration.fit_map(model, x[cal], y[cal], None, method)
    calibrated = calibration.apply_map(record, calibration.raw_input(model, x[held]))

    ones = np.ones(len(held))
    assert calibration.brier(y[held], calibrated, ones) < 0.7 * calibration.brier(y[held], raw, ones)
    # Balanced weights put the mean score far above the base rate; calibrated, it is the base rate.
    assert raw.mean() > 3 * y[held].mean()
    assert calibrated.mean() == pytest.approx(y[held].mean(), rel=0.15)
    # Each populated bin's observed frequency is near its predicted one (where rows are many).
    for b in calibration.reliability(y[held], calibrated, ones):
        if b["rows"] >= 300:
            assert abs(b["observed"] - b["predicted"]) < 0.08, b
    # The stored map is scikit-learn's own calibrated classifier, number for number.
    library = CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(x[cal], y[cal])
    np.testing.assert_allclose(calibrated, library.predict_proba(x[held])[:, 1], rtol=1e-12, atol=1e-15)


def test_the_forest_is_calibrated_on_its_predict_proba():
    x, y = population(6_000, 0.05, seed=2)
    model = RandomForestClassifier(n_estimators=20, class_weight="balanced", random_state=0).fit(x[:3000], y[:3000])
    record = calibration.fit_map(model, x[3000:], y[3000:], None, "sigmoid")
    assert record["input"] == "predict_proba"
    np.testing.assert_array_equal(calibration.raw_input(model, x[:5]), model.predict_proba(x[:5])[:, 1])


def test_weighted_negatives_give_the_populations_probability():
    """A training set keeps every positive and 1 in 10 negatives: weighted 10, the calibrated
    probability matches the whole population's rate; unweighted it overstates it."""
    x, y = population(120_000, 0.0005, seed=3)  # ~1 % pools
    held = np.arange(90_000, 120_000)  # population rows the sample never held
    rng = np.random.default_rng(4)
    kept = ((y == 1) | (rng.random(len(y)) < 0.1)) & (np.arange(len(y)) < 90_000)
    sampled = np.flatnonzero(kept)
    fit, cal = sampled[: len(sampled) // 2], sampled[len(sampled) // 2:]
    model = balanced_model(x[fit], y[fit])
    weight = calibration.negative_weight(int((y[kept] == 0).sum()), int((y[:90_000] == 0).sum()))
    assert weight == pytest.approx(10, rel=0.05)

    weighted = calibration.fit_map(model, x[cal], y[cal], calibration.sample_weights(y[cal], weight), "sigmoid")
    unweighted = calibration.fit_map(model, x[cal], y[cal], None, "sigmoid")
    rate = y[held].mean()
    p_weighted = calibration.probabilities(model, weighted, x[held])
    p_unweighted = calibration.probabilities(model, unweighted, x[held])
    assert p_weighted.mean() == pytest.approx(rate, rel=0.3)
    assert p_unweighted.mean() > 3 * rate


def test_the_threshold_is_the_lowest_reaching_the_target_precision():
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(100), np.zeros(5000)].astype(int)
    p = np.r_[rng.beta(5, 2, 100), rng.beta(1, 8, 5000)]
    w = np.ones(len(y))
    chosen = calibration.choose_threshold(y, p, w, 0.95)

    decided = p >= chosen["threshold"]
    assert chosen["target_reached"]
    assert chosen["precision"] == pytest.approx(y[decided].mean()) and chosen["precision"] >= 0.95
    assert chosen["recall"] == pytest.approx(decided[y == 1].mean())
    assert chosen["predicted_positives"] == decided.sum()
    # Every lower threshold misses the target: this one has the highest recall at ≥ 95 % precision.
    for t in np.unique(p[p < chosen["threshold"]])[-50:]:
        assert y[p >= t].mean() < 0.95

    # Negatives weighing 10 (a sampled population): the same rows need a higher threshold.
    weighted = calibration.choose_threshold(y, p, calibration.sample_weights(y, 10.0), 0.95)
    assert weighted["threshold"] > chosen["threshold"] and weighted["recall"] <= chosen["recall"]
    tp, fp = (decided := p >= weighted["threshold"])[y == 1].sum(), decided[y == 0].sum()
    assert weighted["precision"] == pytest.approx(tp / (tp + 10 * fp)) and weighted["precision"] >= 0.95


def test_an_unreachable_target_falls_back_to_the_best_precision_and_says_so():
    # Each positive shares its score with two negatives: no threshold exceeds 1/3 precision.
    y = np.array([1, 0, 0] * 20)
    p = np.repeat(np.linspace(0.1, 0.9, 20), 3)
    chosen = calibration.choose_threshold(y, p, np.ones(len(y)), 0.95)
    assert not chosen["target_reached"]
    assert chosen["precision"] == pytest.approx(1 / 3)
    assert chosen["threshold"] == pytest.approx(0.1)  # the lowest threshold of that best precision
    line = calibration.summary_line({"calibration": {"method": "sigmoid", "decision": chosen,
                                                     "brier_raw": 0.1, "brier_calibrated": 0.05}})
    assert "NOT reachable" in line and "precision 0.333" in line


def test_no_evaluation_positive_or_one_class_calibration_rows_fail_clearly():
    with pytest.raises(calibration.CalibrationError, match="no positive among the evaluation rows"):
        calibration.choose_threshold(np.zeros(5), np.linspace(0, 1, 5), np.ones(5), 0.95)
    x, y = population(2000, 0.1, seed=6)
    model = balanced_model(x, y)
    with pytest.raises(calibration.CalibrationError, match="need both classes"):
        calibration.fit_map(model, x[y == 0][:50], np.zeros(50), None, "sigmoid")
    with pytest.raises(ValueError, match="calibration method 'beta'"):
        calibration.CalibrationConfig(method="beta")


def test_the_calibration_rows_are_the_latest_of_the_training_window():
    rng = np.random.default_rng(7)
    n = 2000
    times = rng.integers(0, 10_000, n)
    ties = rng.integers(0, 2**63, n).astype(np.uint64)
    labels = (rng.random(n) < 0.05).astype(int)
    train = times < 8000
    cal = calibration.holdout(times, ties, labels, train, 0.25, 3)
    fit = train & ~cal
    assert not (cal & ~train).any()
    assert times[fit].max() <= times[cal].min()
    assert labels[cal].sum() == int(np.ceil(labels[train].sum() * 0.25))
    with pytest.raises(calibration.CalibrationError, match="cannot be split"):
        calibration.holdout(times, ties, labels, train & (labels == 0) | (np.arange(n) == np.argmax(labels)),
                            0.25, 3)


def _state_of(target, ds: str, addresses: int) -> None:
    location = datasets.state_dir(target, "address_state", ds)
    versioned.publish_files(versioned.for_location(location), location, {"layer.txt": "test"},
                            meta={"addresses": addresses})


def test_a_trained_version_stores_reloads_and_scores_at_its_calibrated_threshold(local_target):
    frame = write_day(local_target, DS)
    negatives = len(frame) - 60
    _state_of(local_target, DS, 60 + 4 * negatives)  # the training set holds 1 in 4 of the others
    result = train_model.train_model(local_target, DS)
    metadata = json.loads((Path(result["path"]) / registry.METADATA_FILE).read_text())

    c = metadata["calibration"]
    assert c["method"] == "sigmoid" and c["input"] in ("decision_function", "predict_proba")
    assert c["negative_weight"] == pytest.approx(4.0)
    assert c["population"].startswith(f"address state of {DS}")
    assert c["fitted_on"] == {"rows": metadata["split"]["calibration_rows"],
                              "positives": metadata["split"]["calibration_positives"]}
    split = metadata["split"]
    assert split["train_rows"] + split["calibration_rows"] + split["eval_rows"] == len(frame)
    assert c["brier_calibrated"] < c["brier_raw"]
    assert sum(b["rows"] for b in c["reliability"]) == split["eval_rows"]
    d = c["decision"]
    assert metadata["threshold"] == d["threshold"] == metadata["metrics"]["threshold"]
    assert d["target_precision"] == 0.95 and d["target_reached"] and d["precision"] >= 0.95
    assert metadata["metrics"]["recall"] == pytest.approx(d["recall"])
    assert metadata["metrics"]["confusion"]["tp"] == d["true_positives"]
    assert result["calibration"]["decision"] == d

    # The registry gives it back as saved; scoring applies the map and decides at its threshold.
    loaded = registry.load_version(local_target, result["version"])
    assert loaded.metadata["calibration"] == c and loaded.threshold == d["threshold"]
    scored = score_addresses.score_in_process(local_target, DS)
    assert (scored["label"] == (scored["score"] >= d["threshold"])).all()
    np.testing.assert_allclose(scored["score"], calibration.apply_map(c, scored["raw_output"]), rtol=0, atol=1e-15)
    assert scored["score"].between(0, 1).all()
    # Calibration is after the raw output: the contributions still add up to it.
    rest = scored["contribution_bias"] + scored["top_contributions"].map(
        lambda top: sum(t["contribution"] for t in top)) + scored["contribution_rest"]
    np.testing.assert_allclose(rest, scored["raw_output"], atol=1e-9)


def test_without_a_state_the_calibration_says_it_is_of_the_training_set(local_target):
    write_day(local_target, DS)
    result = train_model.train_model(local_target, DS)
    assert result["calibration"]["negative_weight"] == 1.0
    assert result["calibration"]["population"] == "training set"
