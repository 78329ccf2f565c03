"""The scores gate on a real generated day's scores: the first day is the baseline, then shifts
and invalid scores fail by name."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps.check_scores import check_scores
from tests.steps.conftest import DAY0, DAY1
from tests.steps.gate_helpers import edit, gate_fails


def _previous_day_like(target) -> None:
    """Day 0's predictions: a copy of day 1's (the same distribution)."""
    shutil.copytree(datasets.predictions_dir(target, DAY1), datasets.predictions_dir(target, DAY0))


def test_the_scores_gate_takes_the_first_day_as_baseline_then_compares(target):
    first = check_scores(target, DAY1)
    assert first["passed"] and first["figures"]["previous_day"] is None
    _previous_day_like(target)
    second = check_scores(target, DAY1)
    assert second["passed"]
    assert second["figures"]["psi"] == pytest.approx(0.0)
    assert second["figures"]["previous_day"]["histogram"] == second["figures"]["histogram"]
    predictions = atomic.read_frame(datasets.predictions_dir(target, DAY1))
    assert sum(second["figures"]["histogram"]) == len(predictions)
    assert second["figures"]["predicted_pools"] == int(predictions["label"].sum())


def test_a_shifted_score_distribution_fails_against_the_day_before(target):
    _previous_day_like(target)

    def shift(df):
        df = df.copy()
        rng = np.random.default_rng(0)
        half = rng.random(len(df)) < 0.5
        df.loc[half, "score"] = 0.95
        df.loc[half, "label"] = True
        return df

    edit(datasets.predictions_dir(target, DAY1), shift)
    failed = gate_fails(check_scores, target, DAY1)
    assert set(failed) == {"score_psi", "predicted_pool_share"}
    assert failed["score_psi"].startswith("score_psi: expected <= 0.25, observed ")
    assert float(failed["score_psi"].split("observed ")[1].split(" ")[0]) > 1


def test_invalid_or_missing_scores_fail(target):
    def damage(df):
        df = df.iloc[1:].copy()          # one featured address left unscored
        df.loc[df.index[0], "score"] = 1.5
        df.loc[df.index[1], "score"] = np.nan
        return df

    edit(datasets.predictions_dir(target, DAY1), damage)
    failed = gate_fails(check_scores, target, DAY1)
    assert set(failed) == {"every_featured_address_scored", "scores_valid"}
    assert failed["scores_valid"] == "scores_valid: expected 0 scores null or outside [0, 1], observed 2"
    assert failed["every_featured_address_scored"].endswith("(1 featured addresses without a score)")
