"""Fixtures of the API's tests: a small bucket in the pipeline's exact shapes (tools/synthetic_serving,
its schema checked against a real run's), its serving snapshots published by the real step, and a
real uvicorn server on a free port of 127.0.0.1, reached through httpx."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

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


@dataclass
class Server:
    url: str
    store: SnapshotStore
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bucket: str, api_key: str | None = None, poll_seconds: float = 0.2) -> Server:
    """The app on uvicorn in a thread, listening on 127.0.0.1:<free port>; returns once it answers."""
    port = free_port()
    settings = Settings(bucket=bucket, host="127.0.0.1", port=port, poll_seconds=poll_seconds, api_key=api_key)
    store = SnapshotStore(bucket, poll_seconds=poll_seconds)
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
