"""The run's form: JSON-schema checks per field, then the checks across fields, each naming the field."""
import datetime as dt

import pytest
from airflow.exceptions import ParamValidationError
from airflow.sdk import Param

from pool_classifier.steps.check_request import RunRequestError, check_request, param_schemas

TODAY = dt.date(2026, 11, 23)


def check(ds="2024-03-02", **params):
    return check_request(params, ds, "local", today=TODAY)


def test_defaults_are_a_plain_daily_run():
    request = check()
    assert (request.ds, request.target, request.retrain, request.dry_run) == ("2024-03-02", "local", "auto", False)
    assert request.date_from is None and request.date_to is None


def test_a_backfill_range_that_holds_the_logical_date_is_accepted():
    request = check(date_from="2024-03-01", date_to="2024-03-07", retrain="never", dry_run=True)
    assert (request.date_from, request.date_to, request.retrain, request.dry_run) == (
        "2024-03-01", "2024-03-07", "never", True)


@pytest.mark.parametrize(
    "params, ds, field, words",
    [
        ({"date_from": "2024-03-07", "date_to": "2024-03-01"}, "2024-03-02", "date_from", "after date_to"),
        ({"date_from": "2024-03-01", "date_to": "2027-01-01"}, "2024-03-02", "date_to", "in the future"),
        ({}, "2026-11-24", "logical date", "in the future"),
        ({"date_from": "March 1st", "date_to": "2024-03-07"}, "2024-03-02", "date_from", "not a date"),
        ({"date_from": "2024-03-01"}, "2024-03-02", "date_to", "give both"),
        ({"date_from": "2024-03-03", "date_to": "2024-03-07"}, "2024-03-02", "date_from/date_to", "outside"),
        ({"target": "gcp"}, "2024-03-02", "target", "this deployment runs 'local'"),
        ({"retrain": "sometimes"}, "2024-03-02", "retrain", "not one of"),
        ({"dry_run": "yes"}, "2024-03-02", "dry_run", "not true or false"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(params, ds, field, words):
    with pytest.raises(RunRequestError) as error:
        check(ds, **params)
    message = str(error.value)
    assert message.startswith(f"{field}:") and words in message


@pytest.mark.parametrize(
    "name, value",
    [("date_from", "2024-02-30"), ("date_to", "yesterday"), ("target", "aws"),
     ("retrain", "weekly"), ("dry_run", "no")],
)
def test_the_form_schema_refuses_bad_values_before_the_run_exists(name, value):
    param = Param(**param_schemas("local")[name])
    with pytest.raises(ParamValidationError):
        param.resolve(value)


def test_the_form_schema_accepts_its_defaults_and_good_values():
    schemas = param_schemas("local")
    for name, schema in schemas.items():
        Param(**schema).resolve()  # the default is valid
    assert Param(**schemas["date_from"]).resolve("2024-03-01") == "2024-03-01"
    assert Param(**schemas["retrain"]).resolve("never") == "never"


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(local_target):
    from pathlib import Path

    from pool_classifier.io import warehouse
    from pool_classifier.steps.check_request import dry_run_plan
    from pool_classifier.steps.extract_day import count_blocks
    from tools import synthetic_chain

    chain = Path(local_target.bucket).parent / "chain"
    synthetic_chain.generate(chain, dt.date(2024, 3, 1), days=1, tx_per_day=300, seed=3)
    warehouse.load_exports(chain, local_target.warehouse)
    plan = dry_run_plan(local_target, "2024-03-01", count_blocks(local_target, "2024-03-01"))
    blocks = int(plan.split("(")[1].split(" blocks")[0])
    assert 100 < blocks < 200 and "extracts/blocks/dt=2024-03-01" in plan
    assert not Path(local_target.bucket).exists()  # nothing written
