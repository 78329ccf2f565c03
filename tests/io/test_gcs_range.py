"""GcsFS.read_range through google-cloud-storage's own client, against a real HTTP server standing
in for the Cloud Storage JSON API on 127.0.0.1: one GET per call, with the `Range` header of exactly
the bytes asked (the client's `end` is inclusive), answered 206; a missing object is FileNotFoundError.
This is the request a lookup of the gcp serving store sends (io/sharded_index.py)."""
from __future__ import annotations

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pool_classifier.io import versioned

OBJECTS = {("pool-data", "serving/dt=2024-03-01/v=1/shards/00000.bin"): bytes(range(256)) * 40}


class _Storage(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = urllib.parse.urlparse(self.path)
        self.requests.append((self.command, self.path, self.headers.get("Range")))
        match = re.fullmatch(r"/download/storage/v1/b/([^/]+)/o/(.+)", path.path)
        data = OBJECTS.get((match.group(1), urllib.parse.unquote(match.group(2)))) if match else None
        if data is None or "alt=media" not in path.query:
            body = b'{"error": {"code": 404, "message": "No such object"}}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
        part = data[start:end + 1]
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def log_message(self, *args):
        return None


@pytest.fixture
def storage_api():
    _Storage.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Storage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


def test_read_range_is_one_ranged_get_of_exactly_those_bytes(storage_api):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="pool-test-project", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage_api})
    fs = versioned.GcsFS(client)
    path = "gs://pool-data/serving/dt=2024-03-01/v=1/shards/00000.bin"
    data = OBJECTS[("pool-data", "serving/dt=2024-03-01/v=1/shards/00000.bin")]
    assert fs.read_range(path, 1000, 1777) == data[1000:1777]
    assert versioned.read_range(fs, path, 5, 6) == data[5:6]
    assert fs.read_range(path, 10, 10) == b""  # nothing asked: no request
    downloads = [(method, rng) for method, url, rng in _Storage.requests if url.startswith("/download/")]
    assert downloads == [("GET", "bytes=1000-1776"), ("GET", "bytes=5-5")]
    # Anything else is the client's own background read of the bucket's metadata (its cache), not per read.
    assert {url.split("?")[0] for _, url, _ in _Storage.requests if not url.startswith("/download/")} <= {
        "/storage/v1/b/pool-data"}
    with pytest.raises(FileNotFoundError, match="00001.bin"):
        fs.read_range(path.replace("00000", "00001"), 0, 10)
