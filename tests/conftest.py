"""Shared fixtures: a throw-away data folder per test, the real blocks of shared/ loaded into
a local warehouse, and one local SparkSession for the whole test session.

Airflow is configured through environment variables before anything imports it, the way
production sets Variables and Connections (`AIRFLOW_VAR_*`, `AIRFLOW_CONN_*`).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
REAL_DATA = SHARED / "data" / "real"

_SESSION_TMP = Path(os.environ.get("PYTEST_AIRFLOW_HOME_ROOT", "/tmp")) / f"pool-classifier-tests-{os.getpid()}"
os.environ.setdefault("AIRFLOW_HOME", str(_SESSION_TMP / "airflow_home"))
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["TZ"] = "UTC"
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
# `airflow dags test` breaks on a DAG with a deadline in Airflow 3.1.8 (see alerts.DEADLINE_SWITCH);
# the DAG policy test checks the deadline with the switch on.
os.environ["POOL_CLASSIFIER_DEADLINE_ALERT"] = "off"


def pytest_configure(config):
    if not REAL_DATA.is_dir():
        raise pytest.UsageError(f"the real blocks are expected at {REAL_DATA} (../shared beside the repo)")


# The lanes started for this session (for the terminal summary).
LANES_KEY = pytest.StashKey[object]()


def _is_reliability(item) -> bool:
    return item.get_closest_marker("reliability") is not None


def pytest_collection_modifyitems(config, items):
    """The reliability scenarios last: their lanes play in the background while the rest runs."""
    items.sort(key=_is_reliability)  # stable: the rest keeps its order


@pytest.fixture(scope="session")
def chain_dir(tmp_path_factory) -> Path:
    """The 4 generated days of the reliability tests (tests/reliability/scenarios.py)."""
    from tests.reliability import scenarios

    return scenarios.generate_chain(tmp_path_factory.mktemp("chain") / "exports")


@pytest.fixture(scope="session", autouse=True)
def reliability_lanes(request, tmp_path_factory):
    """When a `reliability` test is selected: the two lanes of long scenarios, started with the
    session (in background threads; see tests/reliability/scenarios.py); None otherwise."""
    if not any(_is_reliability(item) for item in request.session.items):
        yield None
        return
    from tests.reliability import scenarios

    chain = request.getfixturevalue("chain_dir")
    loaded = scenarios.load_warehouse(chain, tmp_path_factory.mktemp("warehouse") / "bigquery-public-data.duckdb")
    lanes = scenarios.start_lanes(tmp_path_factory.mktemp("lanes"), loaded)
    request.config.stash[LANES_KEY] = lanes
    yield lanes
    lanes.cancel_and_wait()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lanes = config.stash.get(LANES_KEY, None)
    if lanes is None:
        return
    for lane in (lanes.sequential, lanes.shuffled):
        took = f"{lane.seconds:.0f} s" if lane.seconds is not None else "not ended"
        terminalreporter.write_line(f"reliability lane {lane.lane}: {took}"
                                    + (", stopped by an error" if lane.error else ""))


@pytest.fixture
def local_target(tmp_path, monkeypatch):
    """The local target with its data folder in a fresh temporary directory."""
    from pool_classifier import targets

    monkeypatch.setenv(targets.TARGET_ENV, "local")
    monkeypatch.setenv(targets.local.DATA_DIR_ENV, str(tmp_path / "data"))
    return targets.current_target()


@pytest.fixture(scope="session")
def real_warehouse(tmp_path_factory) -> str:
    """All real exports of shared/data/real loaded once into a warehouse file."""
    from pool_classifier.io.warehouse import load_exports

    path = tmp_path_factory.mktemp("real") / "bigquery-public-data.duckdb"
    load_exports(REAL_DATA, path)
    return str(path)


@pytest.fixture
def real_target(local_target, real_warehouse):
    """The local target reading the real-blocks warehouse (read-only), writing to tmp."""
    import dataclasses

    return dataclasses.replace(local_target, warehouse=real_warehouse)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession (2 cores, UTC, ANSI on as in Spark 4) for all Spark tests."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("pool-classifier-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.ansi.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO on shutdown hits closed streams
    yield session
    session.stop()


# The gcp target without a cloud account (tests/orchestration/gcp_dag.py).
from tests.orchestration.gcp_dag import gcp_target, rendered  # noqa: E402,F401
