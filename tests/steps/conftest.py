"""Fixtures of the steps' tests: one real generated day for the quality gates (extract, Spark
features, model, scores), built once per session, and a private copy of it per test."""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pytest

from pool_classifier.io import warehouse
from pool_classifier.steps import build_features, extract_day, score_addresses, train_model
from pool_classifier.targets import Target, local
from tools import synthetic_chain

DAY0, DAY1, DAY2 = "2024-02-29", "2024-03-01", "2024-03-02"


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Target:
    """Two generated days loaded and extracted; day 1 featured, trained and scored."""
    root = tmp_path_factory.mktemp("gates")
    target = dataclasses.replace(
        local.target(), bucket=str(root / "bucket"), warehouse=str(root / "warehouse.duckdb")
    )
    synthetic_chain.generate(root / "chain", dt.date.fromisoformat(DAY1), days=2, tx_per_day=1500, seed=3)
    warehouse.load_exports(root / "chain", target.warehouse)
    extract_day.extract_day(target, DAY1)
    extract_day.extract_day(target, DAY2)
    build_features.build_features(target, DAY1)
    model = train_model.train_model(target, DAY1)
    score_addresses.score_addresses(target, DAY1, model["version"])
    return target


@pytest.fixture
def target(built, tmp_path) -> Target:
    """A private copy of the built bucket, free to damage."""
    shutil.copytree(built.bucket, tmp_path / "bucket")
    return dataclasses.replace(built, bucket=str(tmp_path / "bucket"))
