"""Address profiles (k by silhouette, described in words), anomaly scores, and the PSI drift check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pool_classifier.model import drift
from pool_classifier.model.profiles import ProfileConfig, apply_profiles, fit_profiles
from pool_classifier.model.training import BEHAVIOUR_FEATURES

FEATURES = list(BEHAVIOUR_FEATURES)


def three_behaviours(n_per_group: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three kinds of address, orders of magnitude apart in counts and values."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([0, 1, 2], n_per_group)
    scale = np.array([1.0, 1e3, 1e6])[groups]
    frame = pd.DataFrame({f: scale * rng.uniform(0.8, 1.2, len(groups)) for f in FEATURES})
    frame["total_tx_input_count"] = np.where(groups == 2, 0.0, frame["total_tx_input_count"])
    return frame, groups


def test_k_is_chosen_by_silhouette_and_profiles_match_the_behaviours():
    frame, groups = three_behaviours()
    profiles = fit_profiles(frame, FEATURES, seed=1, config=ProfileConfig(k_min=2, k_max=6))
    assert profiles.k == 3
    assert profiles.silhouette[3] == max(profiles.silhouette.values()) > 0.9
    assigned = apply_profiles(profiles, frame)["profile"].to_numpy()
    # One profile per behaviour, whatever the cluster numbers.
    assert len(set(zip(groups, assigned))) == 3 == len(set(assigned))
    summary = profiles.summary()
    assert [round(p["share"], 3) for p in summary["profiles"]] == [0.333] * 3
    for p in summary["profiles"]:
        assert p["description"].startswith("33.3% of addresses")
        assert " vs " in p["description"] and ("high " in p["description"] or "low " in p["description"])


def test_profiles_are_reproducible():
    frame, _ = three_behaviours()
    a = fit_profiles(frame, FEATURES, seed=3, config=ProfileConfig(k_max=4))
    b = fit_profiles(frame, FEATURES, seed=3, config=ProfileConfig(k_max=4))
    pd.testing.assert_frame_equal(apply_profiles(a, frame), apply_profiles(b, frame))
    assert a.summary() == b.summary()


def test_outliers_get_the_highest_anomaly_scores():
    frame, _ = three_behaviours(seed=2)
    outliers = frame.iloc[:5].copy()
    outliers[FEATURES[:6]] = 1e12  # far outside every behaviour
    frame = pd.concat([frame, outliers], ignore_index=True)
    profiles = fit_profiles(frame, FEATURES, seed=1, config=ProfileConfig(k_max=4, anomaly_share=0.01))
    scored = apply_profiles(profiles, frame)
    top = scored["anomaly_score"].nlargest(5).index
    assert set(top) == set(range(len(frame) - 5, len(frame)))
    assert scored["is_anomaly"].iloc[-5:].all()
    assert scored["is_anomaly"].mean() <= 0.02


def _psi_of(reference_frame, today, config=drift.DriftConfig()):
    ref = drift.reference(reference_frame, FEATURES + ["output_month_min"], config.bins)
    return drift.evaluate(ref, drift.bin_counts(today, ref), config)


def test_the_same_population_does_not_drift():
    frame, _ = three_behaviours()
    result = _psi_of(frame, frame)
    assert max(result["psi"].values()) == pytest.approx(0.0, abs=1e-12)
    assert result["warn"] == result["fail"] == []
    assert "output_month_min" not in result["psi"]  # calendar features move by definition
    assert result["rows"] == len(frame)


def test_a_shifted_feature_warns_and_a_far_shifted_one_fails_by_name():
    frame, _ = three_behaviours()
    rng = np.random.default_rng(5)
    today = frame.copy()
    # Half the rows move up a little: a shift, not a new population.
    moved = rng.random(len(today)) < 0.5
    today.loc[moved, "mean_tx_output_value"] *= 1.5
    today["total_tx_output_count"] = today["total_tx_output_count"] * 1e4  # a new population
    result = _psi_of(frame, today)
    assert result["fail"] == ["total_tx_output_count"]
    assert result["warn"] == ["mean_tx_output_value"]
    assert 0.25 < result["psi"]["mean_tx_output_value"] <= 1.0
    assert result["psi"]["total_tx_output_count"] > 1.0
    message = drift.message(result)
    assert message.startswith("drift far above the limit: total_tx_output_count (PSI")
    assert "| `total_tx_output_count` |" in drift.render_markdown(result, "2024-03-02", "hgb-2024-03-01")


def test_nulls_in_features_are_refused_by_name():
    frame, _ = three_behaviours()
    today = frame.copy()
    today.loc[:2, "has_spent"] = np.nan
    with pytest.raises(drift.FeatureDataError, match=r"nulls in \['has_spent'\]"):
        _psi_of(frame, today)
