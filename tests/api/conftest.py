"""Fixtures of the API's tests: a small bucket in the pipeline's exact shapes (tools/synthetic_serving,
its schema checked against a real run's), its serving snapshots published by the real step, and a
real uvicorn server on a free port of 127.0.0.1, reached through httpx.

The server runs in a thread of the test process; with `POOL_API_TEST_PYTHON=<python>` it runs as
`<python> -m api` instead, so the same tests check the API's own deployment set
(api/requirements.txt: FastAPI 0.163, which cannot share the project's .venv with Airflow 3.1.8):

    uv venv /tmp/api-venv && uv pip sync --python /tmp/api-venv/bin/python api/requirements.txt
    POOL_API_TEST_PYTHON=/tmp/api-venv/bin/python .venv/bin/python -m pytest tests/api
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.settings import Settings
from api.store import SnapshotStore
from pool_classifier import datasets
from pool_classifier.steps import publish_serving
from tools import synthetic_serving

DAYS = ["2024-03-01", "2024-03-02", "2024-03-03"]
ADDRESSES = 3_000


EXTERNAL_PYTHON = os.environ.get("POOL_API_TEST_PYTHON")


@dataclass
class Server:
    url: str
    store: SnapshotStore | None  # None when the server is another process
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    process: subprocess.Popen | None = None

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            return
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bucket: str, api_key: str | None = None, poll_seconds: float = 0.2, fs=None,
                 cache_dir: str | None = None) -> Server:
    """The app on uvicorn in a thread, listening on 127.0.0.1:<free port>; returns once it answers.
    `fs`: the bucket's file system (the object-store double; always in this process)."""
    port = free_port()
    if EXTERNAL_PYTHON and fs is None:
        return _start_process(bucket, port, api_key, poll_seconds)
    settings = Settings(bucket=bucket, host="127.0.0.1", port=port, poll_seconds=poll_seconds, api_key=api_key)
    store = SnapshotStore(bucket, fs=fs, poll_seconds=poll_seconds, cache_dir=cache_dir)
    config = uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    return Server(f"http://127.0.0.1:{port}", store, server, thread)


def build_bucket(root, days=DAYS, publish_until: str | None = None, **kwargs):
    """A synthetic bucket under `root` and its snapshots published up to `publish_until`."""
    bucket = str(root / "bucket")
    truth = synthetic_serving.write_bucket(bucket, list(days), ADDRESSES, **kwargs)
    where = datasets.Bucket(bucket)
    if publish_until:
        publish_serving.publish_all(where, publish_until)
    return bucket, truth


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """(bucket, truth): every day published."""
    return build_bucket(tmp_path_factory.mktemp("serving"), publish_until=DAYS[-1])


@pytest.fixture(scope="session")
def server(served):
    running = start_server(served[0])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    with server.client() as c:
        yield c


def _start_process(bucket: str, port: int, api_key: str | None, poll_seconds: float) -> Server:
    """`$POOL_API_TEST_PYTHON -m api` on the port: what `make serve` runs, under another interpreter."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "POOL_API_BUCKET": bucket, "PORT": str(port), "HOST": "127.0.0.1",
           "POOL_API_POLL_SECONDS": str(poll_seconds), "POOL_API_KEY": api_key or "",
           "PYTHONPATH": f"{root / 'plugins'}:{root}"}
    process = subprocess.Popen([EXTERNAL_PYTHON, "-m", "api"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{EXTERNAL_PYTHON} -m api exited: {process.stderr.read()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return Server(f"http://127.0.0.1:{port}", None, process=process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{EXTERNAL_PYTHON} -m api did not answer on port {port} in 30 s")
