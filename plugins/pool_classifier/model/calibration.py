"""Calibrated scores and the decision threshold of a version.

The classifiers are fitted with balanced class weights on a training set whose negatives are a
sample of the other addresses: their `predict_proba` ranks well but is not a probability a user
can read. A version therefore carries, in its metadata (`calibration`, `threshold`):

* a calibration map from the model's raw output to a probability, fitted by scikit-learn's
  `CalibratedClassifierCV` around the fitted model (`FrozenEstimator`: the model is not refitted)
  on the *calibration rows*: the latest `calibration_fraction` of the training window's positives
  by first-seen time (and every row first seen in that span), which the model is not fitted on.
  Its input is what scikit-learn calibrates (`decision_function` when the model has one, else
  `predict_proba`): the log-odds of the gradient boosting, the probability of the forest, i.e.
  exactly the `raw_output` that the feature contributions (model/contributions.py) add up to.
  Calibration is a monotone map applied after it: the contributions explain the raw output,
  not the calibrated probability.
* the decision threshold on the calibrated probability, chosen on the *evaluation rows* (after
  the evaluation cut-off, unseen by the model and by the calibration map) for a target precision:
  the lowest threshold whose precision reaches it (the highest recall at that precision). When no
  threshold reaches it, the threshold of the best precision reached, `target_reached: false`, and
  the report and the run's summary say so.

Sampling weights. The training set holds every labelled address but only a seeded sample of the
others (a share `r` of them, the features job's ~100 per positive). Fitted unweighted, the
calibrated probability would be that of a population with 1/r times more pools than the address
state has, and the precision on the evaluation rows an overestimate. So every negative of the
calibration and evaluation rows weighs 1/r, r = (sampled negatives) / (negatives in the address
state): the calibration map, the Brier scores, the reliability curve and the precision at the
threshold are those of the state's population. Recall is unchanged (positives weigh 1). When the
state's size is unknown (no manifest), the weight is 1 and the metadata says `population:
"training set"`.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from pool_classifier.errors import DataError

log = logging.getLogger(__name__)

METHODS = ("sigmoid", "isotonic")
RELIABILITY_BINS = 10


class CalibrationError(DataError, ValueError):
    """The day's rows cannot calibrate or choose a threshold (too few positives for the calibration
    rows, one class only among them, no positive to evaluate): a retry would not help."""


@dataclass(frozen=True)
class CalibrationConfig:
    # sigmoid (Platt: 2 parameters) by default: the calibration rows hold tens of positives (the
    # demo ~50), too few for isotonic regression's step function not to overfit them.
    method: str = "sigmoid"
    # The latest share of the training window's positives held out to fit the calibration map.
    calibration_fraction: float = 0.25
    min_calibration_positives: int = 3
    # The precision the decision threshold is chosen for, on the evaluation rows.
    target_precision: float = 0.95

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"calibration method {self.method!r}: expected one of {METHODS}")
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"calibration_fraction {self.calibration_fraction}: expected in (0, 1)")
        if not 0 < self.target_precision <= 1:
            raise ValueError(f"target_precision {self.target_precision}: expected in (0, 1]")


# ------------------------------------------------------------------ weights


def negative_weight(sampled_negatives: int, population_negatives: int | None) -> float:
    """How many addresses of the population each sampled negative stands for (≥ 1; 1 if unknown)."""
    if not population_negatives or sampled_negatives <= 0:
        return 1.0
    return max(1.0, population_negatives / sampled_negatives)


def sample_weights(labels, weight: float) -> np.ndarray:
    labels = np.asarray(labels)
    return np.where(labels == 1, 1.0, float(weight))


# ------------------------------------------------------------------ the calibration rows


def holdout(times, ties, labels, train, fraction: float, min_positives: int) -> np.ndarray:
    """The calibration rows: training rows at or after the first-seen time (ties by the seeded
    hash) that leaves the latest `fraction` of the training positives; the model fits the others.

    `times`, `ties`, `labels`, `train`: per row of the training set (first seen, seeded hash,
    label, the training mask of the time split).
    """
    order = np.lexsort((ties, times))
    order = order[np.asarray(train)[order]]
    positive_positions = np.flatnonzero(np.asarray(labels)[order] == 1)
    n_cal = max(min_positives, int(np.ceil(len(positive_positions) * fraction)))
    if len(positive_positions) - n_cal < 1:
        raise CalibrationError(
            f"{len(positive_positions)} training positives cannot be split into fitting and {n_cal} for "
            "calibration; build more days."
        )
    first = order[positive_positions[len(positive_positions) - n_cal]]
    after = (times > times[first]) | ((times == times[first]) & (ties >= ties[first]))
    return np.asarray(train) & after


# ------------------------------------------------------------------ the calibration map


def raw_input(model, x) -> np.ndarray:
    """What the calibration map reads: decision_function if the model has one, else predict_proba
    (scikit-learn's own choice in CalibratedClassifierCV); one thread, as predict_scores."""
    from threadpoolctl import threadpool_limits

    if len(x) == 0:
        return np.zeros(0)
    with threadpool_limits(1):
        if hasattr(model, "decision_function"):
            return np.asarray(model.decision_function(x), dtype="float64")
        return model.predict_proba(x)[:, 1]


def fit_map(model, x, y, weights, method: str) -> dict:
    """The calibration map of a fitted `model` on rows (x, y) it was not fitted on, as a JSON record."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from threadpoolctl import threadpool_limits

    y = np.asarray(y).astype(int)
    if y.sum() == 0 or y.sum() == len(y):
        raise CalibrationError(f"the {len(y)} calibration rows hold {int(y.sum())} positives: need both classes")
    with threadpool_limits(1), warnings.catch_warnings():
        # The frozen model is not refitted, so it takes no weights: scikit-learn warns that they then
        # weigh the calibration only, which is what is meant here.
        warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept sample_weight")
        fitted = CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(x, y, sample_weight=weights)
    calibrator = fitted.calibrated_classifiers_[0].calibrators[0]
    source = "decision_function" if hasattr(model, "decision_function") else "predict_proba"
    if method == "sigmoid":
        # p = 1 / (1 + exp(a·raw + b)), scikit-learn's _SigmoidCalibration.
        return {"method": method, "input": source, "a": float(calibrator.a_), "b": float(calibrator.b_)}
    # Isotonic: piecewise linear between its knots, clipped outside them (out_of_bounds="clip").
    return {"method": method, "input": source, "x": [float(v) for v in calibrator.X_thresholds_],
            "y": [float(v) for v in calibrator.y_thresholds_]}


def apply_map(calibration: dict | None, raw) -> np.ndarray:
    """The calibrated probabilities of raw outputs `raw` (None: no calibration, `raw` itself)."""
    raw = np.asarray(raw, dtype="float64")
    if calibration is None:
        return raw
    if calibration["method"] == "sigmoid":
        from scipy.special import expit

        return expit(-(calibration["a"] * raw + calibration["b"]))
    if calibration["method"] == "isotonic":
        return np.interp(raw, np.asarray(calibration["x"]), np.asarray(calibration["y"]))
    raise ValueError(f"unknown calibration method {calibration['method']!r}; known: {METHODS}")


def probabilities(model, calibration: dict | None, x) -> np.ndarray:
    """A version's score of rows x: its calibrated probability, or predict_proba if uncalibrated."""
    from pool_classifier.model.training import predict_scores

    if calibration is None:
        return predict_scores(model, x)
    return apply_map(calibration, raw_input(model, x))


# ------------------------------------------------------------------ assessment


def brier(y, p, weights) -> float:
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(np.asarray(y).astype(int), p, sample_weight=weights))


def reliability(y, p, weights, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Equal-width bins of predicted probability: rows, positives, mean predicted and observed
    frequency, both weighted (a bin without rows is left out)."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype="float64")
    w = np.asarray(weights, dtype="float64")
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        rows = index == b
        if not rows.any():
            continue
        total = w[rows].sum()
        out.append({
            "bin": [b / bins, (b + 1) / bins],
            "rows": int(rows.sum()),
            "positives": int(y[rows].sum()),
            "predicted": float((w[rows] * p[rows]).sum() / total),
            "observed": float((w[rows] * y[rows]).sum() / total),
        })
    return out


def choose_threshold(y, p, weights, target: float) -> dict:
    """The decision threshold on probabilities `p` for precision `target` (weighted precision).

    The lowest threshold whose precision reaches the target (recall only falls as the threshold
    rises: the highest recall there); none reaching it: the threshold of the best precision
    reached (ties: the lowest), `target_reached` false.
    """
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y).astype(int)
    if y.sum() == 0:
        raise CalibrationError("no positive among the evaluation rows: no threshold can be chosen")
    precision, recall, thresholds = precision_recall_curve(y, p, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    ok = np.flatnonzero(precision >= target)
    reached = ok.size > 0
    # thresholds rise with the index: the first qualifying index is the lowest threshold.
    best = int(ok[0]) if reached else int(np.flatnonzero(precision == precision.max())[0])
    threshold = float(thresholds[best])
    decided = p >= threshold
    return {
        "threshold": threshold,
        "target_precision": float(target),
        "target_reached": bool(reached),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
        "predicted_positives": int(decided.sum()),
        "true_positives": int((decided & (y == 1)).sum()),
    }


def calibrate(model, x_cal, y_cal, x_eval, y_eval, weight: float, config: CalibrationConfig,
              population: str) -> tuple[dict, np.ndarray]:
    """Fit the map on the calibration rows, assess it and choose the threshold on the evaluation
    rows. Returns the metadata record and the evaluation rows' calibrated probabilities."""
    calibration = fit_map(model, x_cal, y_cal, sample_weights(y_cal, weight), config.method)
    from pool_classifier.model.training import predict_scores

    raw_eval = predict_scores(model, x_eval)
    calibrated = apply_map(calibration, raw_input(model, x_eval))
    w_eval = sample_weights(y_eval, weight)
    decision = choose_threshold(y_eval, calibrated, w_eval, config.target_precision)
    record = {
        **calibration,
        "fitted_on": {"rows": int(len(y_cal)), "positives": int(np.sum(y_cal))},
        "negative_weight": float(weight),
        "population": population,
        "brier_raw": brier(y_eval, raw_eval, w_eval),
        "brier_calibrated": brier(y_eval, calibrated, w_eval),
        "reliability_raw": reliability(y_eval, raw_eval, w_eval),
        "reliability": reliability(y_eval, calibrated, w_eval),
        "decision": decision,
    }
    log.info("calibration %s on %d rows (%d positives): Brier %.5f → %.5f on the evaluation rows; threshold "
             "%.4f for precision %.2f (%s): precision %.3f, recall %.3f", config.method, len(y_cal),
             int(np.sum(y_cal)), record["brier_raw"], record["brier_calibrated"], decision["threshold"],
             config.target_precision, "reached" if decision["target_reached"] else "NOT reached",
             decision["precision"], decision["recall"])
    return record, calibrated


def summary_line(metadata: dict) -> str:
    """One line for logs and the run's summary: the threshold, its precision and recall."""
    calibration = metadata.get("calibration")
    if not calibration:
        return f"threshold {metadata.get('threshold')} on the uncalibrated score (model before calibration)"
    d = calibration["decision"]
    reached = "reached" if d["target_reached"] else "NOT reachable: the best precision's threshold"
    return (f"threshold {d['threshold']:.4f} on the {calibration['method']}-calibrated probability "
            f"(target precision {d['target_precision']:.2f} {reached}): precision {d['precision']:.3f}, "
            f"recall {d['recall']:.3f} on the evaluation rows; Brier {calibration['brier_raw']:.4f} → "
            f"{calibration['brier_calibrated']:.4f}")


# ------------------------------------------------------------------ a training run's


def calibration_split(rows, split, config: CalibrationConfig, seed: int):
    """`split` with its calibration rows carved out of the training rows (Split.calibrate); the
    candidates then fit on the rest. The info's train_* count the fitting rows."""
    from pool_classifier.model.training import Split, split_keys

    times, ties, _ = split_keys(rows, seed)
    labels = rows["label"].to_numpy()
    calibrate_rows = holdout(times, ties, labels, split.train, config.calibration_fraction,
                             config.min_calibration_positives)
    fit = split.train & ~calibrate_rows
    first = int(times[calibrate_rows].min())
    import datetime as dt

    info = {
        **split.info,
        "train_rows": int(fit.sum()),
        "train_positives": int(labels[fit].sum()),
        "calibration_rows": int(calibrate_rows.sum()),
        "calibration_positives": int(labels[calibrate_rows].sum()),
        "calibration_from_utc": dt.datetime.fromtimestamp(first, dt.timezone.utc).isoformat(),
    }
    return Split(fit, split.evaluate, info, calibrate_rows)


def calibrate_candidate(model, candidate, rows, split, weight: float, population: str, config) -> tuple[dict, dict, np.ndarray]:
    """The calibration record (metadata `calibration`), the metrics at its threshold on the
    evaluation rows (metadata `metrics`) and those rows' calibrated probabilities, for the fitted
    `model` of `candidate` on the `split` of calibration_split. `config`: the TrainConfig."""
    from pool_classifier.model.evaluation import classification_metrics
    from pool_classifier.model.training import features_matrix, pool_names

    labels = rows["label"].to_numpy()
    x = features_matrix(rows, candidate.features)
    record, calibrated = calibrate(
        model, x[split.calibrate], labels[split.calibrate], x[split.evaluate], labels[split.evaluate], weight,
        config.calibration, population,
    )
    metrics = classification_metrics(labels[split.evaluate], calibrated, record["decision"]["threshold"],
                                      pool_names(rows)[split.evaluate])
    return record, metrics, calibrated
