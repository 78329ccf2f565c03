"""The reference run: the 4 generated days through `airflow dags test`, in date order, on a
real metadata DB (lane `sequential` of scenarios.py). Every day writes every output, passes
every quality gate, and the first day holds what the whole DAG promises."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic, cost_records
from pool_classifier.model import registry
from pool_classifier.steps import check_extract, check_features, check_scores, publish_predictions, quality_gate
from tests.reliability.scenarios import CORE_OUTPUTS, DAY_LIST

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_every_day_wrote_every_output_and_trained_a_model(sequential):
    reference = sequential.record("reference")
    for ds in DAY_LIST:
        missing = [name for name in CORE_OUTPUTS if (ds, name) not in reference]
        assert not missing, f"the reference run wrote no {missing} for {ds}"
        assert any(name.startswith("models/") for d, name in reference if d == ds), ds


def test_the_first_day_holds_blocks_pools_labels_a_champion_and_its_scores(sequential):
    target = sequential.record("reference_target")
    ds = DAY_LIST[0]
    blocks = atomic.read_frame(datasets.extract_dir(target, "blocks", ds))
    features = atomic.read_frame(datasets.features_dir(target, "address_features", ds))
    labels = atomic.read_frame(datasets.features_dir(target, "address_labels", ds))
    block_pools = atomic.read_frame(datasets.features_dir(target, "block_pools", ds))
    predictions = atomic.read_frame(datasets.predictions_dir(target, ds))

    assert 100 < len(blocks) < 200
    assert len(block_pools) == len(blocks)
    assert block_pools["pool_name"].notna().mean() > 0.8  # most generated blocks carry a tag
    assert (labels["label_source"] == "coinbase").sum() >= 10
    assert len(predictions) == len(features) > 1000
    assert set(predictions["address"]) == set(features["address"])
    champion = registry.champion_version(target, ds)
    assert (predictions["model_version"] == champion).all()
    metadata = registry.read_metadata(target, champion)
    assert metadata["data"]["window"] == {"first_day": ds, "last_day": ds}
    assert metadata["data"]["positives"] >= 10
    assert Path(registry.report_path(target, champion)).is_file()
    # The tables users query hold the day, and the run's cost was summed and kept.
    assert publish_predictions.publish_day(target, ds)["rows"] == {
        "address_scores": len(predictions), "block_pools": len(block_pools)}
    assert "cost of" in sequential.record("logs")[ds]
    assert list(Path(cost_records.day_dir(target, ds)).glob("run=*/summary.json"))


def test_every_day_passes_the_quality_gates_and_their_figures_are_kept(sequential, tmp_path):
    """No false alarm on four normal days; the figures are kept per day and gate. (The gates
    run again on a copy of the reference bucket.)"""
    reference = sequential.record("reference_target")
    for gate in quality_gate.GATES:
        kept = sorted(p.parent.name for p in (Path(reference.bucket) / "quality" / gate).glob("dt=*/figures.json"))
        assert kept == [f"dt={ds}" for ds in DAY_LIST], gate
        assert all(quality_gate.read_figures(reference, gate, ds)["passed"] for ds in DAY_LIST), gate

    shutil.copytree(reference.bucket, tmp_path / "bucket")
    target = dataclasses.replace(reference, bucket=str(tmp_path / "bucket"))
    for ds in DAY_LIST:
        for check in (check_extract.check_extract, check_features.check_features, check_scores.check_scores):
            record = check(target, ds)
            assert record["passed"], (ds, record)
    scores = quality_gate.read_figures(target, "scores", DAY_LIST[-1])
    assert scores["figures"]["previous_day"]["ds"] == DAY_LIST[-2]
