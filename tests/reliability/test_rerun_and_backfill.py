"""Re-runs and backfills through Airflow itself (`airflow dags test`, real metadata DB), on the
4 generated days: nothing is lost or doubled, whatever is re-run and in whatever order.

Byte-identical: every output written by DuckDB, pyarrow and joblib (extracts, quality
figures, models, predictions) is compared byte for byte; the folders written by Spark
(features, state) are compared by content — same files, same rows, same schema — because
parquet-mr's footer lists column encodings from a Java HashSet (see `run_summary`).
The runs are played by the lanes of scenarios.py; these tests check what they recorded.
"""
from __future__ import annotations

import datetime as dt

import pytest

from pool_classifier import datasets
from tests.reliability.scenarios import DAY_LIST, RERUN_DAY, SHUFFLED, assert_same_as_reference

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def test_rerunning_a_day_gives_identical_outputs_and_no_duplicate_rows(sequential):
    before = sequential.record("rows_before_rerun")
    assert all(dupes == 0 for day in before.values() for _, dupes in day.values()), before
    # The re-run of a middle day removed the later state (built on the old day), so the day
    # after was re-run too, in order, as the runbook says.
    assert sequential.record("built_after_the_rerun_day") == [
        f"features/{t}" for t in datasets.FEATURE_TABLES
    ], f"the state of the day after {RERUN_DAY} should be gone, its features kept until re-run"
    assert_same_as_reference(sequential.record("reference"), sequential.record("after_rerun"))
    assert sequential.record("rows_after_rerun") == before


def day_before(ds: str) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()


def expected_outcome(states: set[str], ds: str) -> tuple[bool, set[str]]:
    """The state design, as a model: (accepted, states after the run).

    Accepted when no state is older than `ds` (it starts the history) or the day before has
    one; an accepted day removes every later state.
    """
    earlier = [d for d in states if d < ds]
    if earlier and max(earlier) != day_before(ds):
        return False, states
    return True, {d for d in states if d < ds} | {ds}


def expected_refusal(states: set[str], ds: str) -> tuple[str, ...]:
    """What the refusal must name: the missing state, the day, the latest state before it,
    and the days to run first (from the day after that state to the day before)."""
    latest = max(d for d in states if d < ds)
    first_missing = (dt.date.fromisoformat(latest) + dt.timedelta(days=1)).isoformat()
    return day_before(ds), ds, latest, first_missing, day_before(ds)


def test_a_shuffled_backfill_is_refused_with_the_days_to_run_then_ends_like_the_sequential_run(
    sequential, shuffled
):
    shuffle = shuffled.record("shuffle")
    assert [run["ds"] for run in shuffle] == SHUFFLED
    states: set[str] = set()
    for run in shuffle:
        accepted = expected_outcome(states, run["ds"])[0]
        assert run["ok"] == accepted, f"{run['ds']}: expected {'success' if accepted else 'a refusal'}\n{run['log_tail']}"
        if not accepted:
            assert run["refusal"] == expected_refusal(states, run["ds"]), run["log_tail"]
            # Refused before any work: nothing of the day was built by the features job.
            assert run["built"] == [], run["ds"]
        states = expected_outcome(states, run["ds"])[1]
    refused = [run["ds"] for run in shuffle if not run["ok"]]
    assert refused == [DAY_LIST[i] for i in (2, 3)]

    # On-call re-triggered the latest refused day first: refused again, naming the days to
    # run first; those, then the day, completed the history in date order.
    follow = shuffled.record("follow")
    assert [run["ds"] for run in follow] == [DAY_LIST[3]]
    assert not follow[0]["ok"]
    assert follow[0]["refusal"] == expected_refusal(states, DAY_LIST[3]) == (
        DAY_LIST[2], DAY_LIST[3], DAY_LIST[1], DAY_LIST[2], DAY_LIST[2])
    assert shuffled.record("followed_days") == DAY_LIST[2:]
    assert_same_as_reference(sequential.record("reference"), shuffled.record("after_backfill"))
