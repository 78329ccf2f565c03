"""Atomic, idempotent writes and the reads that go with them, on the local file system.

* A day's dataset (a folder of Parquet files) is published as a new immutable version with a
  pointer written last (`io/versioned.py`): `write_dir` yields the new version's folder,
  readers resolve the pointer (`data_files`, `read_frame`, `duckdb_source`). A reader sees the
  previous complete version or the new one, never a mix, on a local disk and on Cloud Storage
  alike; a re-run replaces the day, never appends to it.
* A single small file (figures.json, champion.json, a cost record) is written beside and
  renamed over: one object, atomic (`write_text_atomically`).
* A model version folder of the registry is written aside and renamed into place
  (`replace_dir`): it is written once per training run, its `metadata.json` says it is
  complete, and on gcp it is pushed with metadata.json last (io/bucket_mirror.py).

The Spark jobs do the same through Hadoop's file systems (`io/spark_io.py`).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from pool_classifier.io import versioned

FS = versioned.LocalFS()


# ---------------------------------------------------------------- a day's dataset: versions


@contextlib.contextmanager
def write_dir(location: str | os.PathLike, meta: dict | None = None) -> Iterator[Path]:
    """Yield a new, empty version folder of `location`; on success the pointer names it (the
    day is replaced), on an exception the folder is dropped and the day is left as it was."""
    with versioned.publish(FS, location, meta) as folder:
        yield Path(folder)


def exists(location: str | os.PathLike) -> bool:
    """True when `location` has a version in force."""
    return versioned.exists(FS, location)


def data_files(location: str | os.PathLike, suffix: str | None = ".parquet") -> list[str]:
    """The files of the version in force at `location` ([] when it is absent)."""
    return versioned.data_files(FS, location, suffix)


def files_or_fail(location: str | os.PathLike, what: str = "") -> list[str]:
    """The Parquet files in force at `location`; FileNotFoundError naming it when it has none."""
    files = data_files(location)
    if not files:
        raise FileNotFoundError(
            f"no Parquet files in force at {location}{f' ({what})' if what else ''}: the step that "
            "writes it has not run for the day (or was stopped before it published)"
        )
    return files


def read_frame(location: str | os.PathLike, columns: list[str] | None = None):
    """The version in force at `location` as one pandas DataFrame (FileNotFoundError when absent)."""
    import pyarrow.parquet as pq

    files = files_or_fail(location)
    # Not hive-partitioned: `dt=`/`v=` in the path are the day and the version, not columns.
    return pq.ParquetDataset(files, partitioning=None).read(columns=columns).to_pandas()


def duckdb_source(location: str | os.PathLike) -> str:
    """A DuckDB table expression over the version in force (FileNotFoundError when absent)."""
    files = ", ".join("'" + f.replace("'", "''") + "'" for f in files_or_fail(location))
    return f"read_parquet([{files}], hive_partitioning = false)"


def remove(location: str | os.PathLike) -> None:
    """Make the day absent (its pointer first, then its versions)."""
    versioned.remove(FS, location)


# ---------------------------------------------------------------- single files and model folders


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write a small file (JSON, Markdown) so that readers never see it half-written."""
    FS.write_bytes(os.fspath(path), text.encode("utf-8"))


@contextlib.contextmanager
def replace_dir(final_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `final_dir`; on success it replaces `final_dir`.

    On an exception the temporary folder is removed and `final_dir` is left untouched.
    """
    final = Path(final_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
