"""Alerts: the failure notifier inside a real failing task run, its channels, and the deadline.

A real `airflow dags test` of a one-task DAG that fails runs `OnCallNotifier` with Airflow's
own context; the e-mail goes through the SMTP provider to an SMTP server on the loopback.
The DeadlineAlert is run the way the triggerer runs it (Airflow's DeadlineCallbackTrigger).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import socketserver
import subprocess
import sys
import textwrap
import threading
from email import message_from_bytes
from pathlib import Path
from urllib.parse import quote

import pytest

from pool_classifier.orchestration import alerts
from tests.conftest import PROJECT_ROOT

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ALERT_ENV = (alerts.SLACK_CONN_SETTING, alerts.SMTP_CONN_SETTING, alerts.EMAIL_TO_SETTING,
             alerts.EMAIL_FROM_SETTING)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to receive one message: no TLS, no auth."""

    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self._say("220 localhost test SMTP")
        envelope = {"to": []}
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode().strip().split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                self._say("250 localhost")
            elif verb == "MAIL":
                envelope["from"] = line.decode().strip()
                self._say("250 OK")
            elif verb == "RCPT":
                envelope["to"].append(line.decode().strip())
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 end with <CRLF>.<CRLF>")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                self.server.messages.append((envelope, message_from_bytes(b"".join(data))))
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("250 OK")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_alert_settings(monkeypatch):
    for name in ALERT_ENV:
        monkeypatch.delenv(name, raising=False)


def _body(message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        p.get_payload(decode=True).decode() for p in parts if p.get_content_maintype() == "text"
    )


ERROR_LINE = "ValueError: bad {{ rows }} in dt=2024-03-01 | second line of the error"
PROBE_DAG = textwrap.dedent('''
    """A one-task DAG that fails, to watch the on-call notifier work."""
    import pendulum
    from airflow.sdk import dag, task
    from pool_classifier.orchestration.alerts import OnCallNotifier

    @dag(dag_id="alert_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         default_args={"owner": "tests", "retries": 0, "on_failure_callback": OnCallNotifier()})
    def alert_probe():
        @task
        def load_day():
            raise ValueError("bad {{ rows }} in dt=2024-03-01\\nsecond line of the error")
        load_day()

    alert_probe()
''')


@pytest.mark.slow
def test_a_failing_task_logs_one_line_and_mails_on_call(tmp_path, smtp_server):
    """In a real task failure: one log line names dag, task, run, try, error and log URL, and the
    same text reaches the SMTP server through the SMTP provider's notifier."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alert_probe.py").write_text(PROBE_DAG)
    port = smtp_server.server_address[1]
    env = {
        **{k: v for k, v in os.environ.items() if k not in ALERT_ENV},
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW_CONN_ONCALL_SMTP": (
            f"smtp://127.0.0.1:{port}/?disable_tls=true&disable_ssl=true&timeout=10&retry_limit=0"
        ),
        alerts.SMTP_CONN_SETTING: "oncall_smtp",
        alerts.EMAIL_TO_SETTING: "oncall@example.org",
        alerts.EMAIL_FROM_SETTING: "airflow@example.org",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run(
        [AIRFLOW, "dags", "test", "alert_probe", "2024-03-01"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    log = run.stdout + run.stderr
    lines = [line for line in log.splitlines() if "ALERT failure:" in line]
    assert len(lines) == 1, log[-4000:]
    line = lines[0]
    fields = re.search(
        r"ALERT failure: dag=(\S+) task=(\S+) run=(\S+) try=(.+?) error=(.+?) log=(\S+)", line
    )
    assert fields, line
    dag_id, task_id, run_id, tries, error, log_url = fields.groups()
    assert (dag_id, task_id, tries) == ("alert_probe", "load_day", "1 of 1")
    assert run_id.startswith("manual__")
    # A worker passes the exception to the callback; `airflow dags test` runs the task
    # in-process and (Airflow 3.1.8) passes none: then the line points to the task log.
    assert error in (ERROR_LINE, alerts.NO_ERROR_IN_CONTEXT)
    assert log_url == (
        f"http://localhost:8080/dags/alert_probe/runs/{quote(run_id)}/tasks/load_day?try_number=1"
    )

    assert len(smtp_server.messages) == 1, log[-4000:]
    envelope, message = smtp_server.messages[0]
    assert "oncall@example.org" in envelope["to"][0]
    assert message["Subject"] == f"[alert_probe] load_day failed (run {run_id})"
    assert line.split("ALERT ", 1)[1].split(" [")[0] in _body(message)


def _failure_context():
    class TI:  # the attributes the Task SDK's RuntimeTaskInstance exposes
        dag_id, task_id, run_id = "mining_pool_classifier", "build_features", "scheduled__2024-03-02T00:00:00+00:00"
        try_number, max_tries = 3, 2
        log_url = "http://localhost:8080/dags/mining_pool_classifier/runs/x/tasks/build_features?try_number=3"

    return {"ti": TI(), "exception": RuntimeError("Spark job build_features.py failed (exit 1); last lines:\na\nb")}


def test_without_a_channel_the_alert_is_one_clear_log_line(no_alert_settings, caplog):
    notifier = alerts.OnCallNotifier()
    with caplog.at_level(logging.INFO, logger=alerts.__name__):
        notifier(_failure_context())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "ALERT failure: dag=mining_pool_classifier task=build_features "
        "run=scheduled__2024-03-02T00:00:00+00:00 try=3 of 3 "
        "error=RuntimeError: Spark job build_features.py failed (exit 1); last lines: | a | b "
        "log=http://localhost:8080/dags/mining_pool_classifier/runs/x/tasks/build_features?try_number=3"
    ]
    assert any("alert not sent anywhere else" in r.getMessage() for r in caplog.records)


def test_an_error_with_braces_is_mailed_as_it_is(monkeypatch, no_alert_settings, smtp_server):
    """The providers' notifiers render their fields as Jinja: an error's braces must survive."""
    port = smtp_server.server_address[1]
    monkeypatch.setenv("AIRFLOW_CONN_ONCALL_SMTP", f"smtp://127.0.0.1:{port}/?disable_tls=true&disable_ssl=true")
    monkeypatch.setenv(alerts.SMTP_CONN_SETTING, "oncall_smtp")
    monkeypatch.setenv(alerts.EMAIL_TO_SETTING, "a@example.org, b@example.org")
    monkeypatch.setenv(alerts.EMAIL_FROM_SETTING, "airflow@example.org")
    context = {**_failure_context(), "exception": ValueError("bad {{ rows }} and {% if %} <b>")}
    alerts.OnCallNotifier()(context)
    assert len(smtp_server.messages) == 1
    envelope, message = smtp_server.messages[0]
    assert len(envelope["to"]) == 2
    assert message["Subject"] == (
        "[mining_pool_classifier] build_features failed (run scheduled__2024-03-02T00:00:00+00:00)"
    )
    assert "error=ValueError: bad {{ rows }} and {% if %} &lt;b&gt;" in _body(message)


def test_a_long_error_is_cut_to_one_readable_line(no_alert_settings):
    context = {**_failure_context(), "exception": ValueError("x" * 5000)}
    _, text = alerts.OnCallNotifier().message(context)
    error = text.split("error=")[1].split(" log=")[0]
    assert len(error) == alerts.MAX_ERROR_CHARS and error.endswith("…")


def test_a_slack_channel_without_the_slack_provider_says_what_to_install(monkeypatch, no_alert_settings):
    # The Slack provider is not in requirements.txt: configuring Slack must say what to install.
    try:
        import airflow.providers.slack  # noqa: F401
        pytest.skip("the Slack provider is installed here")
    except ImportError:
        pass
    monkeypatch.setenv(alerts.SLACK_CONN_SETTING, "oncall_slack")
    with pytest.raises(RuntimeError, match="apache-airflow-providers-slack"):
        alerts.OnCallNotifier()(_failure_context())


def test_an_smtp_channel_without_recipients_is_refused(monkeypatch, no_alert_settings):
    monkeypatch.setenv(alerts.SMTP_CONN_SETTING, "oncall_smtp")
    with pytest.raises(RuntimeError, match=alerts.EMAIL_TO_SETTING):
        alerts.OnCallNotifier()(_failure_context())


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        alerts.OnCallNotifier(kind="sla")


# ---------------------------------------------------------------- deadline


def test_the_deadline_is_the_logical_date_plus_the_interval_and_survives_serialization():
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    alert = alerts.daily_run_deadline()
    assert isinstance(alert.reference, type(DeadlineReference.DAGRUN_LOGICAL_DATE))
    assert alert.interval == alerts.DEADLINE_AFTER_LOGICAL_DATE == dt.timedelta(hours=4)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "pool_classifier.orchestration.alerts.OnCallNotifier"
    assert alert.callback.kwargs == {"kind": "deadline"}
    # What the DAG processor stores and the scheduler reads back.
    again = DeadlineAlert.deserialize_deadline_alert(alert.serialize_deadline_alert())
    assert again == alert


def test_a_dag_with_the_deadline_serializes_like_the_dag_processor_does():
    import pendulum
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import SerializedDAG

    with DAG("deadline_probe", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
             deadline=alerts.daily_run_deadline(dt.timedelta(hours=2))) as dag:
        pass
    restored = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
    deadline = restored.deadline[0] if isinstance(restored.deadline, list) else restored.deadline
    assert deadline.interval == dt.timedelta(hours=2)
    assert deadline.callback.path == "pool_classifier.orchestration.alerts.OnCallNotifier"


def _run_deadline_trigger(alert, dag_run: dict, deadline_time: str) -> list[dict]:
    """Run the callback exactly as the triggerer does when a deadline is missed."""
    from airflow.triggers.deadline import DeadlineCallbackTrigger

    trigger = DeadlineCallbackTrigger(
        callback_path=alert.callback.path,
        callback_kwargs={**alert.callback.kwargs,
                         "context": {"dag_run": dag_run, "deadline": {"id": 1, "deadline_time": deadline_time}}},
    )

    async def collect():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def _dag_run(queued_at: str) -> dict:
    return {"dag_id": "mining_pool_classifier", "dag_run_id": "scheduled__2024-03-02T00:00:00+00:00",
            "logical_date": "2024-03-02T00:00:00Z", "queued_at": queued_at, "run_type": "scheduled",
            "state": "running"}


def test_a_missed_deadline_alerts_through_the_triggerer_path(no_alert_settings, caplog):
    with caplog.at_level(logging.INFO, logger=alerts.__name__):
        events = _run_deadline_trigger(
            alerts.daily_run_deadline(), _dag_run("2024-03-02T00:00:05Z"), "2024-03-02T04:00:00+00:00"
        )
    assert [e["state"] for e in events] == ["running", "success"], events
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "ALERT deadline: dag=mining_pool_classifier task=(the run) "
        "run=scheduled__2024-03-02T00:00:00+00:00 try=- error=not finished by its deadline "
        "2024-03-02T04:00:00+00:00 (state running, logical date 2024-03-02T00:00:00Z) "
        "log=http://localhost:8080/dags/mining_pool_classifier/runs/scheduled__2024-03-02T00%3A00%3A00%2B00%3A00"
    ]


def test_a_run_created_after_its_deadline_is_logged_not_alerted(no_alert_settings, caplog):
    """A backfill of a past day is 'late' the moment it is created: no page for that."""
    with caplog.at_level(logging.INFO, logger=alerts.__name__):
        events = _run_deadline_trigger(
            alerts.daily_run_deadline(), _dag_run("2024-06-01T10:00:00Z"), "2024-03-02T04:00:00+00:00"
        )
    assert [e["state"] for e in events] == ["running", "success"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("not sent: the run was created after its deadline" in r.getMessage() for r in caplog.records)
