"""The model registry: one folder per trained version, and the champion pointer.

Layout under `datasets.models_root(target)` (`<bucket>/models`):

    <version>/model.joblib      the classifier (scikit-learn, joblib)
    <version>/profiles.joblib   the address-profile clusters and the anomaly forest
    <version>/metadata.json     data window, split, features and their version, parameters,
                                metrics, the promotion decision, git commit, library versions,
                                the drift reference
    <version>/report.md, report.html, *.png   the model report of the training run
    champion.json               the promotions, oldest first: the champion for a day is the
                                last version promoted by a training run of that day or before

A version id is `<candidate>-<ds>` (e.g. `hgb-2024-03-02`): re-training a day with the same
data and configuration rewrites the same version with the same bytes. Loading a version
checks that its feature list and library versions match this code; a mismatch raises
`ModelMismatchError` saying what differs, rather than scoring with a model that may not
mean the same thing any more.
"""
from __future__ import annotations

import io
import json
import platform
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pool_classifier import datasets
from pool_classifier.datasets import PROJECT_ROOT
from pool_classifier.errors import DataError
from pool_classifier.io.atomic import replace_dir, write_text_atomically
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FEATURE_VERSION
from pool_classifier.targets import Target

MODEL_FILE = "model.joblib"
PROFILES_FILE = "profiles.joblib"
METADATA_FILE = "metadata.json"
REPORT_FILE = "report.md"
REPORT_HTML_FILE = "report.html"
CHAMPION_FILE = datasets.CHAMPION_FILE
# Recorded in the metadata of every version.
LIBRARIES = ("scikit-learn", "joblib", "numpy", "scipy", "pandas", "pyarrow")
# Must be equal at load time: a pickled scikit-learn model is only guaranteed to mean the
# same thing under the versions that wrote it.
MODEL_LIBRARIES = ("scikit-learn", "joblib", "numpy", "scipy")
# The layout of the project's classes a version pickles (the profiles: model.profiles.Profiles).
# A pickle names its classes' modules, so a version saved by another layout (1: the flat
# package, before model/) cannot load here: it is refused by name and retrained, not crashed on.
PICKLE_LAYOUT = "2"


class ModelMismatchError(DataError, RuntimeError):
    """A saved model does not fit this code: other features, feature version or libraries."""


class ModelNotFoundError(DataError, FileNotFoundError):
    """No such version, or no champion yet for the day."""


@dataclass
class ModelVersion:
    """A loaded version: the classifier, the profile models and the metadata."""

    version: str
    model: Any
    profiles: Any
    metadata: dict

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"])

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @cached_property
    def explainer(self):
        """The classifier's contributions decomposition (model/contributions.py), built once."""
        from pool_classifier.model.contributions import explainer

        return explainer(self.model, self.features)


def library_versions() -> dict[str, str]:
    """Installed versions of LIBRARIES ("absent" for one that is not installed) and Python."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    versions = {name: installed(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def git_commit() -> str:
    """The project's commit (`unknown` outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def version_id(candidate: str, ds: str) -> str:
    return f"{candidate}-{ds}"


def version_dir(target: Target, version: str) -> str:
    return datasets.model_dir(target, version)


def report_path(target: Target, version: str) -> str:
    return f"{version_dir(target, version)}/{REPORT_FILE}"


def report_uri(target: Target, version: str) -> str:
    """Where a browser opens the HTML report: a file:// URI locally, the console for gs://."""
    path = f"{version_dir(target, version)}/{REPORT_HTML_FILE}"
    if path.startswith("gs://"):
        return "https://storage.cloud.google.com/" + path[len("gs://"):]
    return Path(path).resolve().as_uri()


# ------------------------------------------------------------------ checks


def check_compatible(version: str, metadata: dict, installed: dict[str, str] | None = None) -> None:
    """Raise ModelMismatchError unless `metadata` fits this code's features and libraries."""
    installed = installed or library_versions()
    problems = []
    if str(metadata.get("pickle_layout", "1")) != PICKLE_LAYOUT:
        problems.append(
            f"the package layout {metadata.get('pickle_layout', '1')!r} (its pickles name modules "
            f"this code no longer has; this code pickles layout {PICKLE_LAYOUT!r})"
        )
    if str(metadata.get("feature_version")) != FEATURE_VERSION:
        problems.append(
            f"feature version {metadata.get('feature_version')!r} (this code computes {FEATURE_VERSION!r})"
        )
    unknown = [f for f in metadata.get("features", []) if f not in FEATURE_COLUMNS]
    if unknown:
        problems.append(f"features {unknown} that feature_spec.FEATURE_COLUMNS no longer has")
    saved = metadata.get("libraries", {})
    for name in MODEL_LIBRARIES:
        if saved.get(name) != installed.get(name):
            problems.append(f"{name} {saved.get(name)} (installed: {installed.get(name)})")
    saved_python = ".".join(str(saved.get("python", "")).split(".")[:2])
    installed_python = ".".join(installed["python"].split(".")[:2])
    if saved_python != installed_python:
        problems.append(f"Python {saved_python} (running: {installed_python})")
    if problems:
        raise ModelMismatchError(
            f"model {version} does not match this code: it was saved with "
            + "; ".join(problems)
            + ". Retrain it (train_model for a day) or run the code and libraries it was saved with."
        )


# ------------------------------------------------------------------ save and load


def save_version(target: Target, version: str, model, profiles, metadata: dict, write_report) -> str:
    """Write the version folder atomically; `write_report(folder)` adds the report files."""
    import joblib

    out = version_dir(target, version)
    with replace_dir(out) as tmp:
        joblib.dump(model, Path(tmp) / MODEL_FILE)
        joblib.dump(profiles, Path(tmp) / PROFILES_FILE)
        (Path(tmp) / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        write_report(Path(tmp))
    return out


def read_metadata(target: Target, version: str) -> dict:
    file = Path(version_dir(target, version)) / METADATA_FILE
    if not file.exists():
        raise ModelNotFoundError(
            f"model {version!r} not found at {file.parent} (needs {METADATA_FILE}); "
            "run train_model for that day first."
        )
    return json.loads(file.read_text())


def trained_version(target: Target, ds: str) -> str | None:
    """The version a training run of `ds` saved (the latest, if configurations changed); None if none."""
    root = Path(datasets.models_root(target))
    runs = [m for m in root.glob(f"*-{ds}/{METADATA_FILE}") if not m.parent.name.startswith(".")]
    return max(runs, key=lambda m: (m.stat().st_mtime_ns, m.parent.name)).parent.name if runs else None


def version_from_bytes(version: str, model_bytes: bytes, profiles_bytes: bytes, metadata: dict) -> ModelVersion:
    """A version from its files' bytes (what the Spark job broadcasts); checked first."""
    import joblib

    check_compatible(version, metadata)
    model = joblib.load(io.BytesIO(model_bytes))
    profiles = joblib.load(io.BytesIO(profiles_bytes))
    return ModelVersion(version, model, profiles, metadata)


def load_version(target: Target, version: str) -> ModelVersion:
    """Load a version; ModelNotFoundError if absent, ModelMismatchError if it does not fit."""
    metadata = read_metadata(target, version)
    folder = Path(version_dir(target, version))
    missing = [name for name in (MODEL_FILE, PROFILES_FILE) if not (folder / name).exists()]
    if missing:
        raise ModelNotFoundError(
            f"model {version!r} at {folder} lacks {missing}; run train_model for that day again."
        )
    return version_from_bytes(
        version, (folder / MODEL_FILE).read_bytes(), (folder / PROFILES_FILE).read_bytes(), metadata
    )


_LOADED: dict[tuple[str, int], ModelVersion] = {}


def cached_version_from_bytes(version: str, model_bytes: bytes, profiles_bytes: bytes, metadata: dict) -> ModelVersion:
    """`version_from_bytes`, unpickled once per Python process (Spark reuses its workers). The key
    holds the metadata too: a threshold or calibration changed in it is applied by a reused worker."""
    key = (version, hash(model_bytes), json.dumps(metadata, sort_keys=True))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = version_from_bytes(version, model_bytes, profiles_bytes, metadata)
    return _LOADED[key]


# ------------------------------------------------------------------ champion


def champion_file(target: Target) -> str:
    return datasets.champion_file(target)


def read_promotions(target: Target) -> list[dict]:
    file = Path(champion_file(target))
    return json.loads(file.read_text())["promotions"] if file.exists() else []


def champion_entry(promotions: list[dict], ds: str, before: bool = False) -> dict | None:
    """The promotion in force on `ds` (or, with `before`, on the day before `ds`)."""
    eligible = [p for p in promotions if (p["trained_for"] < ds if before else p["trained_for"] <= ds)]
    return max(eligible, key=lambda p: p["trained_for"]) if eligible else None


def champion_version(target: Target, ds: str) -> str:
    """The champion that scores day `ds`: the last version promoted by a training of ds or before."""
    entry = champion_entry(read_promotions(target), ds)
    if entry is None:
        raise ModelNotFoundError(
            f"no champion model for {ds} in {champion_file(target)}: no training run of {ds} or "
            "earlier promoted a model; run train_model for the day first."
        )
    return entry["version"]


def record_decision(target: Target, ds: str, promotion: dict | None) -> list[dict]:
    """Replace day `ds`'s entry in the promotions: `promotion` if the day promoted, else none.

    Keyed by the training day, so re-running a day rewrites its own entry and nothing else.
    """
    promotions = [p for p in read_promotions(target) if p["trained_for"] != ds]
    if promotion is not None:
        promotions.append({**promotion, "trained_for": ds})
    promotions.sort(key=lambda p: p["trained_for"])
    write_text_atomically(
        champion_file(target), json.dumps({"promotions": promotions}, indent=2, sort_keys=True) + "\n"
    )
    return promotions
