"""Evaluation of a pool-address classifier on held-out rows: the metrics of the model report.

PR-AUC (average precision), precision and recall at the chosen threshold, recall at 95 %
precision, recall per pool, the confusion matrix, and permutation importances.
"""
from __future__ import annotations

import numpy as np

TARGET_PRECISION = 0.95


def recall_at_precision(y_true, scores, precision: float = TARGET_PRECISION) -> tuple[float, float | None]:
    """The highest recall reachable with at least `precision`, and the lowest threshold giving it.

    (0.0, None) when no threshold reaches that precision.
    """
    from sklearn.metrics import precision_recall_curve

    if int(np.sum(y_true)) == 0:
        return 0.0, None
    p, r, thresholds = precision_recall_curve(y_true, scores)
    # The last point (recall 0, precision 1) has no threshold.
    ok = np.flatnonzero(p[:-1] >= precision)
    if ok.size == 0:
        return 0.0, None
    best = ok[np.argmax(r[ok])]
    return float(r[best]), float(thresholds[best])


def classification_metrics(y_true, scores, threshold: float, pools=None) -> dict:
    """Every metric of the report for scores `scores` of rows labelled `y_true`.

    `pools` (the pool name of each row, None for non-pool rows) adds recall per pool.
    """
    from sklearn.metrics import average_precision_score, confusion_matrix

    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype="float64")
    predicted = (scores >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, predicted, labels=[0, 1]).ravel())
    recall95, threshold95 = recall_at_precision(y_true, scores)
    metrics = {
        "pr_auc": float(average_precision_score(y_true, scores)) if tp + fn else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "threshold": float(threshold),
        "recall_at_95_precision": recall95,
        "threshold_at_95_precision": threshold95,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "rows": int(len(y_true)),
        "positives": int(y_true.sum()),
    }
    if pools is not None:
        pools = np.asarray(pools, dtype=object)
        per_pool = {}
        for pool in sorted({p for p in pools[y_true == 1] if p is not None}):
            rows = (y_true == 1) & (pools == pool)
            per_pool[str(pool)] = {
                "positives": int(rows.sum()),
                "recall": float(predicted[rows].mean()),
            }
        metrics["per_pool_recall"] = per_pool
    return metrics


def permutation_importances(model, x, y_true, feature_names, seed: int, repeats: int) -> list[dict]:
    """Drop in average precision when each feature is shuffled, on the evaluation rows.

    Sorted by mean drop, largest first (ties by name, so the order is reproducible).
    """
    from sklearn.inspection import permutation_importance
    from threadpoolctl import threadpool_limits

    # One thread: the same sums on every run, and no waiting between threads on shared cores.
    with threadpool_limits(1):
        result = permutation_importance(
            model, x, y_true, scoring="average_precision", n_repeats=repeats, random_state=seed, n_jobs=1
        )
    rows = [
        {"feature": name, "mean": float(m), "std": float(s)}
        for name, m, s in zip(feature_names, result.importances_mean, result.importances_std)
    ]
    return sorted(rows, key=lambda row: (-row["mean"], row["feature"]))
