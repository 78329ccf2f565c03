"""A DAG run killed with SIGKILL while build_features writes: readers never see a partial
output, and the re-run completes with the same outputs as before.

The run is `airflow dags test` of the last day of the reference run, on a copy of its data,
in its own process group; the test polls for the Spark job's temporary folder
(`.<name>.tmp-<id>` beside the day's folder) to fill, then kills the whole group (Airflow,
spark-submit, the JVM) at once. A reader thread checks every day folder all along.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from pool_classifier import run_summary
from tests.reliability.conftest import (
    AIRFLOW, DAG_ID, DAY_LIST, Scenario, assert_same_as_reference, day_outputs, snapshot,
)

# ~20 min on 2 idle cores (7 days through `airflow dags test`, several times): `make reliability`.
pytestmark = [pytest.mark.slow, pytest.mark.reliability]
DAY = DAY_LIST[-1]
# Written by the Spark job (features, state): the folders a kill can hit mid-write.
WATCHED = ("features/address_features", "features/block_pools", "features/address_labels",
           "features/training_features", "state/address_state", "state/coinbase_receipts")


def _copy_scenario(source: Scenario, root: Path) -> Scenario:
    """The reference run's data, copied (the reference stays untouched), with a fresh Airflow
    DB: the DAG's assets name the bucket's folders, so a DB made for another bucket would
    hold them as inactive and refuse the tasks."""
    shutil.copytree(source.root / "data", root / "data")
    env = {**source.env,
           "POOL_CLASSIFIER_DATA_DIR": str(root / "data"),
           "AIRFLOW_HOME": str(root / "airflow_home")}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    target = dataclasses.replace(source.target, bucket=str(root / "data" / "bucket"),
                                 warehouse=str(root / "data" / "warehouse" / "bigquery-public-data.duckdb"))
    return Scenario(root=root, target=target, env=env)


def _temporary_folders(folders: dict[str, str]) -> list[Path]:
    found = []
    for name in WATCHED:
        final = Path(folders[name])
        found += [p for p in final.parent.glob(f".{final.name}.tmp-*") if p.is_dir()]
    return found


class Reader(threading.Thread):
    """Reads every watched day folder again and again, as a downstream job would."""

    def __init__(self, folders: dict[str, str], reference: dict):
        super().__init__(daemon=True)
        self.folders, self.reference = folders, reference
        self.stop = threading.Event()
        self.reads = 0
        self.partial: list[str] = []

    def run(self):
        while not self.stop.is_set():
            for name in WATCHED:
                folder = self.folders[name]
                try:
                    if not Path(folder).is_dir():
                        continue  # absent between two renames: allowed, never partial
                    checksum = run_summary.folder_checksum(folder)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # swapped while being read: read again next round
                except Exception as exc:  # unreadable Parquet = a partial file
                    self.partial.append(f"{name}: unreadable ({exc})")
                    continue
                self.reads += 1
                if checksum != self.reference[(DAY, name)]["content"]:
                    self.partial.append(f"{name}: checksum {checksum}")
            time.sleep(0.02)


def test_a_run_killed_while_writing_leaves_no_partial_output_and_the_rerun_completes(sequential, tmp_path):
    scenario = _copy_scenario(sequential, tmp_path)
    folders = day_outputs(scenario.target, DAY)
    reference = sequential.reference
    assert_same_as_reference(reference, snapshot(scenario.target, [DAY]), days=[DAY])

    reader = Reader(folders, reference)
    reader.start()
    process = subprocess.Popen(
        [AIRFLOW, "dags", "test", DAG_ID, DAY], env=scenario.env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    killed_while = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            busy = [p for p in _temporary_folders(folders) if any(p.iterdir())]
            if busy:
                os.killpg(process.pid, signal.SIGKILL)
                killed_while = sorted(p.name for p in busy)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and killed_while is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert killed_while, "the run ended before the test saw build_features write: nothing was killed"
    assert process.returncode == -signal.SIGKILL
    time.sleep(1)  # the JVM in the same group is gone too; let the reader see the aftermath
    reader.stop.set()
    reader.join(timeout=30)
    assert reader.reads > 0
    assert reader.partial == [], reader.partial

    # What the kill left: each day folder whole (the previous version) or absent, and the
    # killed writer's temporary folder, hidden (a dot name) from every reader.
    after_kill = snapshot(scenario.target, [DAY])
    for name in WATCHED:
        got = after_kill.get((DAY, name))
        assert got is None or got["content"] == reference[(DAY, name)]["content"], name
    assert _temporary_folders(folders), "expected the killed writer's temporary folder"

    # The re-run completes and leaves the same outputs as the reference run.
    scenario.run_day(DAY)
    now = snapshot(scenario.target, [DAY])
    assert len(now) == len(day_outputs(scenario.target, DAY))
    assert_same_as_reference(reference, now, days=[DAY])
