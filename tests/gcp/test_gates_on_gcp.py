"""On gcp a quality gate runs on a copy of what it reads from the bucket; its figures go
back to the bucket whether it passes or fails. A folder stands for the bucket (LocalStore);
the day is a real generated one, extracted by the local target."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import pandas as pd
import pytest

from pool_classifier import datasets
from pool_classifier.io import bucket_mirror
from pool_classifier.steps import extract_day as extract
from pool_classifier.steps import quality_gates
from tools import synthetic_chain
from pool_classifier.io import warehouse
from pool_classifier.io.bucket_mirror import LocalStore

DS = "2024-03-01"


@pytest.fixture
def bucket(tmp_path, local_target):
    chain = tmp_path / "chain"
    synthetic_chain.generate(chain, dt.date.fromisoformat(DS), days=1, tx_per_day=1500, seed=5)
    warehouse.load_exports(chain, local_target.warehouse)
    extract.extract_day(local_target, DS)
    store = LocalStore(local_target.bucket, bucket="pool-data-test")
    remote = dataclasses.replace(local_target, name="gcp", bucket="gs://pool-data-test")
    return store, remote, local_target


def test_the_extract_gate_runs_on_a_copy_and_writes_its_figures_back(bucket):
    store, remote, local = bucket
    figures = bucket_mirror.gate_in_copy(store, remote, "extract", DS)
    assert figures["passed"] is True
    written = json.loads((store.root / f"quality/extract/dt={DS}/figures.json").read_text())
    # The same figures as the gate run in place (JSON has lists where Python had tuples).
    assert written == json.loads(json.dumps(quality_gates.check_extract(local, DS), default=str))
    assert written["checks"] == json.loads(json.dumps(figures["checks"], default=str))


def test_a_failing_gate_still_writes_its_figures_back(bucket):
    store, remote, local = bucket
    blocks_dir = datasets.extract_dir(local, "blocks", DS)
    blocks = pd.read_parquet(blocks_dir)
    shutil.rmtree(blocks_dir)
    blocks_dir_path = store.root / f"extracts/blocks/dt={DS}"
    blocks_dir_path.mkdir(parents=True)
    blocks.drop(index=len(blocks) // 2).to_parquet(blocks_dir_path / "blocks.parquet", index=False)
    with pytest.raises(quality_gates.QualityGateError, match="expected"):
        bucket_mirror.gate_in_copy(store, remote, "extract", DS)
    written = json.loads((store.root / f"quality/extract/dt={DS}/figures.json").read_text())
    assert written["passed"] is False
