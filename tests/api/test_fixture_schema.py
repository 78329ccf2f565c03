"""The API's test bucket has the shapes the pipeline writes: every Parquet schema the serving
snapshot reads equals the one of a real `make run` (tests/api/real_schema.json, captured from its
bucket), and that capture agrees with what the Spark jobs declare (scoring.SCORED_SCHEMA and the
prediction/profile columns; feature_spec's features)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.model.feature_spec import FEATURE_COLUMNS, FIRST_SEEN
from pool_classifier.model.scoring import CONTRIBUTIONS_TYPE, PREDICTION_COLUMNS, PROFILE_COLUMNS, SCORED_FIELDS
from tests.api.conftest import DAYS

REAL = json.loads((Path(__file__).parent / "real_schema.json").read_text())
# Spark SQL types (SCORED_SCHEMA) as pyarrow writes them from a Spark Parquet file.
SPARK_TO_ARROW = {"string": "string", "double": "double", "boolean": "bool", "int": "int32", "date": "date32[day]",
                  CONTRIBUTIONS_TYPE: "list<element: struct<feature: string, value: double, contribution: double>>"}


def _location(bucket, name: str, ds: str) -> str:
    kind, table = name.split("/")
    where = datasets.Bucket(bucket)
    if kind == "predictions":
        return datasets.predictions_dir(where, ds) if table == "address_scores" else datasets.profiles_dir(where, ds)
    if kind == "state":
        return datasets.state_dir(where, table, ds)
    return datasets.features_dir(where, table, ds)


@pytest.mark.parametrize("name", sorted(REAL))
def test_the_fixture_writes_the_real_runs_schema(served, name):
    bucket, _ = served
    for ds in DAYS:
        files = atomic.data_files(_location(bucket, name, ds))
        assert files, f"{name} of {ds} not written"
        schema = pq.read_schema(files[0])
        assert [[n, str(schema.field(n).type)] for n in schema.names] == REAL[name], name


def test_the_captured_scores_are_what_the_scoring_job_declares():
    declared = dict(SCORED_FIELDS)
    for name, columns in (("predictions/address_scores", PREDICTION_COLUMNS),
                          ("predictions/address_profiles", PROFILE_COLUMNS)):
        real = REAL[name]
        assert [n for n, _ in real] == list(columns)
        assert all(kind == SPARK_TO_ARROW[declared[n]] for n, kind in real), name


def test_the_captured_features_are_the_feature_spec():
    assert [n for n, _ in REAL["features/address_features"]] == ["address", *FEATURE_COLUMNS, FIRST_SEEN]
