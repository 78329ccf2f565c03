"""`make e2e`: the DAG end to end through a real Airflow, as on-call would see it.

1. generates two small days of the synthetic chain (yesterday and today, UTC) and loads them
   into a fresh warehouse, in a throw-away folder;
2. starts `airflow standalone` (scheduler, dag-processor, triggerer, api-server; LocalExecutor)
   on a throw-away AIRFLOW_HOME and a free port, in its own process group;
3. waits until every component is healthy and the DAG is parsed, gets a JWT from
   `/auth/token`, triggers a run of today through the REST API v2, unpauses the DAG, waits
   for the run;
4. runs the backfill recipe of docs/operations.md (`airflow backfill create`, reprocess
   completed, the form's date range) over yesterday and today, and waits until both runs
   succeed, one after the other, in date order (today's run re-runs on yesterday's state);
5. opens the DAG's grid page in headless Chromium (driven through the DevTools protocol, so
   that the login of the first page holds for the next), waits until it shows the DAG, the
   run, every task (as the API lists them) and "Success", and saves a screenshot
   (docs/img/grid.png by default);
6. fails with a clear message if a component, the run, a task or the page is not right;
   always stops Airflow (SIGINT to its group, SIGKILL after a grace period).

Why today: unpausing a `@daily` DAG with catchup off makes the scheduler create the run of
the latest midnight; a run already there for that logical date (ours) stops it from making a
second one, so the grid shows exactly the run this check triggered.

    .venv/bin/python scripts/e2e.py [--screenshot docs/img/grid.png] [--keep]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
AIRFLOW = PYTHON.with_name("airflow")
DAG_ID = "mining_pool_classifier"
# Tasks that must succeed in the run (the others may also be skipped, e.g. a day without
# training); the task ids (task groups) the grid must show are read from the API.
MUST_SUCCEED = ("build_features", "score_addresses")
# A task instance in any other state fails the check.
FINE = ("success", "skipped")
COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")
# Small but trainable: seed 3 labels 10+ pool addresses with features on its first day.
TX_PER_DAY, SEED = 3000, 3
WINDOW = (1600, 1000)


class E2EFailure(RuntimeError):
    """What went wrong, said for the person reading the CI log."""


def say(text: str) -> None:
    print(f"e2e: {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, token: str | None = None, body: dict | None = None,
         timeout: float = 30) -> tuple[int, object]:
    """(status, decoded JSON or text); never raises for an HTTP status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
        return 0, str(error)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(what: str, check, timeout: float, airflow: subprocess.Popen, log: Path, interval: float = 2.0):
    """Call `check()` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if airflow.poll() is not None:
            raise E2EFailure(f"Airflow exited (code {airflow.returncode}) while waiting for {what}; "
                             f"its output:\n{tail(log)}")
        result, last = check()
        if result:
            return result
        time.sleep(interval)
    raise E2EFailure(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}\n"
                     f"Airflow output:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


def run(command: list[str], env: dict, what: str, timeout: float = 600) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise E2EFailure(f"{what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise E2EFailure("no headless Chromium found (scripts/e2e.sh installs Debian's `chromium`)")


class Browser:
    """Headless Chromium driven through the DevTools protocol (one session: the login cookie
    set by the first page is there for the next)."""

    def __init__(self, executable: str, profile: Path):
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise E2EFailure("headless Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        from websockets.sync.client import connect

        self._connection = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=20)
        self.socket = self._connection.__enter__()
        self.calls = 0
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=WINDOW[0], height=WINDOW[1],
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.calls:
                if "error" in message:
                    raise E2EFailure(f"Chromium {method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, expect: tuple[str, ...], timeout: float = 90) -> str:
        """Navigate and wait until the page's text shows every string of `expect`; returns the text."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            if all(e in text for e in expect):
                return text
            time.sleep(1)
        where = self.evaluate("location.href")
        raise E2EFailure(f"{url} (now at {where}) does not show {[e for e in expect if e not in text]} "
                         f"after {timeout:.0f} s; its text starts: {text[:800]!r}")

    def screenshot(self, path: Path) -> None:
        import base64

        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        try:
            self._connection.__exit__(None, None, None)
        except Exception:  # closing a socket whose browser is gone: nothing to keep
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def png_facts(path: Path) -> dict:
    """Size, distinct colours and green (success) pixels of a screenshot."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
        small = rgb.resize((rgb.width // 4, rgb.height // 4)).tobytes()
        pixels = [tuple(small[i:i + 3]) for i in range(0, len(small), 3)]
        return {
            "width": rgb.width,
            "height": rgb.height,
            "bytes": path.stat().st_size,
            "colors": len(set(pixels)),
            "green": sum(1 for r, g, b in pixels if g > 110 and g > r + 40 and g > b + 40),
        }


def stop(airflow: subprocess.Popen) -> None:
    """SIGINT to standalone (it terminates its components), then SIGKILL to whatever is left
    of its process group (executor workers, api-server workers)."""
    if airflow.poll() is None:
        say("stopping Airflow")
        airflow.send_signal(signal.SIGINT)
        try:
            airflow.wait(timeout=60)
        except subprocess.TimeoutExpired:
            say("Airflow did not stop within 60 s: killing it")
    try:
        os.killpg(airflow.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    airflow.wait(timeout=30)


def e2e(work: Path, screenshot: Path, run_timeout: float) -> None:
    browser = chromium()
    today = dt.datetime.now(dt.timezone.utc).date()
    ds, day_before = today.isoformat(), (today - dt.timedelta(days=1)).isoformat()
    data = work / "data"
    port = free_port()
    base = f"http://localhost:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(work / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # The LocalExecutor starts one worker per slot: 32 by default, 4 are plenty here.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "POOL_CLASSIFIER_TARGET": "local",
        "POOL_CLASSIFIER_DATA_DIR": str(data),
        "PYTHONPATH": str(PROJECT / "plugins"),
        "TZ": "UTC",
        # standalone starts its components as `airflow ...`: this venv's, first on the PATH.
        "PATH": os.pathsep.join([str(AIRFLOW.parent), os.environ.get("PATH", "/usr/bin:/bin")]),
    }

    say(f"generating two days ({day_before} and {ds}, {TX_PER_DAY} transactions each, seed {SEED}) in {work}")
    run([str(PYTHON), "-m", "tools.synthetic_chain", "--out", str(work / "chain"), "--start",
         day_before, "--days", "2", "--tx-per-day", str(TX_PER_DAY), "--seed", str(SEED)], env,
        "generating the chain")
    run([str(PYTHON), "-m", "pool_classifier.io.warehouse", "load", str(work / "chain")], env, "loading the warehouse")

    log = work / "airflow_standalone.log"
    say(f"starting airflow standalone on {base} (output: {log})")
    with open(log, "w") as out:
        airflow = subprocess.Popen([str(AIRFLOW), "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=work)
    try:
        def healthy():
            status, body = http("GET", f"{base}/api/v2/monitor/health", timeout=10)
            ok = status == 200 and all(body.get(c, {}).get("status") == "healthy" for c in COMPONENTS)
            return ok, body
        wait_for("every Airflow component to be healthy", healthy, 300, airflow, log)
        say("Airflow is healthy")

        status, body = http("GET", f"{base}/auth/token")
        if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
            raise E2EFailure(f"no JWT from {base}/auth/token: HTTP {status} {body}")
        token = body["access_token"]

        def dag_parsed():
            status, body = http("GET", f"{base}/api/v2/dags/{DAG_ID}", token)
            if status == 200:
                return body, status
            errors = http("GET", f"{base}/api/v2/importErrors", token)[1]
            if isinstance(errors, dict) and errors.get("total_entries"):
                raise E2EFailure(f"the DAG folder has import errors: {json.dumps(errors['import_errors'])[:3000]}")
            return None, f"HTTP {status}"
        wait_for(f"the DAG {DAG_ID} to be parsed", dag_parsed, 240, airflow, log)

        run_id = f"e2e__{ds}"
        status, body = http("POST", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", token,
                            {"dag_run_id": run_id, "logical_date": f"{ds}T00:00:00Z", "conf": {}})
        if status != 200:
            raise E2EFailure(f"triggering the run failed: HTTP {status} {body}")
        say(f"triggered {run_id} through the REST API")
        status, body = http("PATCH", f"{base}/api/v2/dags/{DAG_ID}", token, {"is_paused": False})
        if status != 200:
            raise E2EFailure(f"unpausing the DAG failed: HTTP {status} {body}")

        started = time.monotonic()
        last_states: dict = {}
        last_tries: dict = {}

        def run_finished():
            nonlocal last_states, last_tries
            status, body = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", token)
            tis = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", token)[1]
            states = {t["task_id"]: t["state"] for t in (tis or {}).get("task_instances", [])} \
                if isinstance(tis, dict) else {}
            last_tries = {t["task_id"]: t["try_number"] for t in (tis or {}).get("task_instances", [])} \
                if isinstance(tis, dict) else {}
            if states != last_states:
                say(f"{time.monotonic() - started:5.0f} s  " + "  ".join(f"{k}={v}" for k, v in sorted(states.items())))
                last_states = states
            state = body.get("state") if isinstance(body, dict) else None
            return (state if state in ("success", "failed") else None), (status, state, states)
        final = wait_for(f"the run {run_id} to finish", run_finished, run_timeout, airflow, log, interval=5)
        if final != "success":
            raise E2EFailure(f"the run {run_id} ended {final}: tasks {last_states}\n"
                             + failed_task_logs(base, token, run_id, last_states, last_tries))
        bad = {t: st for t, st in last_states.items() if st not in FINE}
        missing = [t for t in MUST_SUCCEED if last_states.get(t) != "success"]
        if bad or missing or not last_states:
            raise E2EFailure(f"the run succeeded but its tasks did not: {last_states}")
        runs = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", token)[1]
        others = [r["dag_run_id"] for r in runs.get("dag_runs", []) if r["dag_run_id"] != run_id]
        if others:
            raise E2EFailure(f"runs other than {run_id} appeared: {others}")
        say(f"the run succeeded in {time.monotonic() - started:.0f} s: {last_states}")

        backfill(env, base, token, airflow, log, day_before, ds, run_timeout)

        tasks = http("GET", f"{base}/api/v2/dags/{DAG_ID}/tasks", token)[1]
        # The grid lists top-level tasks and task groups (`group.task` shows as `group`).
        shown = sorted({t["task_id"].split(".")[0] for t in tasks.get("tasks", [])})
        check_grid_page(browser, work / "chromium", base, run_id, shown, screenshot)
    finally:
        stop(airflow)


def backfill(env: dict, base: str, token: str, airflow: subprocess.Popen, log: Path,
             first: str, last: str, run_timeout: float) -> None:
    """The backfill recipe of docs/operations.md over `first`..`last` (`last` already ran):
    both runs must succeed, one at a time, in date order, and the scheduler mark the backfill
    completed."""
    command = [str(AIRFLOW), "backfill", "create", "--dag-id", DAG_ID, "--from-date", first, "--to-date", last,
               "--max-active-runs", "1", "--reprocess-behavior", "completed",
               "--dag-run-conf", json.dumps({"date_from": first, "date_to": last})]
    say("backfill: " + " ".join(command[1:]))
    before = {r["logical_date"][:10]: r for r in http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", token)[1]["dag_runs"]}
    run(command, env, "airflow backfill create")
    started = time.monotonic()

    def backfill_done():
        runs = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", token)[1]
        runs = {r["logical_date"][:10]: r for r in (runs or {}).get("dag_runs", [])} if isinstance(runs, dict) else {}
        states = {day: (r["state"], r["run_type"]) for day, r in sorted(runs.items())}
        if any(r["state"] == "failed" for r in runs.values()):
            failed = next(r for r in runs.values() if r["state"] == "failed")
            tis = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{failed['dag_run_id']}/taskInstances", token)[1]
            task_states = {t["task_id"]: t["state"] for t in tis.get("task_instances", [])}
            tries = {t["task_id"]: t["try_number"] for t in tis.get("task_instances", [])}
            raise E2EFailure(f"the backfill run {failed['dag_run_id']} failed: {task_states}\n"
                             + failed_task_logs(base, token, failed["dag_run_id"], task_states, tries))
        backfills = http("GET", f"{base}/api/v2/backfills?dag_id={DAG_ID}", token)[1]
        completed = isinstance(backfills, dict) and any(b.get("completed_at") for b in backfills.get("backfills", []))
        done = (sorted(runs) == [first, last] and all(r["state"] == "success" for r in runs.values())
                and runs[last]["end_date"] != before[last]["end_date"] and completed)
        return (runs if done else None), {"runs": states, "backfill completed": completed}
    runs = wait_for("the backfill's runs to succeed", backfill_done, 2 * run_timeout, airflow, log, interval=5)
    if not all(r["run_type"] == "backfill" for r in runs.values()):
        raise E2EFailure(f"the backfill's runs are not backfill runs: {[(d, r['run_type']) for d, r in runs.items()]}")
    if not runs[first]["end_date"] <= runs[last]["start_date"]:
        raise E2EFailure(f"the backfill did not run the days one after the other in date order: "
                         f"{first} ended {runs[first]['end_date']}, {last} started {runs[last]['start_date']}")
    say(f"backfill: {first} then {last} succeeded in {time.monotonic() - started:.0f} s, in date order")


def failed_task_logs(base: str, token: str, run_id: str, states: dict, tries: dict | None = None) -> str:
    """The log of each failed task's last try (`tries`: task -> try number; 1 by default)."""
    text = []
    for task, state in sorted(states.items()):
        if state not in ("failed", "upstream_failed", "up_for_retry"):
            continue
        try_number = max(1, int((tries or {}).get(task) or 1))
        status, body = http("GET", f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task}/logs/{try_number}",
                            token)
        content = body.get("content") if isinstance(body, dict) else body
        if isinstance(content, list):
            content = "\n".join(e.get("event", str(e)) if isinstance(e, dict) else str(e) for e in content)
        text.append(f"--- log of {task} (try {try_number}) ---\n{str(content)[-4000:]}")
    return "\n".join(text)


def check_grid_page(browser: str, profile: Path, base: str, run_id: str, tasks: list[str],
                    screenshot: Path) -> None:
    """Log in (all-admins: /auth/token/login sets the token cookie), then the DAG's grid with
    the run selected: it must name the DAG, the run, every task and the run's success."""
    chrome = Browser(browser, profile)
    try:
        chrome.open(f"{base}/auth/token/login", expect=("Welcome",))
        url = f"{base}/dags/{DAG_ID}/runs/{run_id}"
        chrome.open(url, expect=(DAG_ID, run_id, *tasks, "Success"))
        time.sleep(2)  # the grid's cells fade in
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = screenshot.with_name(f".{screenshot.name}.tmp")
        chrome.screenshot(shot)
    finally:
        chrome.close()
    facts = png_facts(shot)
    if (facts["width"], facts["height"]) != WINDOW:
        raise E2EFailure(f"the screenshot is {facts['width']}x{facts['height']}, not {WINDOW[0]}x{WINDOW[1]}")
    if facts["bytes"] < 30_000 or facts["colors"] < 50:
        raise E2EFailure(f"the screenshot looks blank: {facts}")
    if facts["green"] < 20:
        raise E2EFailure(f"the screenshot shows no green (success) cell: {facts}")
    os.replace(shot, screenshot)
    say(f"screenshot of {url}: {screenshot} ({facts['width']}x{facts['height']}, {facts['bytes']} bytes, "
        f"{facts['colors']} colours, {facts['green']} green pixels at 1/4 scale)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=PROJECT / "docs" / "img" / "grid.png")
    parser.add_argument("--run-timeout", type=float, default=1200, help="seconds to wait for the run")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pool-classifier-e2e-"))
    t0 = time.monotonic()
    try:
        e2e(work, args.screenshot.resolve(), args.run_timeout)
    except E2EFailure as failure:
        print(f"e2e: FAILED: {failure}", file=sys.stderr, flush=True)
        print(f"e2e: the throw-away folder is kept for inspection: {work}", file=sys.stderr)
        return 1
    say(f"passed in {time.monotonic() - t0:.0f} s")
    if args.keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
