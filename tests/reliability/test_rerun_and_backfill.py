"""Re-runs and backfills through Airflow itself (`airflow dags test`, real metadata DB), on the
7 generated days: nothing is lost or doubled, whatever is re-run and in whatever order.

Byte-identical: every output written by DuckDB, pyarrow and joblib (extracts, model,
predictions) is compared byte for byte; the folders written by Spark (features, state) are
compared by content — same files, same rows, same schema — because parquet-mr's footer
lists column encodings from a Java HashSet (see `run_summary`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil

import duckdb
import pytest

from pool_classifier import datasets, quality_gates
from tests.reliability.conftest import (
    DAY_LIST, assert_same_as_reference, day_outputs, new_scenario, snapshot,
)

# ~20 min on 2 idle cores (7 days through `airflow dags test`, several times): `make reliability`.
pytestmark = [pytest.mark.slow, pytest.mark.reliability]

# The key of every output: a re-run must never double a row.
KEYS = {
    "extracts/blocks": "block_number",
    "extracts/outputs": "block_number, transaction_hash, output_index",
    "extracts/inputs": "block_number, transaction_hash, input_index",
    "features/address_features": "address",
    "features/block_pools": "block_number",
    "features/address_labels": "address",
    "features/training_features": "address",
    "state/address_state": "address",
    "state/coinbase_receipts": "address, pool_id",
    "predictions/address_scores": "address",
}


def row_counts_and_duplicates(target, ds: str) -> dict[str, tuple[int, int]]:
    """output -> (rows, rows whose key repeats)."""
    found = {}
    for name, folder in day_outputs(target, ds).items():
        if name not in KEYS:
            continue
        rows, distinct = duckdb.execute(
            f"SELECT count(*), count(DISTINCT ({KEYS[name]})) FROM '{folder}/*.parquet'"
        ).fetchone()
        found[name] = (rows, rows - distinct)
    return found


def test_every_day_of_the_reference_run_passes_the_quality_gates(sequential, tmp_path):
    """No false alarm on seven normal days; the figures are kept per day and gate. (On a copy
    of the reference run's bucket: the reference itself stays as the DAG left it.)"""
    shutil.copytree(sequential.target.bucket, tmp_path / "bucket")
    target = dataclasses.replace(sequential.target, bucket=str(tmp_path / "bucket"))
    for ds in DAY_LIST:
        for check in (quality_gates.check_extract, quality_gates.check_features, quality_gates.check_scores):
            record = check(target, ds)
            assert record["passed"], (ds, record)
    for gate in quality_gates.GATES:
        kept = sorted(p.parent.name for p in (tmp_path / "bucket" / "quality" / gate).glob("dt=*/figures.json"))
        assert kept == [f"dt={ds}" for ds in DAY_LIST]
    scores = quality_gates.read_figures(target, "scores", DAY_LIST[-1])
    assert scores["figures"]["previous_day"]["ds"] == DAY_LIST[-2]


def test_rerunning_a_day_gives_identical_outputs_and_no_duplicate_rows(sequential):
    before = {ds: row_counts_and_duplicates(sequential.target, ds) for ds in DAY_LIST}
    assert all(dupes == 0 for day in before.values() for _, dupes in day.values()), before
    # Re-run a middle day: its features remove the later state (built on the old day), so
    # the day after is re-run too, in order, as the runbook says.
    sequential.run_day(DAY_LIST[5])
    assert not (sequential.root / "data" / "bucket" / "state" / "address_state" / f"dt={DAY_LIST[6]}").exists()
    sequential.run_day(DAY_LIST[6])
    assert_same_as_reference(sequential.reference, snapshot(sequential.target))
    after = {ds: row_counts_and_duplicates(sequential.target, ds) for ds in DAY_LIST}
    assert after == before


REFUSAL = re.compile(
    r"StateOrderError: no state for (\d{4}-\d\d-\d\d) \(the latest state before (\d{4}-\d\d-\d\d) "
    r"is (\d{4}-\d\d-\d\d)\): run the days from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) first, in date order"
)


def expected_outcome(states: set[str], ds: str) -> tuple[bool, set[str]]:
    """The state design, as a model: (accepted, states after the run).

    Accepted when no state is older than `ds` (it starts the history) or the day before has
    one; an accepted day removes every later state.
    """
    earlier = [d for d in states if d < ds]
    day_before = (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()
    if earlier and max(earlier) != day_before:
        return False, states
    return True, {d for d in states if d < ds} | {ds}


def test_a_shuffled_backfill_is_refused_with_the_days_to_run_then_ends_like_the_sequential_run(
    sequential, loaded_warehouse, tmp_path
):
    scenario = new_scenario(tmp_path, loaded_warehouse)
    # Starts with a later day on an empty bucket (which the state takes as the start of the
    # history), then goes back to the first day (which drops that state), then jumps around.
    order = [DAY_LIST[i] for i in (2, 0, 4, 1, 6, 3, 5)]
    states: set[str] = set()
    refused = []
    for ds in order:
        accepted, states = expected_outcome(states, ds)
        ok, log = scenario.dags_test(ds)
        assert ok == accepted, f"{ds}: expected {'success' if accepted else 'a refusal'}\n{log[-5000:]}"
        if not accepted:
            match = REFUSAL.search(log)
            assert match, f"{ds}: no StateOrderError naming the days to run\n{log[-5000:]}"
            latest = max(d for d in states if d < ds)
            first_missing = (dt.date.fromisoformat(latest) + dt.timedelta(days=1)).isoformat()
            day_before = (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()
            assert match.groups() == (day_before, ds, latest, first_missing, day_before)
            # Refused before any work: nothing of the day was built by the features job.
            assert not any(
                (scenario.root / "data" / "bucket" / kind / table / f"dt={ds}").exists()
                for kind, tables in (("state", datasets.STATE_TABLES), ("features", datasets.FEATURE_TABLES))
                for table in tables
            ), ds
            refused.append(ds)
    assert refused == [DAY_LIST[4], DAY_LIST[6], DAY_LIST[3], DAY_LIST[5]]

    # On-call follows the messages: the earliest refused day first; when it is refused
    # again, run the days the message names, in order, then the day itself.
    pending = sorted(refused)
    followed = []
    for _ in range(3 * len(DAY_LIST)):
        if not pending:
            break
        ds = pending[0]
        ok, log = scenario.dags_test(ds)
        if ok:
            pending.pop(0)
            followed.append(ds)
            continue
        first, last = REFUSAL.search(log).groups()[3:]
        day = dt.date.fromisoformat(first)
        while day.isoformat() <= last:
            scenario.run_day(day.isoformat())
            followed.append(day.isoformat())
            day += dt.timedelta(days=1)
    assert pending == []
    # Day 3 was built once as the start of a history; the first refusal sends it round again.
    assert followed == DAY_LIST[2:]
    assert_same_as_reference(sequential.reference, snapshot(scenario.target))
