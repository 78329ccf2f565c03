"""Drift check: per-feature population stability (PSI) between a model's training data and
the addresses scored today.

At training, `reference` bins each checked feature at the deciles of the training rows and
keeps the share of rows per bin (saved in the version's metadata). At scoring, `bin_counts`
counts today's rows in the same bins (in pandas, per Spark partition or in one process), and
`evaluate` computes PSI = Σ (today − train) · ln(today / train) over the bins:
above `warn_psi` the run warns (log and drift report), above `fail_psi` it fails naming the
features. The calendar features (first/last month received or spent) are not checked: they
move with the calendar by definition, so they would always drift.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pool_classifier.errors import DataError

CALENDAR_FEATURES = ("output_month_min", "output_month_max", "input_month_min", "input_month_max")
# Shares below this count as this, so an empty bin does not make PSI infinite.
MIN_SHARE = 1e-4
NULL_BIN = -1


class DriftError(DataError, RuntimeError):
    """Today's features are far from the training data: the model is not fit to score them."""


class FeatureDataError(DataError, RuntimeError):
    """Today's features hold values the features job never writes (nulls)."""


@dataclass(frozen=True)
class DriftConfig:
    bins: int = 10
    # Rule of thumb for PSI: < 0.1 stable, 0.1–0.25 some shift, > 0.25 a real shift.
    warn_psi: float = 0.25
    fail_psi: float = 1.0


def checked_features(features) -> list[str]:
    return [f for f in features if f not in CALENDAR_FEATURES]


def _bin_index(values: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges, dtype="float64"), values, side="right")


def reference(frame, features, bins: int = DriftConfig.bins) -> dict:
    """Bin edges (the distinct inner quantiles) and the share of rows per bin, per feature."""
    out = {}
    for name in checked_features(features):
        values = frame[name].astype("float64").to_numpy()
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])).tolist()
        counts = np.bincount(_bin_index(values, edges), minlength=len(edges) + 1)
        out[name] = {"edges": edges, "shares": (counts / max(len(values), 1)).tolist()}
    return out


def bin_counts(frame, ref: dict):
    """Rows of `frame` per (feature, bin) of the reference; nulls counted in bin -1."""
    import pandas as pd

    parts = []
    for name, spec in ref.items():
        values = frame[name].astype("float64").to_numpy()
        null = np.isnan(values)
        counts = np.bincount(_bin_index(values[~null], spec["edges"]), minlength=len(spec["edges"]) + 1)
        bins = np.append(np.arange(len(counts)), NULL_BIN)
        parts.append(pd.DataFrame({"feature": name, "bin": bins.astype("int32"),
                                   "rows": np.append(counts, null.sum()).astype("int64")}))
    if not parts:
        return pd.DataFrame({"feature": pd.Series([], dtype=object), "bin": pd.Series([], dtype="int32"),
                             "rows": pd.Series([], dtype="int64")})
    return pd.concat(parts, ignore_index=True)


def psi(expected_shares, actual_shares) -> float:
    e = np.maximum(np.asarray(expected_shares, dtype="float64"), MIN_SHARE)
    a = np.maximum(np.asarray(actual_shares, dtype="float64"), MIN_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def evaluate(ref: dict, counts, config: DriftConfig = DriftConfig(), what: str = "today's addresses") -> dict:
    """PSI per feature from summed `bin_counts`; the features above each threshold.

    Raises FeatureDataError when a checked feature holds nulls (never written by the job).
    """
    totals = counts.groupby(["feature", "bin"], sort=True)["rows"].sum()
    nulls = {f: int(totals.get((f, NULL_BIN), 0)) for f in ref}
    with_nulls = {f: n for f, n in nulls.items() if n}
    if with_nulls:
        raise FeatureDataError(
            f"{what} hold nulls in {sorted(with_nulls)} ({with_nulls}); the features job defines "
            "every feature (0 when undefined): rebuild the day's features."
        )
    result = {}
    rows = 0
    for name, spec in ref.items():
        n_bins = len(spec["shares"])
        actual = np.array([totals.get((name, b), 0) for b in range(n_bins)], dtype="float64")
        rows = int(actual.sum())
        result[name] = psi(spec["shares"], actual / actual.sum()) if actual.sum() else math.nan
    ranked = sorted(result.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "rows": rows,
        "psi": dict(ranked),
        "warn_psi": config.warn_psi,
        "fail_psi": config.fail_psi,
        "warn": [f for f, v in ranked if config.warn_psi < v <= config.fail_psi],
        "fail": [f for f, v in ranked if v > config.fail_psi],
    }


def message(result: dict) -> str:
    """One line for the log: the features above each threshold, with their PSI."""
    def listed(names):
        return ", ".join(f"{f} (PSI {result['psi'][f]:.2f})" for f in names)

    if result["fail"]:
        return (
            f"drift far above the limit: {listed(result['fail'])} exceed PSI {result['fail_psi']} between the "
            "training data and today's addresses; check the day's features, then retrain (train_model) "
            "or raise the limit if the shift is real and expected."
        )
    if result["warn"]:
        return f"drift warning: {listed(result['warn'])} exceed PSI {result['warn_psi']} (limit {result['fail_psi']})"
    top = next(iter(result["psi"].items()), None)
    return "no drift" + (f" (largest: {top[0]} PSI {top[1]:.3f})" if top else "")


def render_markdown(result: dict, ds: str, version: str) -> str:
    lines = [
        f"# Drift check for {ds}",
        "",
        f"Model `{version}`: population stability (PSI) of each feature between its training data "
        f"and the {result['rows']:,} addresses scored on {ds}. Warn above {result['warn_psi']}, "
        f"fail above {result['fail_psi']}.",
        "",
        f"**{message(result)}**",
        "",
        "| feature | PSI | status |",
        "|---|---:|---|",
    ]
    for name, value in result["psi"].items():
        status = "FAIL" if name in result["fail"] else "warn" if name in result["warn"] else "ok"
        lines.append(f"| `{name}` | {value:.4f} | {status} |")
    return "\n".join(lines) + "\n"
