"""On gcp, local steps run on a copy of what they read from the bucket (io/bucket_mirror.py).
Training: what it changed goes back, whole version folders replaced, pointers last (the step
is a stand-in that reads and writes like train_model). Quality gates: their figures go back
whether they pass or fail (a real generated day, extracted by the local target). A folder
stands for the bucket (LocalStore)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic, bucket_mirror, warehouse
from pool_classifier.io.bucket_mirror import LocalStore
from pool_classifier.model import registry
from pool_classifier.steps.check_extract import check_extract
from pool_classifier.steps.extract_day import extract_day
from pool_classifier.steps.quality_gate import QualityGateError
from pool_classifier.targets import Target
from pool_classifier.targets.gcp import target_for_bucket
from tools import synthetic_chain

DS = "2024-03-02"
REMOTE = target_for_bucket("gs://pool-data-test")


class RecordingStore(LocalStore):
    """A LocalStore that remembers the order of its uploads."""

    def __init__(self, root):
        super().__init__(root, bucket="pool-data-test")
        self.uploads: list[str] = []

    def upload(self, path, name):
        super().upload(path, name)
        self.uploads.append(name)


def put(store: LocalStore, name: str, content: str) -> None:
    (store.root / name).parent.mkdir(parents=True, exist_ok=True)
    (store.root / name).write_text(content)


@pytest.fixture
def store(tmp_path):
    store = RecordingStore(tmp_path / "bucket")
    put(store, f"features/training_features/dt={DS}/part-00000.parquet", "training rows")
    put(store, "features/training_features/dt=2024-03-01/part-00000.parquet", "yesterday: not needed")
    for day in ("2024-02-28", "2024-03-01", DS):
        put(store, f"extracts/blocks/dt={day}/000000000000.parquet", "blocks")
    put(store, "models/champion.json", json.dumps({"promotions": [
        {"version": "rf-2024-02-28", "trained_for": "2024-02-28"},
        {"version": "rf-2024-03-01", "trained_for": "2024-03-01"},
    ]}))
    for version in ("rf-2024-02-28", "rf-2024-03-01"):
        put(store, f"models/{version}/model.joblib", f"{version} model")
        put(store, f"models/{version}/metadata.json", "{}")
    # A version of this day from an earlier run, with a file the new run no longer writes.
    put(store, f"models/rf-{DS}/model.joblib", "old model")
    put(store, f"models/rf-{DS}/old-plot.png", "stale")
    return store


def stand_in_training(seen: dict):
    """Reads like train_model (training set, champion before ds, extracted days); writes a
    version folder and the promotions."""

    def train(local: Target, ds: str) -> dict:
        root = Path(local.bucket)
        seen["files"] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        seen["days"] = datasets.extracted_days(local, ds)
        version = f"rf-{ds}"
        folder = Path(datasets.model_dir(local, version))
        if folder.exists():
            for old in folder.iterdir():
                old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.joblib").write_text("new model")
        (folder / "report.md").write_text("report")
        (folder / "metadata.json").write_text(json.dumps({"version": version}))
        champion = Path(registry.champion_file(local))
        promotions = json.loads(champion.read_text())["promotions"] if champion.exists() else []
        champion.parent.mkdir(parents=True, exist_ok=True)
        champion.write_text(json.dumps({"promotions": promotions + [{"version": version, "trained_for": ds}]}))
        return {"version": version, "path": str(folder), "report": str(folder / "report.md")}

    return train


def test_training_reads_only_what_it_needs_and_writes_back_what_it_changed(store, tmp_path):
    seen: dict = {}
    result = bucket_mirror.train_in_copy(store, REMOTE, DS, train=stand_in_training(seen), workdir=tmp_path)
    # Pulled: the day's training set, the promotions, the champion before the day (not older ones).
    assert seen["files"] == [
        f"features/training_features/dt={DS}/part-00000.parquet",
        "models/champion.json",
        "models/rf-2024-03-01/metadata.json",
        "models/rf-2024-03-01/model.joblib",
    ]
    assert seen["days"] == ["2024-02-28", "2024-03-01", DS]  # the data window, no extract downloaded
    # Pushed: the new version, replacing the earlier run's folder whole; champion.json.
    remote = store.list("models/")
    assert f"models/rf-{DS}/old-plot.png" not in remote
    assert (store.root / f"models/rf-{DS}/model.joblib").read_text() == "new model"
    promotions = json.loads((store.root / "models/champion.json").read_text())["promotions"]
    assert [p["version"] for p in promotions] == ["rf-2024-02-28", "rf-2024-03-01", f"rf-{DS}"]
    # Unchanged files are not uploaded again; pointers go last, champion.json very last.
    assert store.uploads == [f"models/rf-{DS}/model.joblib", f"models/rf-{DS}/report.md",
                             f"models/rf-{DS}/metadata.json", "models/champion.json"]
    assert (store.root / "models/rf-2024-03-01/model.joblib").read_text() == "rf-2024-03-01 model"
    # The result names the bucket's paths, not the local copy's.
    assert result["path"] == f"gs://pool-data-test/models/rf-{DS}"
    assert result["report"] == f"gs://pool-data-test/models/rf-{DS}/report.md"


def test_the_first_training_pulls_no_champion(tmp_path):
    store = RecordingStore(tmp_path / "bucket")
    put(store, f"features/training_features/dt={DS}/part-00000.parquet", "rows")
    seen: dict = {}
    bucket_mirror.train_in_copy(store, REMOTE, DS, train=stand_in_training(seen), workdir=tmp_path)
    assert seen["files"] == [f"features/training_features/dt={DS}/part-00000.parquet"]
    assert store.uploads[-1] == "models/champion.json"


def test_a_failed_training_writes_nothing_back(store, tmp_path):
    before = {n: (store.root / n).read_bytes() for n in store.list("")}

    def failing(local, ds):
        Path(datasets.model_dir(local, f"rf-{ds}")).mkdir(parents=True, exist_ok=True)
        raise RuntimeError("too few positives")

    with pytest.raises(RuntimeError, match="too few positives"):
        bucket_mirror.train_in_copy(store, REMOTE, DS, train=failing, workdir=tmp_path)
    assert {n: (store.root / n).read_bytes() for n in store.list("")} == before
    assert list(tmp_path.glob("train-*")) == []  # the local copy is gone


def test_a_uri_of_another_bucket_is_refused(store):
    with pytest.raises(ValueError, match="not in the bucket gs://pool-data-test"):
        bucket_mirror.pull(store, "gs://other-bucket/models", "/tmp/x")


# ---------------------------------------------------------------- quality gates on a copy


GATE_DS = "2024-03-01"


@pytest.fixture
def gate_bucket(tmp_path, local_target):
    chain = tmp_path / "chain"
    synthetic_chain.generate(chain, dt.date.fromisoformat(GATE_DS), days=1, tx_per_day=1500, seed=5)
    warehouse.load_exports(chain, local_target.warehouse)
    extract_day(local_target, GATE_DS)
    store = LocalStore(local_target.bucket, bucket="pool-data-test")
    remote = dataclasses.replace(local_target, name="gcp", bucket="gs://pool-data-test")
    return store, remote, local_target


def test_the_extract_gate_runs_on_a_copy_and_writes_its_figures_back(gate_bucket):
    store, remote, local = gate_bucket
    figures = bucket_mirror.gate_in_copy(store, remote, "extract", GATE_DS)
    assert figures["passed"] is True
    written = json.loads((store.root / f"quality/extract/dt={GATE_DS}/figures.json").read_text())
    # The same figures as the gate run in place (JSON has lists where Python had tuples).
    assert written == json.loads(json.dumps(check_extract(local, GATE_DS), default=str))
    assert written["checks"] == json.loads(json.dumps(figures["checks"], default=str))


def test_a_failing_gate_still_writes_its_figures_back(gate_bucket):
    store, remote, local = gate_bucket
    blocks_dir = datasets.extract_dir(local, "blocks", GATE_DS)
    blocks = atomic.read_frame(blocks_dir)
    with atomic.write_dir(blocks_dir) as folder:  # the day in the bucket, a block lost
        blocks.drop(index=len(blocks) // 2).to_parquet(folder / "blocks.parquet", index=False)
    with pytest.raises(QualityGateError, match="expected"):
        bucket_mirror.gate_in_copy(store, remote, "extract", GATE_DS)
    written = json.loads((store.root / f"quality/extract/dt={GATE_DS}/figures.json").read_text())
    assert written["passed"] is False
