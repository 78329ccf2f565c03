"""check_request: what a run was asked to do — the DAG's Params (the trigger and backfill form) — and their checks.

The form (Airflow's "Trigger" dialog, or `--conf` / the Backfill dialog) has:

| field | default | meaning |
|---|---|---|
| `date_from`, `date_to` | empty | optional guard for a backfill: the run refuses to start when its logical date is outside the range |
| `target` | the deployed target | must name the target this deployment runs (`local` or `gcp`): a conf written for the other one is refused |
| `retrain` | `auto` | `auto`: retrain on the cadence's days; `always`; `never` (score with the champion only) |
| `dry_run` | `false` | check the request and the inputs, estimate the cost, write nothing |

JSON-schema checks (types, date format, enums) run when the run is created, so the UI and
the API refuse a bad form at once, naming the field. The checks across fields (a reversed
range, a future date, a logical date outside the range) need the logical date: the first
task runs `check_request` before any work, and its error names the field.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

RETRAIN_CHOICES = ("auto", "always", "never")


class RunRequestError(ValueError):
    """A run's conf is wrong; the message names the field and what to fix."""


@dataclass(frozen=True)
class RunRequest:
    ds: str
    target: str
    retrain: str
    dry_run: bool
    date_from: str | None
    date_to: str | None


def param_schemas(target_name: str) -> dict[str, dict]:
    """JSON schemas of the Params (plain dicts: building them costs nothing at parse time)."""
    optional_date = {
        "type": ["null", "string"],
        "format": "date",
        "description": "YYYY-MM-DD (UTC). Optional: with both set, a run whose logical date "
        "is outside [date_from, date_to] is refused.",
    }
    return {
        "date_from": {"default": None, "title": "Backfill from (UTC day)", **optional_date},
        "date_to": {"default": None, "title": "Backfill to (UTC day)", **optional_date},
        "target": {
            "default": target_name,
            "type": "string",
            "enum": ["local", "gcp"],
            "title": "Target",
            "description": f"This deployment runs on {target_name!r}; a conf for another target is refused.",
        },
        "retrain": {
            "default": "auto",
            "type": "string",
            "enum": list(RETRAIN_CHOICES),
            "title": "Retrain",
            "description": "auto: on the retraining cadence's days; always; never (score with the champion).",
        },
        "dry_run": {
            "default": False,
            "type": "boolean",
            "title": "Dry run",
            "description": "Check the request and the inputs, estimate the cost, write nothing.",
        },
    }


def _date(field: str, value, *, required: bool = False) -> dt.date | None:
    if value in (None, ""):
        if required:
            raise RunRequestError(f"{field}: missing; give a date YYYY-MM-DD (UTC).")
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RunRequestError(f"{field}: {value!r} is not a date; give YYYY-MM-DD (UTC).") from None


def check_request(params: dict, ds: str, target_name: str, today: dt.date | None = None) -> RunRequest:
    """The run's request, or RunRequestError naming the field that is wrong."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    logical = _date("logical date", ds, required=True)
    date_from = _date("date_from", params.get("date_from"))
    date_to = _date("date_to", params.get("date_to"))
    for field, day in (("logical date", logical), ("date_from", date_from), ("date_to", date_to)):
        if day is not None and day > today:
            raise RunRequestError(
                f"{field}: {day} is in the future (today is {today} UTC); the chain has no blocks "
                "there yet."
            )
    if (date_from is None) != (date_to is None):
        missing = "date_to" if date_to is None else "date_from"
        raise RunRequestError(f"{missing}: missing; give both date_from and date_to, or neither.")
    if date_from is not None and date_from > date_to:
        raise RunRequestError(
            f"date_from: {date_from} is after date_to {date_to}; swap them (the range is inclusive)."
        )
    if date_from is not None and not date_from <= logical <= date_to:
        raise RunRequestError(
            f"date_from/date_to: the logical date {logical} is outside [{date_from}, {date_to}]; "
            "this run was not part of that backfill."
        )
    target = params.get("target") or target_name
    if target != target_name:
        raise RunRequestError(
            f"target: {target!r} asked, but this deployment runs {target_name!r} "
            "(set by POOL_CLASSIFIER_TARGET); trigger it on the other deployment."
        )
    retrain = params.get("retrain") or "auto"
    if retrain not in RETRAIN_CHOICES:
        raise RunRequestError(f"retrain: {retrain!r} is not one of {', '.join(RETRAIN_CHOICES)}.")
    dry_run = params.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise RunRequestError(f"dry_run: {dry_run!r} is not true or false.")
    return RunRequest(
        ds=logical.isoformat(),
        target=target,
        retrain=retrain,
        dry_run=dry_run,
        date_from=date_from.isoformat() if date_from else None,
        date_to=date_to.isoformat() if date_to else None,
    )


def dry_run_plan(target, ds: str, estimate: str) -> str:
    """What a dry run logs: what the run would read (the target's estimate) and write."""
    from pool_classifier import datasets

    reads = ", ".join(datasets.extract_dir(target, t, ds) for t in datasets.EXTRACT_TABLES)
    return f"would extract {ds} ({estimate}) to {reads}, then build features, train, score and publish."
