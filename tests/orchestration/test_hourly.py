"""orchestration/hourly.py: which hour a run of the hourly DAG rewrites."""
from __future__ import annotations

import datetime as dt
import types

from pool_classifier.orchestration.hourly import run_hour

UTC = dt.timezone.utc


def test_a_scheduled_run_rewrites_up_to_the_hour_that_has_just_ended():
    # @hourly is a trigger timetable in Airflow 3: the 13:00 run has logical date 13:00
    ctx = {"params": {}, "logical_date": dt.datetime(2024, 3, 1, 13, 0, 4, tzinfo=UTC)}
    assert run_hour(ctx) == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_a_manual_run_without_a_logical_date_uses_when_it_was_triggered():
    ctx = {"params": {"hour": None}, "logical_date": None,
           "dag_run": types.SimpleNamespace(run_after=dt.datetime(2024, 3, 1, 0, 30, tzinfo=UTC))}
    assert run_hour(ctx) == dt.datetime(2024, 2, 29, 23, tzinfo=UTC)


def test_the_forms_hour_is_taken_as_given():
    ctx = {"params": {"hour": "2024-03-01T09"}, "logical_date": dt.datetime(2024, 3, 1, 13, tzinfo=UTC)}
    assert run_hour(ctx) == dt.datetime(2024, 3, 1, 9, tzinfo=UTC)
