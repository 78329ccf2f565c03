"""Atomic writes on the local disk: a day replaced whole or not at all (a new version and its
pointer), a model folder swapped whole or not at all."""
from __future__ import annotations

from pathlib import Path

import pytest

from pool_classifier.io import atomic


def test_write_dir_replaces_the_day_whole_or_not_at_all(tmp_path):
    final = tmp_path / "day" / "dt=2024-03-01"
    with atomic.write_dir(final) as tmp:
        (tmp / "a.parquet").write_text("first")
    assert [Path(f).read_text() for f in atomic.data_files(final)] == ["first"]

    with pytest.raises(RuntimeError):
        with atomic.write_dir(final) as tmp:
            (tmp / "a.parquet").write_text("half")
            raise RuntimeError("killed while writing")
    assert [Path(f).read_text() for f in atomic.data_files(final)] == ["first"]
    assert sorted(p.name for p in final.parent.iterdir()) == ["dt=2024-03-01"]

    with atomic.write_dir(final) as tmp:
        (tmp / "b.parquet").write_text("second")
    assert [Path(f).name for f in atomic.data_files(final)] == ["b.parquet"]


def test_replace_dir_swaps_a_model_folder_whole_or_not_at_all(tmp_path):
    final = tmp_path / "models" / "hgb-2024-03-01"
    with atomic.replace_dir(final) as tmp:
        (tmp / "metadata.json").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic.replace_dir(final) as tmp:
            (tmp / "metadata.json").write_text("half")
            raise RuntimeError("killed while writing")
    assert (final / "metadata.json").read_text() == "first"
    assert sorted(p.name for p in final.parent.iterdir()) == ["hgb-2024-03-01"]
