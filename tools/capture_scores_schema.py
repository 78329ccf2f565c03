"""The Parquet schema of `predictions/address_scores` as the real scoring job writes it, printed as
tests/api/real_schema.json with that entry replaced (the others as captured from `make run`).

In a throw-away local bucket: the model tests' day of features (tests/model/features_day.py),
`train_model` with the challenger, then `score_addresses` itself (the Spark job, as the DAG runs it).

    PYTHONPATH=plugins:. .venv/bin/python -m tools.capture_scores_schema > tests/api/real_schema.json
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

DS = "2024-03-02"
NAME = "predictions/address_scores"


def capture(folder: Path) -> dict:
    os.environ["POOL_CLASSIFIER_TARGET"] = "local"
    from pool_classifier import targets

    os.environ[targets.local.DATA_DIR_ENV] = str(folder / "data")
    from pool_classifier.model import training
    from pool_classifier.model.profiles import ProfileConfig
    from pool_classifier.steps import score_addresses, train_model
    from tests.model.features_day import write_day
    from tools.synthetic_serving import capture_schema

    target = targets.current_target()
    write_day(target, DS)
    config = training.TrainConfig(candidates=(training.CHALLENGER,), profiles=ProfileConfig(k_max=3),
                                  importance_repeats=1)
    train_model.train_model(target, DS, config)
    score_addresses.score_addresses(target, DS)
    return capture_schema(target.bucket, DS, [NAME])


def main() -> int:
    real = Path(__file__).resolve().parents[1] / "tests" / "api" / "real_schema.json"
    with tempfile.TemporaryDirectory() as tmp:
        captured = capture(Path(tmp))
    print(json.dumps({**json.loads(real.read_text()), **captured}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
