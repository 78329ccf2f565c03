"""Atomic, idempotent writes: build a day's output aside, then rename it into place.

A reader sees either the previous complete folder or the new complete folder, never
a half-written one; a re-run replaces the day's folder instead of appending to it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def write_dir(final_dir: str | os.PathLike) -> Iterator[Path]:
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


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write a small file (JSON, Markdown) so that readers never see it half-written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.write_text(text)
    os.replace(tmp, target)
