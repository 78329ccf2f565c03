"""Run a local step on a copy of the Cloud Storage folders it reads, then write back what it
changed: how the training step (files, joblib, Path) runs unchanged on the gcp target.

`pull` copies a folder (or one object) of the bucket into a local folder and remembers each
file's digest; the step runs on a `Target` whose bucket is that local folder; `push` uploads
the files that are new or changed. A first-level folder that changed is replaced as a whole
(its objects the step no longer wrote are removed), like `io.atomic.write_dir` does locally,
and the pointer files (`metadata.json`, `champion.json`) go last, so a reader that sees one
sees what it points to.

A store is one bucket: `CloudStorage` (google-cloud-storage) or `LocalStore` (a folder).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Protocol

from pool_classifier import datasets
from pool_classifier.io import versioned
from pool_classifier.targets import Target

# Written after every other file of a push: they point at the others.
POINTER_FILES = ("metadata.json", "champion.json", versioned.POINTER)


class Store(Protocol):
    """One bucket. Names are object names (no `gs://bucket/`)."""

    bucket: str

    def list(self, prefix: str) -> list[str]: ...

    def download(self, name: str, path: Path) -> None: ...

    def upload(self, path: Path, name: str) -> None: ...

    def delete(self, name: str) -> None: ...


class CloudStorage:
    """A Cloud Storage bucket through google-cloud-storage (credentials from the environment)."""

    def __init__(self, bucket: str):
        from google.cloud import storage

        self.bucket = bucket
        self._bucket = storage.Client().bucket(bucket)

    def list(self, prefix: str) -> list[str]:
        return sorted(blob.name for blob in self._bucket.client.list_blobs(self._bucket, prefix=prefix))

    def download(self, name: str, path: Path) -> None:
        self._bucket.blob(name).download_to_filename(str(path))

    def upload(self, path: Path, name: str) -> None:
        self._bucket.blob(name).upload_from_filename(str(path))

    def delete(self, name: str) -> None:
        self._bucket.blob(name).delete()


class LocalStore:
    """A folder standing for a bucket (object names are relative paths under it)."""

    def __init__(self, root: str | Path, bucket: str = "local-bucket"):
        self.root = Path(root)
        self.bucket = bucket

    def list(self, prefix: str) -> list[str]:
        if not self.root.exists():
            return []
        names = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(n for n in names if n.startswith(prefix))

    def download(self, name: str, path: Path) -> None:
        shutil.copyfile(self.root / name, path)

    def upload(self, path: Path, name: str) -> None:
        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self.root / name)

    def delete(self, name: str) -> None:
        (self.root / name).unlink()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def object_name(store: Store, uri: str) -> str:
    """gs://<store bucket>/a/b → a/b (refuses another bucket)."""
    head = f"gs://{store.bucket}/"
    if not uri.startswith(head) and uri != head.rstrip("/"):
        raise ValueError(f"{uri!r} is not in the bucket gs://{store.bucket}")
    return uri[len(head):]


def pull(store: Store, uri: str, local: str | Path) -> dict[str, str]:
    """Copy the folder (or the single object) at `uri` to `local`; returns {local file: digest}.

    A versioned day (a folder with a pointer, io/versioned.py) is copied as its pointer and the
    files it names: the version in force, not the older ones kept for readers in flight.
    """
    name = object_name(store, uri)
    local = Path(local)
    names = store.list(name.rstrip("/") + "/")
    pointer = f"{name.rstrip('/')}/{versioned.POINTER}"
    if pointer in names:
        with tempfile.TemporaryDirectory() as tmp:
            store.download(pointer, Path(tmp) / versioned.POINTER)
            listed = json.loads((Path(tmp) / versioned.POINTER).read_text())["files"]
        names = [pointer] + [f"{name.rstrip('/')}/{f}" for f in listed if not versioned._is_absolute(f)]
    targets = [(n, local / n[len(name.rstrip("/")) + 1:]) for n in names if not n.endswith("/")]
    if not names and name in store.list(name):
        targets = [(name, local)]  # one object
    pulled = {}
    for object_, path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        store.download(object_, path)
        pulled[str(path)] = _digest(path)
    return pulled


def push(store: Store, local_root: str | Path, uri: str, pulled: dict[str, str]) -> list[str]:
    """Upload what changed under `local_root` to the folder `uri`; returns the names uploaded.

    Files whose digest equals the pulled one are not uploaded. A first-level folder with a
    change is replaced: its remote objects without a local file are deleted first.
    """
    local_root = Path(local_root)
    prefix = object_name(store, uri).rstrip("/") + "/"
    files = sorted(p for p in local_root.rglob("*") if p.is_file()) if local_root.exists() else []
    changed = [p for p in files if pulled.get(str(p)) != _digest(p)]
    replaced = {p.relative_to(local_root).parts[0] for p in changed if len(p.relative_to(local_root).parts) > 1}
    for folder in sorted(replaced):
        keep = {prefix + p.relative_to(local_root).as_posix() for p in files
                if p.relative_to(local_root).parts[0] == folder}
        for name in store.list(f"{prefix}{folder}/"):
            if name not in keep:
                store.delete(name)
    # Pointers last, the top-level ones (champion.json) after the folders they point into.
    order = sorted(changed, key=lambda p: (p.name in POINTER_FILES, len(p.relative_to(local_root).parts) == 1))
    uploaded = []
    for path in order:
        name = prefix + path.relative_to(local_root).as_posix()
        store.upload(path, name)
        uploaded.append(name)
    return uploaded


def _in_remote(value, local_bucket: str, remote_bucket: str):
    """Local paths in a result (version folder, report…) as the bucket's URIs."""
    if isinstance(value, str) and value.startswith(local_bucket):
        return remote_bucket + value[len(local_bucket):]
    if isinstance(value, dict):
        return {k: _in_remote(v, local_bucket, remote_bucket) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_in_remote(v, local_bucket, remote_bucket) for v in value]
    return value


def extracted_days(store: Store, remote: Target) -> set[str]:
    """The days with a blocks extract in the bucket (their folder names, no download)."""
    prefix = object_name(store, datasets.extract_root(remote, "blocks")) + "/dt="
    return {m.group(1) for n in store.list(prefix) if (m := re.search(r"/dt=(\d{4}-\d{2}-\d{2})/", n))}


def train_in_copy(store: Store, remote: Target, ds: str, train: Callable[[Target, str], dict] | None = None,
                  workdir: str | Path | None = None) -> dict:
    """`steps.train_model.train_model` for `ds` on a local copy of what it reads; the registry changes pushed back.

    It reads the day's training set, `models/champion.json` and the champion in force
    before `ds` (to compare with), and the extracted days (their names: the data window).
    """
    from pool_classifier.model import registry

    if train is None:
        from pool_classifier.steps.train_model import train_model as train
    with tempfile.TemporaryDirectory(prefix="train-", dir=workdir) as tmp:
        local = dataclasses.replace(remote, bucket=str(Path(tmp) / "bucket"))
        pulled = pull(store, datasets.features_dir(remote, "training_features", ds),
                      datasets.features_dir(local, "training_features", ds))
        pulled.update(pull(store, registry.champion_file(remote), registry.champion_file(local)))
        entry = registry.champion_entry(registry.read_promotions(local), ds, before=True)
        if entry is not None:
            pulled.update(pull(store, datasets.model_dir(remote, entry["version"]),
                               datasets.model_dir(local, entry["version"])))
        for day in extracted_days(store, remote):
            Path(datasets.extract_dir(local, "blocks", day)).mkdir(parents=True, exist_ok=True)
        result = train(local, ds)
        uploaded = push(store, datasets.models_root(local), datasets.models_root(remote), pulled)
    return {**_in_remote(result, local.bucket, remote.bucket), "uploaded": uploaded}


def for_target(target: Target) -> CloudStorage:
    """The Cloud Storage bucket of a gcp target."""
    from pool_classifier.targets.gcp import split_gcs_uri

    return CloudStorage(split_gcs_uri(target.bucket + "/")[0])


def gate_reads(target: Target, gate: str, ds: str) -> list[str]:
    """The folders a quality gate reads: its step's declaration (steps.STEPS)."""
    from pool_classifier.steps import STEPS

    return STEPS[f"check_{gate}"].read_paths(target, ds)


def gate_in_copy(store: Store, remote: Target, gate: str, ds: str, workdir: str | Path | None = None) -> dict:
    """A quality gate of `ds` on a local copy of what it reads; its figures written back
    to `quality/<gate>/dt=<ds>/` whether it passes or fails."""
    from pool_classifier.steps import quality_gate

    with tempfile.TemporaryDirectory(prefix=f"gate-{gate}-", dir=workdir) as tmp:
        local = dataclasses.replace(remote, bucket=str(Path(tmp) / "bucket"))
        for folder in gate_reads(remote, gate, ds):
            pull(store, folder, folder.replace(remote.bucket, local.bucket, 1))
        figures_dir = str(Path(quality_gate.figures_path(local, gate, ds)).parent)
        try:
            return quality_gate.run(gate, local, ds)
        finally:
            push(store, figures_dir, figures_dir.replace(local.bucket, remote.bucket, 1), {})


def needs_training_in_copy(store: Store, remote: Target, ds: str) -> bool:
    """`steps.should_train.needs_training` for a gcp target: reads only `models/champion.json`."""
    from pool_classifier.model import registry
    from pool_classifier.steps.should_train import needs_training

    with tempfile.TemporaryDirectory(prefix="champion-") as tmp:
        local = dataclasses.replace(remote, bucket=str(Path(tmp) / "bucket"))
        pull(store, registry.champion_file(remote), registry.champion_file(local))  # {} when absent
        return needs_training(local, ds)
