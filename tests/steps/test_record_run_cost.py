"""record_run_cost on the local target: each local step records its wall time and the bytes of
what its declaration says it reads; the run's records are summed into its summary."""
from __future__ import annotations

import dataclasses
import json

import pytest

from pool_classifier.io import cost_records
from pool_classifier.io.cost_records import Prices, RunInfo
from pool_classifier.steps import record_run_cost

PRICES = Prices.load()
RUN = RunInfo("mining_pool_classifier", "scheduled__2024-03-01T00:00:00+00:00", "2024-03-01",
              "extract_day.export_outputs", 1, "gcp")


def test_a_local_step_records_its_wall_time_and_the_bytes_it_read(local_target, tmp_path):
    inputs = tmp_path / "in"
    (inputs / "dt=2024-03-01").mkdir(parents=True)
    (inputs / "dt=2024-03-01" / "part-0.parquet").write_bytes(b"x" * 1000)
    (inputs / "other.json").write_bytes(b"y" * 24)
    run = dataclasses.replace(RUN, task_id="build_features", target="local")
    with pytest.raises(RuntimeError):
        with cost_records.measure_local_step(local_target, run, [inputs, tmp_path / "absent"], PRICES):
            raise RuntimeError("the step failed")
    retry = dataclasses.replace(run, try_number=2)
    with cost_records.measure_local_step(local_target, retry, [inputs], PRICES):
        pass
    records = cost_records.read_local_records(local_target, "2024-03-01", run.run_id)
    assert [(r.try_number, r.state, r.bytes_read, r.cost_usd) for r in records] == [
        (1, "failed", 1024, 0.0), (2, "success", 1024, 0.0)]
    assert all(r.kind == "local_task" and r.wall_seconds >= 0 for r in records)
    table = record_run_cost.summarize_local_run(local_target, "2024-03-01", run.run_id)
    assert "build_features" in table and "total" in table
    summary_file = cost_records.summary_path(local_target, "2024-03-01", run.run_id)
    assert json.loads(open(summary_file).read())["records"] == 2


def test_local_steps_read_what_the_pipeline_writes_before_them(local_target):
    from pool_classifier import datasets

    assert record_run_cost.local_step_inputs(local_target, "build_features", "2024-03-01") == [
        *(datasets.extract_dir(local_target, t, "2024-03-01") for t in datasets.EXTRACT_TABLES),
        *(datasets.state_dir(local_target, t, "2024-02-29") for t in datasets.STATE_TABLES),
        str(datasets.POOLS_FILE),
    ]
    # The extract reads the warehouse (both source tables are in it: counted once).
    assert record_run_cost.local_step_inputs(local_target, "extract_day", "2024-03-01") == [local_target.warehouse]
    with pytest.raises(KeyError, match="no local step"):
        record_run_cost.local_step_inputs(local_target, "publish", "2024-03-01")
