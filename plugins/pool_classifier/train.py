"""train: fit the pool-address classifier on the day's training set, and save it.

Training set: `features/training_features/dt=<ds>`, made by the features job from the
whole state: every labelled pool address that has features (positives) and a seeded
random sample of the other addresses (negatives, ~100 per positive). Model: the original random forest (200 trees, balanced class weights) on the
original 26 features, with a fixed seed. The model folder holds `model.joblib` and
`metadata.json` (data, feature list, params, metrics, library versions).

    python -m pool_classifier.train --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.feature_spec import FEATURE_VERSION, ORIGINAL_FEATURES
from pool_classifier.storage import publish_dir
from pool_classifier.targets import Target, current_target

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
LIBRARIES = ("scikit-learn", "joblib", "numpy", "pandas", "pyarrow")


class TrainingDataError(RuntimeError):
    """The day's data cannot train a model (no positives, too few rows…)."""


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    test_fraction: float = 0.25
    threshold: float = 0.5
    features: tuple[str, ...] = ORIGINAL_FEATURES
    model_params: dict = field(
        default_factory=lambda: {"n_estimators": 200, "class_weight": "balanced", "n_jobs": 2}
    )


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    versions = {name: version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def training_set(target: Target, ds: str):
    """The day's training rows (features, `label`, `pool_name`), sorted by address."""
    import pandas as pd

    rows = pd.read_parquet(datasets.features_dir(target, "training_features", ds))
    positives = int(rows["label"].sum())
    if positives < 10:
        raise TrainingDataError(
            f"only {positives} labelled pool addresses have features on {ds}; at least 10 are "
            "needed to train. Build more days, or lower --min-coinbase-outputs."
        )
    return rows.sort_values("address", kind="stable").reset_index(drop=True)


def fit_and_evaluate(train_rows, config: TrainConfig):
    """Seeded stratified split, fit, and metrics on the held-out part."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import average_precision_score, precision_score, recall_score
    from sklearn.model_selection import train_test_split

    x = train_rows[list(config.features)].astype("float64").to_numpy()
    y = train_rows["label"].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_fraction, random_state=config.seed, stratify=y
    )
    model = RandomForestClassifier(random_state=config.seed, **config.model_params)
    model.fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    predicted = (scores >= config.threshold).astype(int)
    metrics = {
        "pr_auc": float(average_precision_score(y_test, scores)),
        "precision": float(precision_score(y_test, predicted, zero_division=0)),
        "recall": float(recall_score(y_test, predicted, zero_division=0)),
        "threshold": config.threshold,
        "train_rows": int(len(y_train)),
        "train_positives": int(np.sum(y_train)),
        "test_rows": int(len(y_test)),
        "test_positives": int(np.sum(y_test)),
    }
    return model, metrics


def _in_bucket(target: Target, path: str) -> str:
    return path[len(target.bucket):].lstrip("/") if path.startswith(target.bucket) else path


def train_model(target: Target, ds: str, config: TrainConfig = TrainConfig()) -> dict:
    """Train on day `ds` and save the model as version `rf-<ds>`; returns the metadata."""
    import joblib

    rows = training_set(target, ds)
    model, metrics = fit_and_evaluate(rows, config)
    version = f"rf-{ds}"
    positives = rows[rows["label"] == 1]
    metadata = {
        "version": version,
        "model": "RandomForestClassifier",
        "trained_for": ds,
        "data": {
            # Features cover every extracted day up to ds.
            "window": {"first_day": (datasets.extracted_days(target, ds) or [ds])[0], "last_day": ds},
            # Relative to the bucket, so that a copied registry still says the same.
            "training_set": _in_bucket(target, datasets.features_dir(target, "training_features", ds)),
            "positives": int(len(positives)),
            "negatives_sampled": int(len(rows) - len(positives)),
            "positives_per_pool": {
                str(k): int(v) for k, v in positives["pool_name"].value_counts().sort_index().items()
            },
        },
        "feature_version": FEATURE_VERSION,
        "features": list(config.features),
        "config": {k: v for k, v in asdict(config).items() if k != "features"},
        "metrics": metrics,
        "libraries": library_versions(),
    }
    out = datasets.model_dir(target, version)
    with publish_dir(out) as tmp:
        joblib.dump(model, Path(tmp) / MODEL_FILE)
        (Path(tmp) / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    metadata["path"] = out
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the pool-address classifier on one day.")
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    metadata = train_model(current_target(), args.ds)
    print(json.dumps({k: metadata[k] for k in ("version", "metrics", "path")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
