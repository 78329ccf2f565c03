"""Benchmark of the prediction API (not a test): prints figures, appends them to bench/api_results.md.

    make bench-api     # PYTHONPATH=plugins:. .venv/bin/python bench/bench_api.py

1. a synthetic bucket of 1,000,000 scored addresses over two days (tools/synthetic_serving, in a
   temporary folder), the first day's serving snapshot published (timed);
2. the API (`python -m api`, one uvicorn process, as `make serve` runs it) on a free port;
3. from this process, over keep-alive HTTP/1.1 connections (a minimal asyncio client: httpx
   would cost more CPU than the server on the same 2 cores), a fixed count of requests each:
   `/healthz` at 32 concurrent clients (the ceiling: the same server, no work), single lookups
   `GET /v1/addresses/{a}` of random snapshot addresses at 32 concurrent clients, and
   `POST /v1/addresses:lookup` of 1,000 random addresses one at a time; p50/p95/p99 and
   requests/s of each;
4. the switch under load: single lookups at 32 concurrent clients while the second day is
   published (built here, then the pointer switched); the time from the pointer's write to the
   first answer of the new day, and the failed requests over the whole phase (target: none).

Targets on 2 cores: lookup p99 ≤ 20 ms, lookup throughput ≥ 0.5 × /healthz's, a 1,000-address
batch ≤ 150 ms p99, the switch ≤ 5 s with zero failed requests. Settings (environment):
BENCH_API_ADDRESSES (1000000), BENCH_API_REQUESTS (20000), BENCH_API_BATCHES (100).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "plugins", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TZ", "UTC")

import duckdb  # noqa: E402

from pool_classifier import datasets  # noqa: E402
from pool_classifier.io import atomic, versioned  # noqa: E402
from pool_classifier.steps import publish_serving  # noqa: E402
from tools import synthetic_serving  # noqa: E402

RESULTS = ROOT / "bench" / "api_results.md"
DAYS = ["2024-03-01", "2024-03-02"]
N_ADDRESSES = int(os.environ.get("BENCH_API_ADDRESSES", "1000000"))
N_REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "20000"))
N_BATCHES = int(os.environ.get("BENCH_API_BATCHES", "100"))
CONCURRENCY = 32
TARGETS = {"lookup_p99_ms": 20.0, "ratio": 0.5, "batch_p99_ms": 150.0, "switch_s": 5.0}


def log(*args):
    print("bench-api:", *args, flush=True)


# ---------------------------------------------------------------- a minimal HTTP/1.1 client


class Load:
    """A fixed count of requests over `concurrency` keep-alive connections; latencies in ms."""

    def __init__(self, port: int):
        self.port = port

    async def _connection(self, make, count: list, out: list, watch: bytes | None, seen: list):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while count[0] > 0:
                count[0] -= 1
                request = make()
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                ended = time.perf_counter()
                out.append(((ended - started) * 1e3, status))
                if watch is not None and watch in body and not seen:
                    seen.append(ended)
        finally:
            writer.close()

    def run(self, make, total: int, concurrency: int, watch: bytes | None = None) -> dict:
        out: list = []
        seen: list = []
        count = [total]

        async def main():
            await asyncio.gather(*(self._connection(make, count, out, watch, seen) for _ in range(concurrency)))

        started = time.perf_counter()
        asyncio.run(main())
        wall = time.perf_counter() - started
        return summarise(out, wall) | {"first_seen": seen[0] if seen else None}


def summarise(out: list, wall: float) -> dict:
    latencies = sorted(ms for ms, _ in out)
    failed = sum(1 for _, status in out if status != 200)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"requests": len(out), "failed": failed, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
            "rps": len(out) / wall if wall else 0.0, "wall": wall}


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# ---------------------------------------------------------------- the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(bucket: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "POOL_API_BUCKET": bucket, "PORT": str(port), "HOST": "127.0.0.1",
           "POOL_API_POLL_SECONDS": "1", "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    proc = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(get("/readyz"))
                if b'"ready":true' in s.recv(4096):
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API was not ready in 60 s")


def fmt(r: dict) -> str:
    return (f"p50 {r['p50']:.2f} ms, p95 {r['p95']:.2f} ms, p99 {r['p99']:.2f} ms, {r['rps']:,.0f} req/s "
            f"({r['requests']:,} requests, {r['failed']} failed)")


def main() -> int:
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    bucket = str(tmp / "bucket")
    where = datasets.Bucket(bucket)
    figures: dict = {}
    proc = None
    try:
        log(f"generating {N_ADDRESSES:,} addresses over {len(DAYS)} days in {bucket}")
        started = time.perf_counter()
        synthetic_serving.write_bucket(bucket, DAYS, N_ADDRESSES, seed=11, active_share=0.3, keep_scores=False)
        figures["generate_s"] = time.perf_counter() - started
        started = time.perf_counter()
        first = publish_serving.publish(where, DAYS[0])
        figures["publish_first_s"] = time.perf_counter() - started
        figures["addresses"] = first["addresses"]
        folder = versioned.resolve(atomic.FS, datasets.serving_dir(where, DAYS[0]))[0]
        snapshot_file = Path(folder) / datasets.SERVING_FILE
        figures["snapshot_mb"] = snapshot_file.stat().st_size / 1e6
        figures["version_mb"] = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e6
        with duckdb.connect(str(snapshot_file), read_only=True) as con:
            sample = [a for a, in con.execute("SELECT address FROM scores USING SAMPLE 20000 ROWS").fetchall()]
        log(f"snapshot of {first['addresses']:,} addresses published in {figures['publish_first_s']:.1f} s "
            f"({figures['snapshot_mb']:.0f} MB)")

        port = free_port()
        proc = start_api(bucket, port)
        load = Load(port)
        rng = random.Random(5)
        def lookup() -> bytes:
            return get(f"/v1/addresses/{rng.choice(sample)}")
        load.run(lookup, 2_000, CONCURRENCY)  # warm-up: page cache, thread pool, cursors
        load.run(lambda: get("/healthz"), 2_000, CONCURRENCY)

        figures["healthz"] = load.run(lambda: get("/healthz"), N_REQUESTS, CONCURRENCY)
        log("healthz   ", fmt(figures["healthz"]))
        figures["lookup"] = load.run(lookup, N_REQUESTS, CONCURRENCY)
        log("lookup    ", fmt(figures["lookup"]))
        def batch() -> bytes:
            return post("/v1/addresses:lookup", json.dumps({"addresses": rng.sample(sample, 1000)}).encode())
        load.run(batch, 5, 1)
        figures["batch"] = load.run(batch, N_BATCHES, 1)
        log("batch 1000", fmt(figures["batch"]))

        # The switch under load: lookups go on while the second day is built and published.
        switched: dict = {}

        def publish_second():
            time.sleep(1.0)
            started = time.perf_counter()
            publish_serving.publish(where, DAYS[1])
            switched["at"] = time.perf_counter()  # the serving root's pointer is the publish's last write
            switched["build_s"] = switched["at"] - started

        publisher = threading.Thread(target=publish_second)
        publisher.start()
        phase = {"requests": 0, "failed": 0, "latencies": []}
        first_new = None
        watch = f'"snapshot_day":"{DAYS[1]}"'.encode()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            r = load.run(lookup, 4_000, CONCURRENCY, watch=watch)
            phase["requests"] += r["requests"]
            phase["failed"] += r["failed"]
            phase["latencies"].append(r["p99"])
            if r["first_seen"] is not None and "at" in switched:
                first_new = r["first_seen"]
                break
        publisher.join()
        figures["switch"] = {"build_s": switched.get("build_s"), "requests": phase["requests"],
                             "failed": phase["failed"], "worst_p99": max(phase["latencies"]),
                             "switch_s": (first_new - switched["at"]) if first_new else None}
        log(f"switch     pointer to first answer of {DAYS[1]}: {figures['switch']['switch_s']:.2f} s; "
            f"{phase['requests']:,} lookups meanwhile, {phase['failed']} failed; the build took "
            f"{figures['switch']['build_s']:.1f} s")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    figures["load_before"], figures["load_after"] = load_before, os.getloadavg()
    append_results(figures)
    return 0


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def append_results(f: dict) -> None:
    h, lk, b, s = f["healthz"], f["lookup"], f["batch"], f["switch"]
    ratio = lk["rps"] / h["rps"]
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    loads = " ".join(f"{x:.1f}" for x in f["load_before"]) + " / " + " ".join(f"{x:.1f}" for x in f["load_after"])
    import duckdb as d
    import fastapi
    import uvicorn

    rows = [
        ("snapshot", f"{f['addresses']:,} addresses, snapshot.duckdb {f['snapshot_mb']:.0f} MB, the whole version "
                     f"{f['version_mb']:.0f} MB, published in {f['publish_first_s']:.1f} s", "≥ 1 M"),
        ("`/healthz` (the ceiling), 32 clients", fmt(h), ""),
        ("`GET /v1/addresses/{a}`, 32 clients", fmt(lk),
         f"p99 ≤ 20 ms: {verdict(lk['p99'] <= TARGETS['lookup_p99_ms'])}"),
        ("lookup / healthz throughput", f"{ratio:.2f} ×", f"≥ 0.5 ×: {verdict(ratio >= TARGETS['ratio'])}"),
        ("`POST /v1/addresses:lookup`, 1,000 addresses, 1 client", fmt(b),
         f"p99 ≤ 150 ms: {verdict(b['p99'] <= TARGETS['batch_p99_ms'])}"),
        ("switch under load: pointer written → first answer of the new day",
         f"{s['switch_s']:.2f} s ({s['requests']:,} lookups meanwhile, worst p99 of a 4,000-request slice "
         f"{s['worst_p99']:.1f} ms; the new day's build took {s['build_s']:.1f} s on the same cores)",
         f"≤ 5 s: {verdict(s['switch_s'] is not None and s['switch_s'] <= TARGETS['switch_s'])}"),
        ("failed requests during the switch", f"{s['failed']}", f"0: {verdict(s['failed'] == 0)}"),
    ]
    lines = [f"\n## {now}: prediction API\n",
             f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python "
             f"{platform.python_version()}, FastAPI {fastapi.__version__}, uvicorn {uvicorn.__version__}, DuckDB "
             f"{d.__version__}; one uvicorn process; the load generator and the publisher share the cores; "
             f"load average before / after: {loads}.\n",
             "| figure | value | target |", "|---|---|---|", *(f"| {a} | {b_} | {c} |" for a, b_, c in rows)]
    text = "\n".join(lines) + "\n"
    if not RESULTS.exists():
        RESULTS.write_text("# Prediction API benchmark (`make bench-api`, bench/bench_api.py)\n")
    with RESULTS.open("a") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
