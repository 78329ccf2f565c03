"""What the reliability tests share: one generated chain (7 days × 1,500 transactions, seeded),
loaded once; `airflow dags test` on a throw-away Airflow home with a real metadata DB; and
the reference run — the 7 days run in date order through Airflow — with the checksums of
every output of every day.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pool_classifier import datasets, run_summary, synthetic_chain, targets, warehouse
from tests.conftest import PROJECT_ROOT

START = dt.date(2024, 3, 1)
DAYS = 7
TX_PER_DAY = 1500
# Seed 3 labels at least 10 pool addresses with features from the first day on, the
# minimum train_model needs: every day of the chain can run the whole DAG.
SEED = 3
DAY_LIST = [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "mining_pool_classifier"
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


def day_outputs(target: targets.Target, ds: str) -> dict[str, str]:
    """Every folder the DAG wrote for day `ds`, by name: each `<kind>/<name>/dt=<ds>` under the
    bucket, and each model version trained for the day (`models/<candidate>-<ds>`)."""
    bucket = Path(target.bucket)
    folders = {
        p.parent.relative_to(bucket).as_posix(): str(p)
        for p in sorted(bucket.glob(f"*/*/dt={ds}")) if p.parent.parent.name not in RUN_RECORDS
    }
    folders |= {
        p.parent.name: str(p)
        for p in sorted(bucket.glob(f"*/dt={ds}")) if p.parent.name not in RUN_RECORDS
    }
    for version in sorted((bucket / "models").glob(f"*-{ds}")):
        folders[f"models/{version.name[: -len(ds) - 1]}"] = str(version)
    return folders


def global_files(target: targets.Target) -> list[Path]:
    """Files of the bucket that hold every day at once (the model registry's champion log)."""
    return sorted(p for p in (Path(target.bucket) / "models").glob("*.json") if p.is_file())


def folder_bytes_digest(folder: str | Path) -> str:
    """sha256 over the names and raw bytes of the visible files of a folder."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(file.relative_to(folder).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def written_by_spark(folder: str | Path) -> bool:
    """Parquet written by Spark (parquet-mr) names Spark in its footer: compared by content,
    because parquet-mr lists column encodings from a Java HashSet (see run_summary)."""
    import pyarrow.parquet as pq

    files = sorted(Path(folder).glob("*.parquet"))
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
                "files": sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith(".")),
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


@dataclasses.dataclass
class Scenario:
    """A data folder (warehouse + bucket) and an Airflow home with a migrated metadata DB."""

    root: Path
    target: targets.Target
    env: dict

    def dags_test(self, ds: str, timeout: int = 900) -> tuple[bool, str]:
        """`airflow dags test` of one day; (run succeeded, log)."""
        run = subprocess.run(
            [AIRFLOW, "dags", "test", DAG_ID, ds], env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )
        log = run.stdout + run.stderr
        (self.root / "logs").mkdir(exist_ok=True)
        n = len(list((self.root / "logs").glob(f"{ds}*")))
        (self.root / "logs" / f"{ds}.{n}.log").write_text(log)
        return run.returncode == 0 and "state=success" in log, log

    def run_day(self, ds: str) -> str:
        ok, log = self.dags_test(ds)
        assert ok, f"the DAG run for {ds} failed:\n{log[-6000:]}"
        return log


def new_scenario(root: Path, warehouse_file: Path) -> Scenario:
    """A fresh data folder holding a copy of the loaded warehouse, and a fresh Airflow DB."""
    data_dir = root / "data"
    (data_dir / "warehouse").mkdir(parents=True)
    shutil.copy(warehouse_file, data_dir / "warehouse" / "bigquery-public-data.duckdb")
    env = {
        **os.environ,
        targets.TARGET_ENV: "local",
        targets.DATA_DIR_ENV: str(data_dir),
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(PROJECT_ROOT / "plugins"),
        "TZ": "UTC",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    target = dataclasses.replace(
        targets.TARGETS["local"](),
        bucket=str(data_dir / "bucket"),
        warehouse=str(data_dir / "warehouse" / "bigquery-public-data.duckdb"),
    )
    return Scenario(root=root, target=target, env=env)


@pytest.fixture(scope="session")
def chain_dir(tmp_path_factory) -> Path:
    """The generated chain: one folder per day of NDJSON exports (gzip), as `bq extract` writes."""
    out = tmp_path_factory.mktemp("chain") / "exports"
    synthetic_chain.generate(out, START, days=DAYS, tx_per_day=TX_PER_DAY, seed=SEED)
    return out


@pytest.fixture(scope="session")
def loaded_warehouse(chain_dir, tmp_path_factory) -> Path:
    """The chain loaded once into a warehouse file; scenarios copy it."""
    path = tmp_path_factory.mktemp("warehouse") / "bigquery-public-data.duckdb"
    warehouse.load_exports(chain_dir, path)
    return path


@pytest.fixture(scope="session")
def sequential(loaded_warehouse, tmp_path_factory):
    """The reference: the 7 days through `airflow dags test`, in date order."""
    scenario = new_scenario(tmp_path_factory.mktemp("sequential"), loaded_warehouse)
    for ds in DAY_LIST:
        scenario.run_day(ds)
    scenario.reference = snapshot(scenario.target)
    for ds in DAY_LIST:
        missing = [name for name in CORE_OUTPUTS if (ds, name) not in scenario.reference]
        assert not missing, f"the reference run wrote no {missing} for {ds}"
        assert any(name.startswith("models/") for d, name in scenario.reference if d == ds), ds
    return scenario
