"""Address behaviour profiles (k-means clusters) and an anomaly score per address.

Fitted at training time on the training set (every pool address plus a seeded random
sample of the others), saved with the model version, applied to every scored address.

* Profiles: k-means on the behaviour features after a signed log (counts and satoshi values
  span many orders of magnitude) and standardisation; k is the one with the best silhouette
  among `k_min..k_max` (silhouette on a seeded sample), and each profile is described in
  words by the feature means that set it apart most.
* Anomalies: an isolation forest on the same transformed features; `anomaly_score` is its
  negated score (higher = more unusual); `is_anomaly` marks the scores above the training
  set's (1 − anomaly_share) quantile.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ProfileConfig:
    k_min: int = 2
    k_max: int = 8
    # Rows the clusters and the forest are fitted on, and the silhouette is measured on
    # (seeded samples beyond these sizes: silhouette costs rows²).
    fit_rows: int = 50_000
    silhouette_rows: int = 3_000
    anomaly_share: float = 0.01
    describe_top: int = 3


@dataclass
class Profiles:
    """The fitted profile models, and what the report says of them."""

    features: list[str]
    scaler: object
    kmeans: object
    forest: object
    anomaly_threshold: float
    k: int
    silhouette: dict[int, float]
    descriptions: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-able: k, silhouettes, and each profile's size, pool share and description."""
        return {
            "features": self.features,
            "k": self.k,
            "silhouette": {str(k): v for k, v in self.silhouette.items()},
            "anomaly_threshold": self.anomaly_threshold,
            "profiles": self.descriptions,
        }


def _transform(frame, features: list[str]) -> np.ndarray:
    x = frame[features].astype("float64").to_numpy()
    return np.sign(x) * np.log1p(np.abs(x))


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# A side without flows has every feature of that side 0: one word says it all.
_SIDES = (("has_spent", "input", "receive-only"), ("has_received", "output", "spends only (no ordinary receipts)"))


def _describe(frame, features, clusters, k, labels, top: int) -> list[dict]:
    """Each profile's share, share of known pools, and the feature means that set it apart."""
    x = _transform(frame, features)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    raw = frame[features].astype("float64")
    overall = raw.mean(axis=0)
    out = []
    for c in range(k):
        rows = clusters == c
        z = (x[rows].mean(axis=0) - mean) / std
        means = raw[rows].mean(axis=0)
        words, skip = [], set()
        for indicator, side, word in _SIDES:
            if indicator in features and means[indicator] <= 0.05:
                words.append(word)
                skip |= {f for f in features if side in f or f.startswith("has_")}
        # Ranked by how far the profile sits from the rest (log scale); described by the means
        # themselves. The side indicators are said in words above, or not at all.
        candidates = [i for i in range(len(features)) if features[i] not in skip and not features[i].startswith("has_")]
        order = sorted(candidates, key=lambda i: (-abs(z[i]), features[i]))[:top]
        words += [
            f"{'high' if means.iloc[i] > overall.iloc[i] else 'low'} {features[i]} "
            f"({_number(means.iloc[i])} vs {_number(overall.iloc[i])} overall)"
            for i in order
        ]
        share = float(rows.mean())
        pools = float(labels[rows].mean()) if labels is not None and rows.any() else None
        text = f"{share:.1%} of addresses"
        if pools is not None:
            text += f", {pools:.1%} of them known pools"
        out.append({
            "profile": c,
            "share": share,
            "pool_share": pools,
            "feature_means": {f: float(means.iloc[i]) for i, f in enumerate(features)},
            "description": text + ": " + "; ".join(words),
        })
    return out


def fit_profiles(frame, features: list[str], seed: int, config: ProfileConfig = ProfileConfig(), labels=None) -> Profiles:
    """Fit the profiles and the anomaly forest on `frame` (rows sorted by address)."""
    from sklearn.cluster import KMeans
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    rows = _sample(len(frame), config.fit_rows, seed)
    fit = frame.iloc[rows]
    fit_labels = None if labels is None else np.asarray(labels)[rows]
    x = _transform(fit, features)
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    sil_rows = _sample(len(xs), config.silhouette_rows, seed + 1)
    k_max = min(config.k_max, len(np.unique(xs, axis=0)) - 1)
    if k_max < config.k_min:
        raise ValueError(
            f"profiles need at least {config.k_min + 1} distinct rows of {features}; got {len(np.unique(xs, axis=0))}"
        )
    # One thread: k-means sums centres per thread, and the order of those sums would make
    # the clusters depend on scheduling.
    with threadpool_limits(1):
        fitted, silhouette = {}, {}
        for k in range(config.k_min, k_max + 1):
            km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(xs)
            fitted[k] = km
            silhouette[k] = float(silhouette_score(xs[sil_rows], km.labels_[sil_rows]))
        best = max(silhouette, key=lambda k: (silhouette[k], -k))
        forest = IsolationForest(n_estimators=100, random_state=seed, n_jobs=1).fit(xs)
        scores = -forest.score_samples(xs)
    threshold = float(np.quantile(scores, 1 - config.anomaly_share))
    profiles = Profiles(
        features=list(features), scaler=scaler, kmeans=fitted[best], forest=forest,
        anomaly_threshold=threshold, k=best, silhouette=silhouette,
    )
    profiles.descriptions = _describe(
        fit, features, fitted[best].labels_, best, fit_labels, config.describe_top
    )
    return profiles


def apply_profiles(profiles: Profiles, frame):
    """Per row of `frame`: `profile` (int32), `anomaly_score` (float64), `is_anomaly` (bool)."""
    import pandas as pd
    from threadpoolctl import threadpool_limits

    if len(frame) == 0:
        return pd.DataFrame({
            "profile": pd.Series([], dtype="int32"),
            "anomaly_score": pd.Series([], dtype="float64"),
            "is_anomaly": pd.Series([], dtype="bool"),
        })
    with threadpool_limits(1):
        xs = profiles.scaler.transform(_transform(frame, profiles.features))
        clusters = profiles.kmeans.predict(xs).astype("int32")
        scores = -profiles.forest.score_samples(xs)
    return pd.DataFrame(
        {"profile": clusters, "anomaly_score": scores, "is_anomaly": scores > profiles.anomaly_threshold},
        index=frame.index,
    )
