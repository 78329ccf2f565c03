"""The whole DAG through Airflow itself: `airflow dags test` on a throw-away AIRFLOW_HOME
and a real metadata DB, on a small generated chain loaded into a fresh warehouse."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pool_classifier import (datasets, publish, quality_gates, registry, run_cost, synthetic_chain, targets,
                             warehouse)
from tests.conftest import PROJECT_ROOT

DS = "2024-03-01"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.mark.slow
def test_dag_runs_end_to_end_through_airflow(tmp_path, local_target):
    data_dir = Path(local_target.bucket).parent
    env = {
        **os.environ,
        targets.TARGET_ENV: "local",
        targets.DATA_DIR_ENV: str(data_dir),
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(PROJECT_ROOT / "plugins"),
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    chain = tmp_path / "chain"
    synthetic_chain.generate(chain, dt.date.fromisoformat(DS), days=1, tx_per_day=6000, seed=3)
    warehouse.load_exports(chain, local_target.warehouse)

    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "mining_pool_classifier", DS],
        env=env, capture_output=True, text=True, timeout=600,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    assert "state=success" in log, log[-5000:]

    local = local_target
    blocks = pd.read_parquet(datasets.extract_dir(local, "blocks", DS))
    features = pd.read_parquet(datasets.features_dir(local, "address_features", DS))
    labels = pd.read_parquet(datasets.features_dir(local, "address_labels", DS))
    block_pools = pd.read_parquet(datasets.features_dir(local, "block_pools", DS))
    predictions = pd.read_parquet(datasets.predictions_dir(local, DS))

    assert 100 < len(blocks) < 200
    assert len(block_pools) == len(blocks)
    assert block_pools["pool_name"].notna().mean() > 0.8  # most generated blocks carry a tag
    assert (labels["label_source"] == "coinbase").sum() >= 10
    assert len(predictions) == len(features) > 1000
    assert set(predictions["address"]) == set(features["address"])
    champion = registry.champion_version(local, DS)
    assert (predictions["model_version"] == champion).all()
    metadata = registry.read_metadata(local, champion)
    assert metadata["data"]["window"] == {"first_day": DS, "last_day": DS}
    assert metadata["data"]["positives"] >= 10
    assert Path(registry.report_path(local, champion)).is_file()
    # The gates kept their figures, the tables users query hold the day, the cost was summed.
    for gate in quality_gates.GATES:
        assert quality_gates.read_figures(local, gate, DS)["passed"] is True
    assert publish.publish_day(local, DS)["rows"] == {
        "address_scores": len(predictions), "block_pools": len(block_pools)}
    assert "cost of" in log and list(Path(run_cost.day_dir(local, DS)).glob("run=*/summary.json"))
