"""The long reliability scenarios, played through Airflow itself (`airflow dags test` on a
throw-away AIRFLOW_HOME with a real metadata DB) over 4 generated days.

Each `airflow dags test` of a day takes 1–2 minutes (two spark-submits), and the scenarios
need about fifteen of them, so they are played in two *lanes*: background threads started
when the test session starts, while the rest of the suite runs. The lanes only play and
record what they see; the tests in this folder assert on those records at the end of the
session (`pytest_collection_modifyitems` in tests/conftest.py puts them last).

- lane `sequential`: the 4 days in date order (the *reference*: a snapshot of every output,
  and a copy of its data), then a re-run of day 3 and day 4 (a middle day, then the day its
  re-run invalidated).
- lane `shuffled`: the same 4 days in shuffled order on a fresh bucket and Airflow DB, then
  the refused days re-triggered as on-call would (the latest first, following each refusal's
  message), then a SIGKILL of a run of day 7 in the middle of its writes, and its re-run.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import duckdb

from pool_classifier import datasets, targets
from pool_classifier.io import atomic, versioned, warehouse
from tools import run_summary, synthetic_chain

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START = dt.date(2024, 3, 1)
DAYS = 4
TX_PER_DAY = 1500
# Seed 3 labels at least 10 pool wallets (the training target) with features from the first
# day on, the minimum train_model needs: every day of the chain can run the whole DAG (171 on
# day 1, 364 by day 2, by the label rule over the generated files).
SEED = 3
DAY_LIST = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
# The shuffled backfill: the first day, then jumps forward and back. Every day is built once
# (4 full runs); 2 are refused on the way. (4 days show every case of the state's order rule
# that 7 did, with 11 full runs through Airflow in all instead of 17: CI's time.)
SHUFFLED = [DAY_LIST[i] for i in (0, 2, 1, 3)]
RERUN_DAY = DAY_LIST[2]
KILL_DAY = DAY_LIST[-1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "mining_pool_classifier"
RUN_TIMEOUT_S = 1200
# Outputs every run must have written (the rest is discovered: see `day_outputs`).
CORE_OUTPUTS = (
    *(f"extracts/{t}" for t in datasets.EXTRACT_TABLES),
    *(f"features/{t}" for t in datasets.FEATURE_TABLES),
    *(f"state/{t}" for t in datasets.STATE_TABLES),
    "predictions/address_scores",
)
GLOBAL = "(all days)"
# Records of each run (when it ran, how long, what it cost): every run adds its own, by
# design, so they are not outputs that a re-run must reproduce.
RUN_RECORDS = ("run_costs",)
# The API's serving snapshot: a DuckDB file (not byte-stable, it keeps when it was built) made
# from the outputs compared here; its own publish (a re-run replaces it, a reader sees the old or
# the new day) is tested in tests/api/test_publish_serving.py.
DERIVED = ("serving",)
# The key of every output: a re-run must never double a row.
KEYS = {
    "extracts/blocks": "block_number",
    "extracts/outputs": "block_number, transaction_hash, output_index",
    "extracts/inputs": "block_number, transaction_hash, input_index",
    "features/address_features": "address",
    "features/block_pools": "block_number",
    "features/address_labels": "address",
    "features/training_features": "address",
    "state/address_state": "address",
    "state/coinbase_receipts": "address, pool_id",
    "predictions/address_scores": "address",
}
# Written by the Spark job (features, state): the folders a kill can hit mid-write.
WATCHED = ("features/address_features", "features/block_pools", "features/address_labels",
           "features/training_features", "state/address_state", "state/coinbase_receipts")
REFUSAL = re.compile(
    r"StateOrderError: no state for (\d{4}-\d\d-\d\d) \(the latest state before (\d{4}-\d\d-\d\d) "
    r"is (\d{4}-\d\d-\d\d)\): run the days from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) first, in date order"
)


# ---------------------------------------------------------------- outputs and their checksums


def _written(folder: Path) -> bool:
    """A day's folder holds an output: a version in force (a pointer), or plain files (the
    gates' figures). A killed writer's unpublished version alone is no output."""
    return atomic.exists(folder) or any(p.is_file() for p in folder.iterdir())


def day_outputs(target: targets.Target, ds: str) -> dict[str, str]:
    """Every folder the DAG wrote for day `ds`, by name: each `<kind>/<name>/dt=<ds>` under the
    bucket, and each model version trained for the day (`models/<candidate>-<ds>`)."""
    bucket = Path(target.bucket)
    folders = {
        p.parent.relative_to(bucket).as_posix(): str(p)
        for p in sorted(bucket.glob(f"*/*/dt={ds}")) if p.parent.parent.name not in RUN_RECORDS and _written(p)
    }
    folders |= {
        p.parent.name: str(p)
        for p in sorted(bucket.glob(f"*/dt={ds}")) if p.parent.name not in RUN_RECORDS + DERIVED and _written(p)
    }
    for version in sorted((bucket / "models").glob(f"*-{ds}")):
        folders[f"models/{version.name[: -len(ds) - 1]}"] = str(version)
    return folders


def global_files(target: targets.Target) -> list[Path]:
    """Files of the bucket that hold every day at once (the model registry's champion log)."""
    return sorted(p for p in (Path(target.bucket) / "models").glob("*.json") if p.is_file())


def folder_bytes_digest(folder: str | Path) -> str:
    """sha256 over the names and raw bytes of what a folder holds (a versioned day: the files
    of the version in force, see run_summary.content_files)."""
    digest = hashlib.sha256()
    for name, file in run_summary.content_files(folder):
        digest.update(name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def written_by_spark(folder: str | Path) -> bool:
    """Parquet written by Spark (parquet-mr) names Spark in its footer: compared by content,
    because parquet-mr lists column encodings from a Java HashSet (see run_summary)."""
    import pyarrow.parquet as pq

    files = [f for name, f in run_summary.content_files(folder) if name.endswith(".parquet")]
    return bool(files) and b"org.apache.spark.version" in (pq.read_metadata(files[0]).metadata or {})


def snapshot(target: targets.Target, days: list[str] = DAY_LIST) -> dict[tuple[str, str], dict]:
    """(day, output) -> content checksum, raw-bytes digest, files, written by Spark or not;
    with every day, also (GLOBAL, file) for the files that span every day."""
    result = {}
    for ds in days:
        for name, folder in day_outputs(target, ds).items():
            result[(ds, name)] = {
                "content": run_summary.folder_checksum(folder),
                "bytes": folder_bytes_digest(folder),
                "files": [name for name, _ in run_summary.content_files(folder)],
                "spark": written_by_spark(folder),
            }
    if days == DAY_LIST:
        for file in global_files(target):
            digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
            result[(GLOBAL, f"models/{file.name}")] = {
                "content": digest, "bytes": digest, "files": [file.name], "spark": False,
            }
    return result


def assert_same_as_reference(reference: dict, now: dict, days: list[str] = DAY_LIST) -> None:
    """The outputs of `days` exactly as in the reference run: the same outputs, each with the
    same files and rows, and the same bytes too unless Spark wrote it."""
    expected = {k: v for k, v in reference.items() if k[0] in days or (k[0] == GLOBAL and days == DAY_LIST)}
    assert sorted(now) == sorted(expected), (
        f"missing: {sorted(set(expected) - set(now))}; unexpected: {sorted(set(now) - set(expected))}"
    )
    for key, ref in expected.items():
        got = now[key]
        assert got["files"] == ref["files"], key
        assert got["content"] == ref["content"], f"{key}: rows differ"
        if not ref["spark"]:
            assert got["bytes"] == ref["bytes"], f"{key}: bytes differ"


def row_counts_and_duplicates(target: targets.Target, ds: str) -> dict[str, tuple[int, int]]:
    """output -> (rows, rows whose key repeats). A layered output (the address state: a base and
    the deltas since, one row per address in each) is counted layer by layer."""
    found = {}
    con = duckdb.connect()
    try:
        for name, folder in day_outputs(target, ds).items():
            if name in KEYS:
                rows = repeats = 0
                for layer in versioned.resolve(atomic.FS, folder):
                    files = ", ".join(f"'{f}'" for f in sorted(map(str, Path(layer).rglob("*.parquet"))))
                    n, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({KEYS[name]})) "
                                              f"FROM read_parquet([{files}], hive_partitioning = false)").fetchone()
                    rows, repeats = rows + n, repeats + n - distinct
                found[name] = (rows, repeats)
    finally:
        con.close()
    return found


def built_by_features(target: targets.Target, ds: str) -> list[str]:
    """The state and feature folders of `ds` that exist (what build_features writes)."""
    bucket = Path(target.bucket)
    return [
        f"{kind}/{table}" for kind, tables in (("state", datasets.STATE_TABLES), ("features", datasets.FEATURE_TABLES))
        for table in tables if atomic.exists(bucket / kind / table / f"dt={ds}")
    ]


# ---------------------------------------------------------------- a data folder and an Airflow DB


@dataclasses.dataclass
class Scenario:
    """A data folder (warehouse + bucket) and an Airflow home with a migrated metadata DB."""

    root: Path
    target: targets.Target
    env: dict

    def dags_test(self, ds: str, timeout: int = RUN_TIMEOUT_S) -> tuple[bool, str]:
        """`airflow dags test` of one day; (run succeeded, log). Each log is kept in root/logs."""
        run = subprocess.run(
            [AIRFLOW, "dags", "test", DAG_ID, ds], env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )
        log = run.stdout + run.stderr
        self.keep_log(ds, log)
        return run.returncode == 0 and "state=success" in log, log

    def keep_log(self, ds: str, log: str) -> Path:
        (self.root / "logs").mkdir(exist_ok=True)
        n = len(list((self.root / "logs").glob(f"{ds}.*.log")))
        path = self.root / "logs" / f"{ds}.{n}.log"
        path.write_text(log)
        return path

    def run_day(self, ds: str) -> str:
        ok, log = self.dags_test(ds)
        if not ok:
            raise AssertionError(f"the DAG run for {ds} failed:\n{log[-6000:]}")
        return log


def airflow_env(data_dir: Path, airflow_home: Path) -> dict:
    """The environment of `airflow` commands for one scenario (the local target on data_dir)."""
    env = {
        **os.environ,
        targets.TARGET_ENV: "local",
        targets.local.DATA_DIR_ENV: str(data_dir),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(PROJECT_ROOT / "plugins"),
        "TZ": "UTC",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def local_target(data_dir: Path) -> targets.Target:
    return dataclasses.replace(
        targets.local.target(),
        bucket=str(data_dir / "bucket"),
        warehouse=str(data_dir / "warehouse" / "bigquery-public-data.duckdb"),
    )


def new_scenario(root: Path, warehouse_file: Path, env: dict | None = None) -> Scenario:
    """A fresh data folder holding a copy of the loaded warehouse, and a fresh Airflow DB.

    `env` (from `airflow_env`) may be made beforehand, in the main thread: a lane must not
    read os.environ while tests change it."""
    data_dir = root / "data"
    (data_dir / "warehouse").mkdir(parents=True)
    shutil.copy(warehouse_file, data_dir / "warehouse" / "bigquery-public-data.duckdb")
    env = env or airflow_env(data_dir, root / "airflow_home")
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return Scenario(root=root, target=local_target(data_dir), env=env)


def generate_chain(out: Path) -> Path:
    """The generated chain: one folder per day of NDJSON exports (gzip), as `bq extract` writes."""
    synthetic_chain.generate(out, START, days=DAYS, tx_per_day=TX_PER_DAY, seed=SEED)
    return out


def load_warehouse(chain: Path, path: Path) -> Path:
    warehouse.load_exports(chain, path)
    return path


# ---------------------------------------------------------------- lanes


class LaneStopped(RuntimeError):
    """A lane stopped before it recorded what a test asks for."""


class Lane(threading.Thread):
    """A scenario played in the background: `records` fills step by step; an error stops it."""

    def __init__(self, name: str, play: Callable[["Lane"], None]):
        super().__init__(name=f"lane-{name}", daemon=True)
        self.lane, self.play = name, play
        self.records: dict = {}
        self.error: str | None = None
        self.cancelled = threading.Event()
        self.started_at = self.ended_at = None

    def run(self):
        self.started_at = time.monotonic()
        try:
            self.play(self)
        except BaseException:  # recorded, raised again by `record` in the test that needs it
            self.error = traceback.format_exc()
        finally:
            self.ended_at = time.monotonic()

    def check(self):
        if self.cancelled.is_set():
            raise LaneStopped(f"lane {self.lane}: cancelled (the test session ended)")

    def record(self, key: str):
        """What the lane recorded under `key`, once the lane has ended."""
        self.join()
        if key not in self.records:
            raise LaneStopped(f"lane {self.lane} stopped before recording {key!r}:\n{self.error}")
        return self.records[key]

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def play_sequential(scenario: Scenario) -> Callable[[Lane], None]:
    """The reference run, then a re-run of a middle day and of the day after it."""

    def play(lane: Lane):
        logs = {}
        for ds in DAY_LIST:
            lane.check()
            logs[ds] = scenario.run_day(ds)
        lane.records["logs"] = logs
        lane.records["reference"] = snapshot(scenario.target)
        copy = scenario.root / "reference_data"
        shutil.copytree(scenario.root / "data", copy)
        lane.records["reference_target"] = local_target(copy)

        lane.records["rows_before_rerun"] = {ds: row_counts_and_duplicates(scenario.target, ds) for ds in DAY_LIST}
        lane.check()
        scenario.run_day(RERUN_DAY)
        after = DAY_LIST[DAY_LIST.index(RERUN_DAY) + 1]
        lane.records["built_after_the_rerun_day"] = built_by_features(scenario.target, after)
        scenario.run_day(after)
        lane.records["after_rerun"] = snapshot(scenario.target)
        lane.records["rows_after_rerun"] = {ds: row_counts_and_duplicates(scenario.target, ds) for ds in DAY_LIST}

    return play


def play_shuffled(scenario: Scenario) -> Callable[[Lane], None]:
    """The shuffled backfill, on-call following the refusals, then a SIGKILL while writing."""

    def play(lane: Lane):
        shuffle = []
        for ds in SHUFFLED:
            lane.check()
            ok, log = scenario.dags_test(ds)
            match = REFUSAL.search(log)
            shuffle.append({"ds": ds, "ok": ok, "refusal": match.groups() if match else None,
                            "built": built_by_features(scenario.target, ds), "log_tail": log[-4000:]})
        lane.records["shuffle"] = shuffle

        # On-call re-triggers the refused days, the latest first; a refusal names the days to
        # run first: run them in order, then the day again.
        follow, done = [], []
        for ds in sorted((s["ds"] for s in shuffle if not s["ok"]), reverse=True):
            if ds in done:
                continue
            lane.check()
            ok, log = scenario.dags_test(ds)
            match = REFUSAL.search(log)
            follow.append({"ds": ds, "ok": ok, "refusal": match.groups() if match else None,
                           "log_tail": log[-4000:]})
            if not ok:
                if not match:
                    raise AssertionError(f"{ds}: refused without naming the days to run:\n{log[-6000:]}")
                day, last = (dt.date.fromisoformat(d) for d in match.groups()[3:])
                while day <= last:
                    scenario.run_day(day.isoformat())
                    done.append(day.isoformat())
                    day += dt.timedelta(days=1)
                scenario.run_day(ds)
            done.append(ds)
        lane.records["follow"] = follow
        lane.records["followed_days"] = done
        lane.records["after_backfill"] = snapshot(scenario.target)

        lane.check()
        lane.records["kill"] = kill_while_writing(scenario, KILL_DAY)
        scenario.run_day(KILL_DAY)
        lane.records["after_kill_rerun"] = snapshot(scenario.target, [KILL_DAY])
        lane.records["outputs_after_kill_rerun"] = sorted(day_outputs(scenario.target, KILL_DAY))

    return play


# ---------------------------------------------------------------- SIGKILL while writing


def unpublished_versions(folders: dict[str, str]) -> list[Path]:
    """Version folders of the watched days that no pointer names (`dt=<ds>/v=<id>/`): what a
    writer is filling, or what a killed writer left; no reader ever reads them."""
    found = []
    for name in WATCHED:
        final = Path(folders[name])
        pointer = versioned.read_pointer(versioned.LocalFS(), final) or {"paths": []}
        in_force = {Path(p).name for p in pointer["paths"]}
        found += [p for p in final.glob("v=*") if p.is_dir() and p.name not in in_force]
    return found


class Reader(threading.Thread):
    """Reads every watched day folder again and again, as a downstream job would."""

    def __init__(self, folders: dict[str, str], expected: dict[str, str]):
        super().__init__(daemon=True)
        self.folders, self.expected = folders, expected
        self.stop = threading.Event()
        self.reads = 0
        self.partial: list[str] = []

    def run(self):
        while not self.stop.is_set():
            for name in WATCHED:
                folder = self.folders[name]
                try:
                    if not atomic.exists(folder):
                        continue  # absent (no version in force): allowed, never partial
                    checksum = run_summary.folder_checksum(folder)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # swapped while being read: read again next round
                except Exception as exc:  # unreadable Parquet = a partial file
                    self.partial.append(f"{name}: unreadable ({exc})")
                    continue
                self.reads += 1
                if checksum != self.expected[name]:
                    self.partial.append(f"{name}: checksum {checksum}")
            time.sleep(0.02)


def kill_while_writing(scenario: Scenario, ds: str) -> dict:
    """Run day `ds` again in its own process group and SIGKILL the group (Airflow,
    spark-submit, the JVM) as soon as build_features fills a new, unpublished version; a reader checks
    the day's folders all along. Returns what happened and what the kill left."""
    folders = day_outputs(scenario.target, ds)
    before = snapshot(scenario.target, [ds])
    already = {p for p in unpublished_versions(folders)}  # the previous versions kept for readers
    reader = Reader(folders, {name: before[(ds, name)]["content"] for name in WATCHED})
    reader.start()
    process = subprocess.Popen(
        [AIRFLOW, "dags", "test", DAG_ID, ds], env=scenario.env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    killed_while = None
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            busy = [p for p in unpublished_versions(folders) if p not in already and any(p.rglob("*"))]
            if busy:
                os.killpg(process.pid, signal.SIGKILL)
                killed_while = sorted(p.name for p in busy)
                break
            time.sleep(0.01)
    finally:
        if process.poll() is None and killed_while is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    time.sleep(1)  # the JVM in the same group is gone too; let the reader see the aftermath
    reader.stop.set()
    reader.join(timeout=30)
    return {
        "before": before,
        "killed_while": killed_while,
        "returncode": process.returncode,
        "reads": reader.reads,
        "partial": reader.partial,
        "after_kill": snapshot(scenario.target, [ds]),
        "unpublished_versions_left": [p.name for p in unpublished_versions(folders) if p not in already],
    }


# ---------------------------------------------------------------- starting the lanes


@dataclasses.dataclass
class Lanes:
    sequential: Lane
    shuffled: Lane

    def cancel_and_wait(self, timeout: float = RUN_TIMEOUT_S) -> None:
        for lane in (self.sequential, self.shuffled):
            lane.cancelled.set()
        for lane in (self.sequential, self.shuffled):
            lane.join(timeout)


def start_lanes(root: Path, warehouse_file: Path) -> Lanes:
    """Both lanes, started; their environments are made here, in the calling thread."""
    envs = {name: airflow_env(root / name / "data", root / name / "airflow_home") for name in ("sequential", "shuffled")}

    def lane(name: str, play: Callable[[Scenario], Callable[[Lane], None]]) -> Lane:
        def setup_and_play(this: Lane):
            play(new_scenario(root / name, warehouse_file, envs[name]))(this)

        return Lane(name, setup_and_play)

    lanes = Lanes(sequential=lane("sequential", play_sequential), shuffled=lane("shuffled", play_shuffled))
    lanes.sequential.start()
    lanes.shuffled.start()
    return lanes
