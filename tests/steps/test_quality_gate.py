"""What the gates share: every threshold with its reason; a gate run from the command line."""
from __future__ import annotations

import dataclasses
import shutil

from pool_classifier.steps import quality_gate
from pool_classifier.targets import local
from tests.steps.conftest import DAY1
from tests.steps.gate_helpers import edit


def test_every_threshold_carries_its_reason():
    reasons = quality_gate.SETTINGS.reasons()
    assert set(reasons) == {f.name for f in dataclasses.fields(quality_gate.GateSettings)}
    assert all(len(r["reason"]) > 40 for r in reasons.values())


def test_the_gate_runs_from_the_command_line(built, monkeypatch, capsys, tmp_path):
    shutil.copytree(built.bucket, tmp_path / "data" / "bucket")
    monkeypatch.setenv(local.DATA_DIR_ENV, str(tmp_path / "data"))
    assert quality_gate.main(["extract", "--ds", DAY1]) == 0
    assert "quality gate 'extract' passed for 2024-03-01" in capsys.readouterr().out
    edit(str(tmp_path / "data" / "bucket" / "predictions" / "address_scores" / f"dt={DAY1}"),
         lambda df: df.assign(score=-1.0))
    assert quality_gate.main(["scores", "--ds", DAY1]) == 1
    assert "scores_valid: expected 0 scores null or outside [0, 1]" in capsys.readouterr().err
