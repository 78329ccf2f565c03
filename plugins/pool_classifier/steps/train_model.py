"""train_model: fit the candidates on the day's training set, compare the best with the
champion on the same evaluation rows, promote it or not, and save the version in the
registry with its report.

Training set: `features/training_features/dt=<ds>`, made by the features job from the whole
state: every labelled pool address with features (positives) and a seeded random sample of
the other addresses (negatives, ~100 per positive; `negatives_per_positive` here can thin
them further, seeded). How the candidates are fitted and compared: `model/training.py`; how the
saved version's score is calibrated (on the latest training rows, held out of the fit) and its
threshold chosen for a target precision (on the evaluation rows): `model/calibration.py`.
The version is saved as `<candidate>-<ds>` (`model/registry.py`); same data and
configuration ⇒ the same version, byte for byte.

    python -m pool_classifier.steps.train_model --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model import calibration, registry
from pool_classifier.model.training import (
    APART,
    TrainConfig,
    TrainingDataError,
    compare_with_champion,
    decide,
    explain,
    fit_candidates,
    per_kind,
    prepare_rows,
    time_split,
    version_metadata,
)
from pool_classifier.targets import Target, current_target

log = logging.getLogger(__name__)


def training_set(target: Target, ds: str, config: TrainConfig = TrainConfig()):
    """The day's training rows sorted by address; negatives thinned if the config says so."""
    folder = datasets.features_dir(target, "training_features", ds)
    try:
        rows = atomic.read_frame(folder)
    except FileNotFoundError as exc:
        raise TrainingDataError(f"no training set at {folder}: run build_features for {ds} first.") from exc
    return prepare_rows(rows, folder, ds, config)


def champion_before(target: Target, ds: str):
    """The champion in force before `ds`: its version loaded, a record of why it cannot load, or None."""
    entry = registry.champion_entry(registry.read_promotions(target), ds, before=True)
    if entry is None:
        return None
    try:
        return registry.load_version(target, entry["version"])
    except (registry.ModelMismatchError, registry.ModelNotFoundError) as exc:
        log.warning("champion %s cannot be loaded: %s", entry["version"], exc)
        return {"version": entry["version"], "error": str(exc)}


def negative_weight(target: Target, ds: str, rows) -> tuple[float, str]:
    """How many addresses of the state each sampled negative stands for, and which population the
    calibrated probability is of (model/calibration.py); 1 and "training set" without a state."""
    from pool_classifier.io import versioned

    location = datasets.state_dir(target, "address_state", ds)
    # A damaged pointer raises (PointerError names it): the state itself would then be unusable.
    pointer = versioned.read_pointer(versioned.for_location(location), location)
    addresses = (pointer or {}).get("meta", {}).get("addresses")
    if not addresses:
        log.warning("no address state with its size at %s: calibrated on the training set's own mix "
                    "(its negatives a sample: the probabilities overstate a pool's)", location)
        return 1.0, "training set"
    positives = int(rows["label"].sum())
    # Labelled rows of other kinds (coinbase miners) are neither sampled negatives nor negatives
    # of the population: every one of them is in the training set, none is ever calibrated on.
    apart = int(rows[APART].sum()) if APART in rows.columns else 0
    weight = calibration.negative_weight(len(rows) - positives - apart, int(addresses) - positives - apart)
    return weight, f"address state of {ds} ({int(addresses):,} addresses)"


def _in_bucket(target: Target, path: str) -> str:
    """Relative to the bucket, so that a copied registry still says the same."""
    return path[len(target.bucket):].lstrip("/") if path.startswith(target.bucket) else path


def train_model(target: Target, ds: str, config: TrainConfig = TrainConfig()) -> dict:
    """Train, compare, save and maybe promote; returns what the task log and XCom need."""
    started = time.monotonic()
    rows = training_set(target, ds, config)
    split = calibration.calibration_split(rows, time_split(rows, config), config.calibration, config.seed)
    log.info("split: %s", split.info)
    fitted = fit_candidates(rows, split, config)
    best = fitted.best(config)
    version, model = registry.version_id(best.name, ds), fitted.models[best.name]
    weight, population = negative_weight(target, ds, rows)
    calibrated, calibrated_metrics, _ = calibration.calibrate_candidate(
        model, best, rows, split, weight, population, config)

    champion, champion_curves = champion_before(target, ds), None
    if isinstance(champion, registry.ModelVersion):
        champion, champion_curves = compare_with_champion(champion, rows, split, model, best, config, calibrated)
    challenger_pr_auc = (champion or {}).get("challenger_metrics", fitted.results[best.name]["metrics"])["pr_auc"]
    promoted, reason = decide(version, challenger_pr_auc, champion, config.promotion_margin, config.min_eval_positives)
    log.info("%s: %s", "PROMOTED" if promoted else "NOT PROMOTED", reason)

    importances, importance_rows, profiles = explain(model, best, rows, split, config)
    metadata = version_metadata(
        version=version, ds=ds, best=best, fitted=fitted, rows=rows, split=split,
        # Features cover every extracted day up to ds.
        data_window={"first_day": (datasets.extracted_days(target, ds) or [ds])[0], "last_day": ds},
        training_set=_in_bucket(target, datasets.features_dir(target, "training_features", ds)),
        champion=champion, promoted=promoted, reason=reason, importances=importances,
        importance_rows=importance_rows, profiles=profiles, config=config,
    )
    # The version decides on its calibrated probability, at the threshold chosen for the target precision.
    metadata.update(threshold=calibrated["decision"]["threshold"], metrics=calibrated_metrics, calibration=calibrated,
                    per_kind=per_kind(model, best, rows, split, config, calibrated))
    log.info("%s: %s", version, calibration.summary_line(metadata))
    path = _save(target, ds, version, model, profiles, metadata, rows, split, fitted, champion_curves,
                 {"version": version, "pr_auc": challenger_pr_auc, "reason": reason} if promoted else None)
    champion_now = registry.champion_version(target, ds)
    report = registry.report_path(target, version)
    log.info("model report: %s (%s)", report, registry.report_uri(target, version))
    log.info("champion for %s: %s; trained in %.1f s", ds, champion_now, time.monotonic() - started)
    return {
        "version": version,
        "path": path,
        "promoted": promoted,
        "reason": reason,
        "champion": champion_now,
        "metrics": calibrated_metrics,
        "calibration": {k: v for k, v in calibrated.items() if not k.startswith("reliability")},
        "candidates": {name: c["metrics"] for name, c in fitted.results.items()},
        "champion_metrics": champion["metrics"] if champion and "metrics" in champion else None,
        "challenger_metrics_vs_champion": champion.get("challenger_metrics") if champion else None,
        "report": report,
        "report_uri": registry.report_uri(target, version),
        "seconds": round(time.monotonic() - started, 1),
        "fit_seconds": fitted.fit_seconds,
    }


def _save(target, ds, version, model, profiles, metadata, rows, split, fitted, champion_curves, promotion) -> str:
    """The version folder with its report, then the day's promotion decision."""
    from pool_classifier.model import report as model_report

    def write_report(folder):
        model_report.write_report(
            folder, metadata, eval_labels=rows["label"].to_numpy()[split.evaluate],
            eval_scores=fitted.eval_scores, champion_curves=champion_curves,
        )

    path = registry.save_version(target, version, model, profiles, metadata, write_report)
    registry.record_decision(target, ds, promotion)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the pool-address classifier on one day.")
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = train_model(current_target(), args.ds)
    print(json.dumps({k: result[k] for k in ("version", "promoted", "reason", "champion", "report")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
