"""The train and score steps as the DAG calls them: JSON-able results, the model report, clear
refusals. (Models, registry and Spark scoring in detail: tests/model/.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model import registry
from pool_classifier.steps import score_addresses as score
from pool_classifier.steps import train_model as train
from tests.model.features_day import write_day, write_parquet

DS = "2024-03-02"


def test_train_model_returns_what_the_task_log_and_xcom_need(local_target):
    write_day(local_target, DS)
    result = train.train_model(local_target, DS)
    assert json.loads(json.dumps(result)) == result  # JSON-able, as XCom stores it
    assert result["version"] in (f"rf-{DS}", f"hgb-{DS}")
    assert result["promoted"] is True and result["champion"] == result["version"]
    assert "first champion" in result["reason"]
    assert set(result["candidates"]) == {"rf", "hgb"}
    # The version's metrics: its calibrated probability at its chosen threshold; the candidates' at 0.5 raw.
    raw = result["candidates"][result["version"].split("-")[0]]
    assert result["metrics"]["threshold"] == result["calibration"]["decision"]["threshold"] != raw["threshold"] == 0.5
    assert result["metrics"]["pr_auc"] == pytest.approx(raw["pr_auc"])  # a monotone map keeps the ranking
    assert result["metrics"]["precision"] >= result["calibration"]["decision"]["target_precision"]
    assert result["report"] == registry.report_path(local_target, result["version"])
    assert result["report_uri"].startswith("file:///") and result["report_uri"].endswith("report.html")


def test_the_model_report_is_written_with_its_plots(local_target):
    write_day(local_target, DS)
    result = train.train_model(local_target, DS)
    folder = Path(result["path"])
    report = Path(result["report"]).read_text()
    for section in ("**PROMOTED**", "## Champion vs challenger", "## Candidates on the evaluation set",
                    "## Recall per pool", "## Calibration and the decision threshold", "## Top feature importances",
                    "## Data", "## Address profiles"):
        assert section in report
    for image in ("pr_curve.png", "confusion_matrix.png", "reliability.png", "importances.png",
                  "profiles_silhouette.png"):
        assert f"]({image})" in report
        assert (folder / image).read_bytes().startswith(b"\x89PNG")
    html = (folder / registry.REPORT_HTML_FILE).read_text()
    assert html.count('src="data:image/png;base64,') == 5  # one file, readable anywhere
    metadata = json.loads((folder / registry.METADATA_FILE).read_text())
    # The top importances of the report are the metadata's, in order.
    top = metadata["importances"][0]["feature"]
    assert report.index(f"| `{top}` |") < report.index(f"| `{metadata['importances'][1]['feature']}` |")


def test_scoring_without_a_champion_says_what_to_run(local_target):
    write_day(local_target, DS)
    with pytest.raises(registry.ModelNotFoundError, match="run train_model"):
        score.score_in_process(local_target, DS)
    assert issubclass(registry.ModelNotFoundError, FileNotFoundError)


def test_scoring_refuses_features_the_model_needs_and_the_day_lacks(local_target):
    write_day(local_target, DS)
    train.train_model(local_target, DS)
    location = datasets.features_dir(local_target, "address_features", DS)
    frame = atomic.read_frame(location).drop(columns=["total_tx_input_count"])
    with atomic.write_dir(location) as folder:
        write_parquet(frame, folder / "part-00000.parquet")
    with pytest.raises(registry.ModelMismatchError, match="total_tx_input_count"):
        score.score_in_process(local_target, DS)
