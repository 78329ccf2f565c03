"""Alerts for on-call: a failure notifier, and the deadline of the daily run.

`OnCallNotifier` is an Airflow notifier (`on_failure_callback=OnCallNotifier()` on the DAG
or its tasks). Every alert is first logged as ONE line that names the DAG, the task, the
run, the try, the error and the log URL; it is then also sent

* to Slack, when a Slack webhook connection id is configured
  (`POOL_CLASSIFIER_ALERT_SLACK_CONN_ID`), through the Slack provider's notifier;
* by e-mail, when an SMTP connection id and a recipient are configured
  (`POOL_CLASSIFIER_ALERT_SMTP_CONN_ID`, `POOL_CLASSIFIER_ALERT_EMAIL_TO`), through the SMTP
  provider's notifier.

Each setting is read from the environment, else from the Airflow Variable of the same name
in lower case. The connections themselves (webhook URL, SMTP password) live in Airflow
Connections — a secrets backend, or `AIRFLOW_CONN_<ID>` — never in this repository.

`daily_run_deadline()` returns the DAG's `DeadlineAlert`: when a run has not finished some
hours after its logical date, the triggerer calls `OnCallNotifier(kind="deadline")`.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SLACK_CONN_SETTING = "POOL_CLASSIFIER_ALERT_SLACK_CONN_ID"
SMTP_CONN_SETTING = "POOL_CLASSIFIER_ALERT_SMTP_CONN_ID"
EMAIL_TO_SETTING = "POOL_CLASSIFIER_ALERT_EMAIL_TO"
EMAIL_FROM_SETTING = "POOL_CLASSIFIER_ALERT_EMAIL_FROM"
# One line stays readable in a log viewer and a Slack preview; the task log has the rest.
MAX_ERROR_CHARS = 600
NO_ERROR_IN_CONTEXT = "(no exception passed to the callback: see the task log)"

# A run scheduled for midnight UTC (Airflow 3's cron schedules: the logical date is the
# time the run is due) takes minutes locally and well under an hour on Dataproc Serverless,
# two retries 5 minutes apart included; 4 hours is late by any measure, and still early
# enough for the people who read the predictions in the morning.
DEADLINE_AFTER_LOGICAL_DATE = dt.timedelta(hours=4)


def setting(name: str) -> str | None:
    """An alert setting: the environment variable, else the Airflow Variable `name.lower()`."""
    value = os.environ.get(name)
    if value:
        return value
    try:
        from airflow.sdk import Variable

        return Variable.get(name.lower(), default=None) or None
    except Exception as exc:  # no Airflow DB or API to ask (tests, CLI): the environment decides
        log.debug("alert setting %s: no Variable available (%s)", name, exc)
        return None


def _get(obj: Any, name: str, default=None):
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    flat = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _base_url() -> str:
    try:
        from airflow.configuration import conf

        return conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    except Exception:
        return "http://localhost:8080"


def _run_url(dag_id: str, run_id: str) -> str:
    from urllib.parse import quote

    return f"{_base_url()}/dags/{dag_id}/runs/{quote(run_id)}"


def describe_failure(context: Mapping) -> dict[str, str]:
    """What on-call needs from a failure callback's context: dag, task, run, try, error, log URL."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = _get(ti, "dag_id") or _get(dag_run, "dag_id") or _get(dag, "dag_id") or "?"
    run_id = _get(ti, "run_id") or _get(dag_run, "run_id") or _get(dag_run, "dag_run_id") or "?"
    task_id = _get(ti, "task_id") or "(the run)"
    try_number = _get(ti, "try_number")
    max_tries = _get(ti, "max_tries")
    if try_number is None:
        tries = "-"
    elif max_tries is not None:
        tries = f"{try_number} of {max_tries + 1}"
    else:
        tries = str(try_number)
    # Workers put the exception in the context (task_runner.main); `airflow dags test` runs
    # tasks in-process and, in Airflow 3.1.8, does not: then the task log has it.
    error = context.get("exception") or context.get("reason") or NO_ERROR_IN_CONTEXT
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    try:
        log_url = _get(ti, "log_url") if ti is not None else None
    except Exception:  # a property that needs configuration: fall back to the run's page
        log_url = None
    return {
        "dag": dag_id,
        "task": task_id,
        "run": run_id,
        "try": tries,
        "error": _one_line(error),
        "log_url": log_url or (_run_url(dag_id, run_id) if dag_id != "?" and run_id != "?" else "-"),
    }


def describe_deadline(context: Mapping) -> dict[str, str]:
    """The same for a missed deadline: the triggerer passes the run and the deadline."""
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = _get(dag_run, "dag_id", "?")
    run_id = _get(dag_run, "dag_run_id") or _get(dag_run, "run_id") or "?"
    return {
        "dag": dag_id,
        "task": "(the run)",
        "run": run_id,
        "try": "-",
        "error": (
            f"not finished by its deadline {deadline.get('deadline_time', '?')} "
            f"(state {_get(dag_run, 'state', '?')}, logical date {_get(dag_run, 'logical_date', '?')})"
        ),
        "log_url": _run_url(dag_id, run_id) if dag_id != "?" and run_id != "?" else "-",
    }


def _parse_time(value) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def deadline_was_reachable(context: Mapping) -> bool:
    """False for runs created after their own deadline (a backfill or a manual run of a past
    day): those are late by design, and paging someone for them would be noise."""
    dag_run = context.get("dag_run") or {}
    deadline = _parse_time((context.get("deadline") or {}).get("deadline_time"))
    created = _parse_time(_get(dag_run, "queued_at")) or _parse_time(_get(dag_run, "run_after"))
    if deadline is None or created is None:
        return True
    return created < deadline


class OnCallNotifier(BaseNotifier):
    """Log one clear line for a failure or a missed deadline, and send it where configured.

    `kind="failure"` for `on_failure_callback`; `kind="deadline"` for the DeadlineAlert
    (the triggerer builds the notifier with the callback's kwargs plus `context`, then
    awaits it).
    """

    def __init__(self, kind: str = "failure", context=None):
        if kind not in ("failure", "deadline"):
            raise ValueError(f"kind must be 'failure' or 'deadline', not {kind!r}")
        super().__init__(context=context)
        self.kind = kind

    def message(self, context: Mapping) -> tuple[str, str]:
        """(subject, one-line text) of the alert."""
        facts = describe_deadline(context) if self.kind == "deadline" else describe_failure(context)
        what = "missed its deadline" if self.kind == "deadline" else "failed"
        subject = f"[{facts['dag']}] {facts['task']} {what} (run {facts['run']})"
        text = (
            f"ALERT {self.kind}: dag={facts['dag']} task={facts['task']} run={facts['run']} "
            f"try={facts['try']} error={facts['error']} log={facts['log_url']}"
        )
        return subject, text

    def channels(self) -> dict[str, str]:
        """The configured channels: {'slack': conn id} and/or {'smtp': conn id}."""
        found = {}
        slack = setting(SLACK_CONN_SETTING)
        if slack:
            found["slack"] = slack
        smtp = setting(SMTP_CONN_SETTING)
        if smtp:
            found["smtp"] = smtp
        return found

    def _senders(self, context: Mapping) -> list[BaseNotifier]:
        subject, text = self.message(context)
        if self.kind == "deadline" and not deadline_was_reachable(context):
            log.warning("%s (not sent: the run was created after its deadline, e.g. a backfill)", text)
            return []
        log.error("%s", text)
        senders: list[BaseNotifier] = []
        channels = self.channels()
        if not channels:
            log.warning(
                "alert not sent anywhere else: set %s or %s (+ %s) to a connection id to send it",
                SLACK_CONN_SETTING, SMTP_CONN_SETTING, EMAIL_TO_SETTING,
            )
        # Sent text is wrapped in {% raw %}: the providers' notifiers render their fields as
        # Jinja, and an error message may contain braces.
        if "slack" in channels:
            try:
                from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
            except ImportError as exc:
                raise RuntimeError(
                    f"{SLACK_CONN_SETTING}={channels['slack']} but the Slack provider is not installed: "
                    "add apache-airflow-providers-slack to requirements.in"
                ) from exc
            senders.append(SlackWebhookNotifier(
                slack_webhook_conn_id=channels["slack"], text="{% raw %}" + text + "{% endraw %}",
            ))
        if "smtp" in channels:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            to = setting(EMAIL_TO_SETTING)
            if not to:
                raise RuntimeError(f"{SMTP_CONN_SETTING} is set but {EMAIL_TO_SETTING} (the recipients) is not")
            senders.append(SmtpNotifier(
                smtp_conn_id=channels["smtp"],
                to=[a.strip() for a in to.split(",") if a.strip()],
                from_email=setting(EMAIL_FROM_SETTING),
                subject="{% raw %}" + subject + "{% endraw %}",
                html_content="{% raw %}<pre>" + _html_escape(text) + "</pre>{% endraw %}",
            ))
        return senders

    def notify(self, context) -> None:
        for sender in self._senders(context):
            sender(context)

    async def async_notify(self, context) -> None:
        for sender in self._senders(context):
            sender.context = context
            await sender


def _html_escape(text: str) -> str:
    import html

    return html.escape(text)


def daily_run_deadline(after_logical_date: dt.timedelta = DEADLINE_AFTER_LOGICAL_DATE):
    """The DAG's `deadline=`: alert on-call when a run is not done `after_logical_date` after
    its logical date. (If the DAG moves to a data-interval timetable, whose logical date is
    the start of the day processed, add the 24 h of the interval.)"""
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=after_logical_date,
        callback=AsyncCallback(OnCallNotifier, kwargs={"kind": "deadline"}),
    )


# `airflow dags test` (Airflow 3.1.8) fails at the end of a run of a DAG that has a
# deadline: `Deadline.prune_deadlines` compares the run's end_date while it is still None
# (TypeError). The scheduler path is not affected. `make run` and the tests that use
# `dags test` switch the alert off with this variable; deployments leave it unset.
DEADLINE_SWITCH = "POOL_CLASSIFIER_DEADLINE_ALERT"


def dag_deadline():
    """The DAG's `deadline=`: `daily_run_deadline()`, or None when switched off (see above)."""
    if os.environ.get(DEADLINE_SWITCH, "on").lower() in ("off", "0", "false", "no"):
        return None
    return daily_run_deadline()


def dag_default_args(retry_delay: dt.timedelta) -> dict:
    """Every DAG's `default_args`: its owner, two retries `retry_delay` apart, and on-call told of
    each failure (`OnCallNotifier`)."""
    return {
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": retry_delay,
        "on_failure_callback": OnCallNotifier(),
    }
