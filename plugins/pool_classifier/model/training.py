"""Training the pool-address classifier: the candidates, the time-based split, fitting, the
comparison with the champion and the promotion rule, and the metadata of a version.

Pure functions of the training rows (a pandas DataFrame) and the models: reading the day's
training set and writing the registry are the step's (`steps/train_model.py`).

Split by time: addresses first seen before a cut-off train, the others evaluate. The cut-off
is the first-seen time that leaves the latest `eval_fraction` of the positives for evaluation;
ties at the same time are ordered by a seeded hash of the address.

Candidates, on that same split: the original random forest (200 trees, balanced class weights,
the 26 original features) and a histogram gradient boosting on the behaviour features (the 30
features without the four calendar months: a later evaluation period has later months by
construction). The best on the evaluation rows is the run's challenger; it becomes champion
only if it beats the champion in force before the day by `promotion_margin` of PR-AUC on the
evaluation rows neither has been trained on.

The latest training rows are held out of the fit to calibrate the saved version's score, and
its threshold is chosen on the evaluation rows (`model/calibration.py`, from `steps/train_model.py`).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from pool_classifier.errors import DataError
from pool_classifier.model import registry
from pool_classifier.model.calibration import CalibrationConfig
from pool_classifier.model.drift import CALENDAR_FEATURES, DriftConfig
from pool_classifier.model.drift import reference as drift_reference
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FEATURE_VERSION, FIRST_SEEN, ORIGINAL_FEATURES
from pool_classifier.model.profiles import ProfileConfig

log = logging.getLogger(__name__)

# How each address behaves, not when: the features without the calendar months.
BEHAVIOUR_FEATURES: tuple[str, ...] = tuple(f for f in FEATURE_COLUMNS if f not in CALENDAR_FEATURES)


class TrainingDataError(DataError, RuntimeError):
    """The day's data cannot train a model (no positives, too few rows, a useless split…)."""


@dataclass(frozen=True)
class Candidate:
    """One model to train: a name (the version prefix), a scikit-learn estimator, its features."""

    name: str
    estimator: str
    features: tuple[str, ...]
    params: dict = field(default_factory=dict)

    def build(self, seed: int, threads: int):
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

        classes = {
            "RandomForestClassifier": RandomForestClassifier,
            "HistGradientBoostingClassifier": HistGradientBoostingClassifier,
        }
        if self.estimator not in classes:
            raise ValueError(f"candidate {self.name}: unknown estimator {self.estimator!r}; known: {sorted(classes)}")
        params = {**self.params, "random_state": seed}
        if self.estimator == "RandomForestClassifier":
            params["n_jobs"] = threads
        return classes[self.estimator](**params)


# The original classifier.
BASELINE = Candidate(
    "rf", "RandomForestClassifier", ORIGINAL_FEATURES, {"n_estimators": 200, "class_weight": "balanced"}
)
CHALLENGER = Candidate(
    "hgb", "HistGradientBoostingClassifier", BEHAVIOUR_FEATURES,
    {"class_weight": "balanced", "max_iter": 200, "learning_rate": 0.1},
)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    # Share of the positives (the latest first seen) held out to evaluate.
    eval_fraction: float = 0.25
    # The candidates' metrics compare their raw scores at it (balanced class weights: 0.5 is the
    # point where the weighted classes are equally likely). The saved version decides at the
    # threshold chosen on its calibrated probability (calibration.target_precision).
    threshold: float = 0.5
    # None: every negative of the training set (the features job samples ~100 per positive).
    negatives_per_positive: float | None = None
    candidates: tuple[Candidate, ...] = (BASELINE, CHALLENGER)
    # PR-AUC points a challenger must gain over the champion to replace it.
    promotion_margin: float = 0.01
    min_positives: int = 10
    min_eval_positives: int = 3
    # Train every N days (1: daily, the demo; 7: weekly on Mondays, sensible in production).
    retrain_every_days: int = 1
    # Threads of the random forest's fit (joblib threads).
    threads: int = 2
    # OpenMP threads of the gradient boosting's fit. One: OpenMP threads spin while they wait
    # for each other, and on shared cores (other tasks, Spark) two were measured slower than one.
    openmp_threads: int = 1
    importance_repeats: int = 5
    # Permutation importance re-scores the evaluation rows (features × repeats) times: beyond
    # this many rows it uses every evaluation positive and a seeded sample of the others.
    importance_rows: int = 20_000
    profiles: ProfileConfig = ProfileConfig()
    drift: DriftConfig = DriftConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    # The training target: the label kinds that are positives (build_features' `label_kind`).
    # Labelled addresses of the other kinds (by default the miners paid directly in coinbases)
    # are neither positives nor negatives: left out of training and evaluation, reported apart.
    positive_kinds: tuple[str, ...] = ("pool_wallet",)
    # Also fit the baseline on the original's labels (tags only, ≥ 20 coinbase outputs, no
    # kinds) on the same time split, for the report's "label rules" comparison (one more fit).
    original_rule_variant: bool = True


def _address_hash(addresses, seed: int) -> np.ndarray:
    """A seeded 64-bit hash per address: random-looking, the same on every run."""
    import pandas as pd

    return pd.util.hash_pandas_object(addresses, index=False, hash_key=f"{seed:016d}"[-16:]).to_numpy()


def prepare_rows(rows, where: str, ds: str, config: TrainConfig):
    """The training rows checked and sorted by address; negatives thinned if the config says so.

    `where` names the training set in errors (its folder).
    """
    needed = {"address", "label", "pool_name", *FEATURE_COLUMNS}
    missing = sorted(needed - set(rows.columns))
    if missing:
        raise TrainingDataError(f"the training set {where} lacks columns {missing}; rebuild the features of {ds}.")
    positives = int(rows["label"].sum())
    if positives < config.min_positives:
        raise TrainingDataError(
            f"only {positives} labelled pool addresses have features on {ds}; at least "
            f"{config.min_positives} are needed to train. Build more days, or lower --min-coinbase-outputs."
        )
    rows = rows.sort_values("address", kind="stable").reset_index(drop=True)
    rows = select_target(rows, config)
    positives = int(rows["label"].sum())
    if positives < config.min_positives:
        raise TrainingDataError(
            f"only {positives} addresses of the target kinds {list(config.positive_kinds)} have features on {ds}; "
            f"at least {config.min_positives} are needed to train. Build more days, or widen positive_kinds."
        )
    if config.negatives_per_positive is not None:
        negatives = np.flatnonzero((rows["label"].to_numpy() == 0) & ~rows[APART].to_numpy())
        keep = min(len(negatives), int(round(config.negatives_per_positive * positives)))
        order = np.argsort(_address_hash(rows["address"].iloc[negatives], config.seed + 1), kind="stable")
        kept = np.sort(np.concatenate([np.flatnonzero((rows["label"].to_numpy() == 1) | rows[APART].to_numpy()),
                                       negatives[order[:keep]]]))
        rows = rows.iloc[kept].reset_index(drop=True)
    return rows


def first_seen(rows) -> tuple[np.ndarray, str]:
    """Unix seconds of each address's first activity, and the column it comes from.

    `first_seen_time` when the features have it; else the first month with a flow (the
    calendar features are 0 for a side without flows), a coarser key whose ties the seeded
    hash orders.
    """
    if FIRST_SEEN in rows.columns:
        return rows[FIRST_SEEN].astype("int64").to_numpy(), FIRST_SEEN
    months = rows[["output_month_min", "input_month_min"]].astype("float64").to_numpy()
    months[months == 0] = np.nan
    first = np.nanmin(np.where(np.isnan(months), np.inf, months), axis=1)
    if np.isinf(first).any():
        bad = rows["address"][np.isinf(first)].head(3).tolist()
        raise TrainingDataError(f"addresses {bad} have neither a received nor a spent month; rebuild the features.")
    return first.astype("int64"), f"min(output_month_min, input_month_min) ({FIRST_SEEN} absent)"


def split_keys(rows, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    times, key = first_seen(rows)
    return times, _address_hash(rows["address"], seed), key


@dataclass
class Split:
    train: np.ndarray  # boolean masks over the rows
    evaluate: np.ndarray
    info: dict
    # The rows held out of the training window to fit the calibration map (model/calibration.py).
    calibrate: np.ndarray | None = None


def _at_or_after(times, ties, cutoff_time: int, cutoff_tie: int) -> np.ndarray:
    return (times > cutoff_time) | ((times == cutoff_time) & (ties >= np.uint64(cutoff_tie)))


def time_split(rows, config: TrainConfig) -> Split:
    """Train on the addresses first seen before the cut-off, evaluate on the others."""
    times, ties, key = split_keys(rows, config.seed)
    if key != FIRST_SEEN:
        log.warning("split on %s: the training set predates %s; rebuild the features for a finer split", key, FIRST_SEEN)
    labels = rows["label"].to_numpy()
    order = np.lexsort((ties, times))
    positive_positions = np.flatnonzero(labels[order] == 1)
    n_eval = max(config.min_eval_positives, int(np.ceil(len(positive_positions) * config.eval_fraction)))
    if len(positive_positions) - n_eval < 1:
        raise TrainingDataError(
            f"{len(positive_positions)} positives cannot be split into training and {n_eval} for evaluation; "
            "build more days."
        )
    first_eval = order[positive_positions[len(positive_positions) - n_eval]]
    cutoff_time, cutoff_tie = int(times[first_eval]), int(ties[first_eval])
    evaluate = _at_or_after(times, ties, cutoff_time, cutoff_tie)
    train = ~evaluate
    if APART in rows.columns:  # labelled, but not of the target's kinds: neither trained on nor evaluated
        apart = rows[APART].to_numpy(dtype=bool)
        train, evaluate = train & ~apart, evaluate & ~apart
    info = {
        "key": key,
        "seed": config.seed,
        "cutoff_time": cutoff_time,
        "cutoff_utc": dt.datetime.fromtimestamp(cutoff_time, dt.timezone.utc).isoformat(),
        # The hash of the first evaluated address: ties at the cut-off time at or above it evaluate.
        "cutoff_tiebreak": str(cutoff_tie),
        "train_rows": int(train.sum()),
        "train_positives": int(labels[train].sum()),
        "eval_rows": int(evaluate.sum()),
        "eval_positives": int(labels[evaluate].sum()),
        "ties_at_cutoff": int((times == cutoff_time).sum()),
    }
    return Split(train, evaluate, info)


def unseen_by(rows, split_info: dict) -> np.ndarray:
    """Rows that a model trained with `split_info` did not train on (at or after its cut-off)."""
    times, ties, key = split_keys(rows, split_info["seed"])
    if key != split_info["key"]:
        # Another key: only what lies after its cut-off time is surely unseen.
        return times > split_info["cutoff_time"]
    return _at_or_after(times, ties, split_info["cutoff_time"], int(split_info["cutoff_tiebreak"]))


# ------------------------------------------------------------------ fit and compare


def features_matrix(rows, features) -> np.ndarray:
    return rows[list(features)].astype("float64").to_numpy()


def predict_scores(model, x) -> np.ndarray:
    """Probability of the pool class, computed the same way on every run (one thread)."""
    from threadpoolctl import threadpool_limits

    if len(x) == 0:
        return np.zeros(0)
    with threadpool_limits(1):
        return model.predict_proba(x)[:, 1]


def fit_candidate(candidate: Candidate, rows, train_mask, config: TrainConfig):
    """Fit on the training rows; prediction then runs on one thread (reproducible sums)."""
    from threadpoolctl import threadpool_limits

    model = candidate.build(config.seed, config.threads)
    with threadpool_limits(config.openmp_threads):
        model.fit(features_matrix(rows[train_mask], candidate.features), rows["label"].to_numpy()[train_mask])
    if hasattr(model, "n_jobs"):
        model.set_params(n_jobs=1)
    return model


def importance_sample(eval_rows, eval_labels, config: TrainConfig) -> np.ndarray:
    """Positions of the evaluation rows permutation importance uses (all, up to importance_rows)."""
    if len(eval_rows) <= config.importance_rows:
        return np.arange(len(eval_rows))
    positives = np.flatnonzero(eval_labels == 1)
    negatives = np.flatnonzero(eval_labels == 0)
    keep = max(0, config.importance_rows - len(positives))
    order = np.argsort(_address_hash(eval_rows["address"].iloc[negatives], config.seed + 2), kind="stable")
    return np.sort(np.concatenate([positives, negatives[order[:keep]]]))


def decide(challenger: str, challenger_pr_auc: float, champion: dict | None, margin: float, min_positives: int) -> tuple[bool, str]:
    """The promotion rule: (promote?, why), from PR-AUCs on the same unseen rows."""
    if champion is None:
        return True, f"no champion before this day: {challenger} becomes the first champion"
    name = champion["version"]
    if champion.get("error"):
        return True, f"champion {name} cannot score any more ({champion['error']}); {challenger} replaces it"
    if champion["positives"] < min_positives:
        return False, (
            f"only {champion['positives']} evaluation positives are unseen by both {challenger} and the "
            f"champion {name} (at least {min_positives} needed to compare): the champion stays"
        )
    a, b = challenger_pr_auc, champion["metrics"]["pr_auc"]
    if a - b >= margin:
        return True, f"{challenger} beats the champion {name}: PR-AUC {a:.4f} vs {b:.4f} (margin {margin})"
    return False, (
        f"{challenger} does not beat the champion {name} by the margin: PR-AUC {a:.4f} vs {b:.4f} "
        f"(needs ≥ {b + margin:.4f}); the champion stays"
    )


@dataclass
class Candidates:
    """Every candidate fitted on the training rows and scored on the evaluation rows."""

    models: dict
    results: dict  # name -> {"estimator", "features", "metrics"}
    eval_scores: dict
    fit_seconds: dict

    def best(self, config: TrainConfig) -> Candidate:
        """The best PR-AUC on the evaluation rows; ties go to the earlier candidate (the baseline)."""
        return max(config.candidates,
                   key=lambda c: (self.results[c.name]["metrics"]["pr_auc"], -config.candidates.index(c)))


def fit_candidates(rows, split: Split, config: TrainConfig) -> Candidates:
    """Fit every candidate on the training rows; metrics on the evaluation rows."""
    from pool_classifier.model.evaluation import classification_metrics

    if not config.candidates:
        raise ValueError("TrainConfig.candidates is empty: nothing to train")
    eval_rows = rows[split.evaluate]
    eval_labels = rows["label"].to_numpy()[split.evaluate]
    eval_pools = pool_names(rows)[split.evaluate]
    fitted = Candidates({}, {}, {}, {})
    for candidate in config.candidates:
        t0 = time.monotonic()
        model = fit_candidate(candidate, rows, split.train, config)
        fitted.fit_seconds[candidate.name] = round(time.monotonic() - t0, 1)
        scores = predict_scores(model, features_matrix(eval_rows, candidate.features))
        metrics = classification_metrics(eval_labels, scores, config.threshold, eval_pools)
        fitted.models[candidate.name], fitted.eval_scores[candidate.name] = model, scores
        fitted.results[candidate.name] = {
            "estimator": candidate.estimator, "features": list(candidate.features), "metrics": metrics,
        }
        log.info("candidate %s: PR-AUC %.4f, recall@95%%P %.3f (fit in %.1f s)", candidate.name,
                 metrics["pr_auc"], metrics["recall_at_95_precision"], time.monotonic() - t0)
    return fitted


def pool_names(rows) -> np.ndarray:
    """Each row's pool (None for a negative)."""
    return rows["pool_name"].where(rows["label"] == 1, None).to_numpy()


def compare_with_champion(champion: registry.ModelVersion, rows, split: Split, challenger_model,
                          challenger: Candidate, config: TrainConfig,
                          challenger_calibration: dict | None = None) -> tuple[dict, dict]:
    """The champion and the challenger on the evaluation rows neither was trained on."""
    from pool_classifier.model.calibration import probabilities
    from pool_classifier.model.evaluation import classification_metrics

    rows_mask = split.evaluate & unseen_by(rows, champion.metadata["split"])
    labels = rows["label"].to_numpy()[rows_mask]
    pools = pool_names(rows)[rows_mask]
    compared = rows[rows_mask]
    # Each at its own threshold on its own score: calibrated when the version is (model/calibration.py).
    champion_scores = probabilities(champion.model, champion.metadata.get("calibration"),
                                    features_matrix(compared, champion.features))
    challenger_scores = probabilities(challenger_model, challenger_calibration,
                                      features_matrix(compared, challenger.features))
    challenger_threshold = challenger_calibration["decision"]["threshold"] if challenger_calibration \
        else config.threshold
    result = {
        "version": champion.version,
        "rows": int(rows_mask.sum()),
        "positives": int(labels.sum()),
        "metrics": classification_metrics(labels, champion_scores, champion.threshold, pools),
        "challenger_metrics": classification_metrics(labels, challenger_scores, challenger_threshold, pools),
    }
    curves = {"labels": labels, "champion": champion_scores, "challenger": challenger_scores}
    return result, curves


def explain(model, candidate: Candidate, rows, split: Split, config: TrainConfig):
    """Permutation importances on (a sample of) the evaluation rows, and the address profiles."""
    from pool_classifier.model.evaluation import permutation_importances
    from pool_classifier.model.profiles import fit_profiles

    eval_rows = rows[split.evaluate]
    eval_labels = rows["label"].to_numpy()[split.evaluate]
    sample = importance_sample(eval_rows, eval_labels, config)
    importances = permutation_importances(
        model, features_matrix(eval_rows.iloc[sample], candidate.features), eval_labels[sample],
        list(candidate.features), config.seed, config.importance_repeats,
    )
    profiles = fit_profiles(rows, list(BEHAVIOUR_FEATURES), config.seed, config.profiles,
                            labels=rows["label"].to_numpy())
    importance_rows = {"rows": int(len(sample)), "positives": int(eval_labels[sample].sum())}
    return importances, importance_rows, profiles


def version_metadata(*, version: str, ds: str, best: Candidate, fitted: Candidates, rows, split: Split,
                     data_window: dict, training_set: str, champion: dict | None, promoted: bool, reason: str,
                     importances: dict, importance_rows: dict, profiles, config: TrainConfig) -> dict:
    """Everything a version says of itself (metadata.json)."""
    positives = rows[rows["label"] == 1]
    champion_before = champion["version"] if champion else None
    return {
        "version": version,
        "candidate": best.name,
        "model": best.estimator,
        "trained_for": ds,
        "data": {
            "window": data_window,
            "training_set": training_set,
            "rows": int(len(rows)),
            "positives": int(len(positives)),
            "negatives_sampled": int(len(rows) - len(positives) - int(rows[APART].sum() if APART in rows else 0)),
            "positives_per_pool": {
                str(k): int(v) for k, v in positives["pool_name"].value_counts().sort_index().items()
            },
        },
        "split": split.info,
        "feature_version": FEATURE_VERSION,
        "features": list(best.features),
        "threshold": config.threshold,
        "params": {**best.params, "random_state": config.seed},
        "config": config_record(config),
        "metrics": fitted.results[best.name]["metrics"],
        "candidates": fitted.results,
        "importances": importances,
        "importance_rows": importance_rows,
        "champion": champion,
        "promotion": {
            "promoted": promoted,
            "reason": reason,
            "margin": config.promotion_margin,
            "champion_before": champion_before,
            "champion_after": version if promoted else champion_before,
        },
        "profiles": profiles.summary(),
        "drift_reference": drift_reference(rows[split.train], FEATURE_COLUMNS, config.drift.bins),
        "target": target_record(rows, config),
        "label_rules": label_rules(rows, split, fitted, config),
        "git_commit": registry.git_commit(),
        "libraries": registry.library_versions(),
        "pickle_layout": registry.PICKLE_LAYOUT,
    }


def config_record(config: TrainConfig) -> dict:
    record = asdict(config)
    record["candidates"] = [
        {"name": c.name, "estimator": c.estimator, "features": len(c.features), "params": c.params}
        for c in config.candidates
    ]
    return record




# ------------------------------------------------------------------ the target and the label kinds

# A training row labelled, but not of the target's kinds (prepare_rows adds it).
APART = "_apart"
# The kinds of a training set built before label kinds: every label was a coinbase or list label.
UNKINDED = "unkinded"


def select_target(rows, config: TrainConfig):
    """The training target from the rows' `label_kind`: `label` 1 for the target's kinds; the
    other labelled rows flagged `_apart` (label 0, left out of training and evaluation). A
    training set without `label_kind` (built before the kinds) keeps its labels, all one kind."""
    rows = rows.copy()
    labelled = rows["label"].to_numpy() == 1
    if "label_kind" not in rows.columns:
        rows["label_kind"] = np.where(labelled, UNKINDED, None)
        rows[APART] = False
        return rows
    kinds = rows["label_kind"].astype(object)
    positive = labelled & kinds.isin(config.positive_kinds).to_numpy()
    rows["label"] = positive.astype(int)
    rows[APART] = labelled & ~positive
    return rows


def target_record(rows, config: TrainConfig) -> dict:
    """What the model was trained to find, and how many rows of each kind the training set held."""
    kinds = rows["label_kind"].where(rows["label_kind"].notna(), "unlabelled")
    return {
        "positive_kinds": list(config.positive_kinds),
        "rows_per_kind": {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()},
        "left_out": int(rows[APART].sum()),
    }


def _score_summary(scores: np.ndarray, threshold: float) -> dict:
    if len(scores) == 0:
        return {"rows": 0, "predicted_pool": 0, "share_predicted": None, "quantiles": {}}
    quantiles = {f"p{int(q * 100)}": float(np.quantile(scores, q)) for q in (0.1, 0.5, 0.9)}
    predicted = int((scores >= threshold).sum())
    return {"rows": int(len(scores)), "predicted_pool": predicted, "share_predicted": predicted / len(scores),
            "quantiles": quantiles}


def per_kind(model, candidate: Candidate, rows, split: Split, config: TrainConfig,
             calibration: dict | None = None) -> dict:
    """The model's scores per label kind, at its threshold: the target's kinds on the evaluation
    rows (the share predicted is their recall), every other labelled kind on all its rows (none
    was trained on), and the evaluation negatives (the share predicted is the false-positive rate).
    With the version's `calibration` record (model/calibration.py): on its calibrated probability
    at its chosen threshold, as the version decides; else on the raw score at config.threshold."""
    from pool_classifier.model.calibration import probabilities

    threshold = calibration["decision"]["threshold"] if calibration else config.threshold

    def scored(mask):
        return probabilities(model, calibration, features_matrix(rows[mask], candidate.features))

    kinds = rows["label_kind"].astype(object).to_numpy()
    apart = rows[APART].to_numpy(dtype=bool)
    out = {}
    for kind in sorted({k for k in kinds if isinstance(k, str)}):
        of_kind = kinds == kind
        held_apart = bool(apart[of_kind].any())
        mask = of_kind if held_apart else of_kind & split.evaluate
        out[kind] = {"target": not held_apart, "scope": "all rows" if held_apart else "evaluation rows",
                     **_score_summary(scored(mask), threshold)}
    negatives = split.evaluate & (rows["label"].to_numpy() == 0)
    out["unlabelled"] = {"target": False, "scope": "evaluation rows",
                         **_score_summary(scored(negatives), threshold)}
    return out


ORIGINAL_RULE = "original (tags only, ≥ 20 coinbase outputs, no kinds)"


def label_rules(rows, split: Split, fitted: Candidates, config: TrainConfig) -> dict:
    """The baseline under each label rule, on the same time split: the fixed labels (the run's
    target; the baseline candidate's metrics), and, when the training set carries
    `original_label`, the original's rule: the baseline fitted on its labels over the rows first
    seen before the cut-off less the calibration slice, the fixed candidates' fitting rows
    (coinbase miners included, they were positives then), evaluated on
    the rows after it under its own labels and on the fixed target's evaluation rows."""
    from pool_classifier.model.evaluation import classification_metrics

    baseline = config.candidates[0]
    rules = {"fixed": {"rule": f"fixed (positive kinds: {', '.join(config.positive_kinds)})",
                       "positives": int(rows["label"].sum()), "candidate": baseline.name,
                       "metrics": fitted.results[baseline.name]["metrics"]}}
    if not config.original_rule_variant or "original_label" not in rows.columns:
        return rules
    original = rows.assign(label=rows["original_label"].astype(int))
    after = unseen_by(rows, split.info)
    # The rows the fixed candidates fit on: before the cut-off, less the calibration slice.
    fit = ~after if split.calibrate is None else ~after & ~split.calibrate
    labels = original["label"].to_numpy()
    entry = {"rule": ORIGINAL_RULE, "positives": int(labels.sum()), "candidate": baseline.name,
             "train_positives": int(labels[fit].sum())}
    if labels[fit].sum() == 0 or labels[fit].sum() == fit.sum():
        rules["original"] = {**entry, "metrics": None, "note": "no positives (or only positives) before the cut-off"}
        return rules
    model = fit_candidate(baseline, original, fit, config)
    scores = predict_scores(model, features_matrix(rows, baseline.features))
    entry["metrics"] = classification_metrics(labels[after], scores[after], config.threshold)
    target = rows["label"].to_numpy()
    entry["on_fixed_target"] = classification_metrics(target[split.evaluate], scores[split.evaluate],
                                                      config.threshold)
    rules["original"] = entry
    return rules
