"""Who is mining right now: the hourly DAG's `activity/recent/` (the last 7 days of
`pool_activity_hourly`, one versioned location), read for `/v1/pools/activity` and `/live`.

Cheap and never a 500: the pointer is read at most every `poll_seconds` (one small file or one
GET), the two small Parquet files only when its version changed. No data yet, an empty window and
stale data are answers (`status`: no_data, empty, stale, ok) with the newest block's age, not errors.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
import threading
import time

from pool_classifier import datasets
from pool_classifier.io import versioned

log = logging.getLogger("api.activity")

MAX_HOURS = 7 * 24
# The chain makes a block every ~10 min; no block for 2 h happens about once a year by chance
# (a Poisson gap of 12 blocks' time), far more often because the data stopped: call it stale.
STALE_AFTER_SECONDS = 2 * 3600
POOLS_FILE, HOURS_FILE = "pools.parquet", "hours.parquet"


def _read(fs, path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(fs.read_bytes(path))).to_pylist()


class ActivityReader:
    """The recent activity of a bucket, reloaded when its pointer names a new version."""

    def __init__(self, bucket: str, fs: versioned.FileSystem | None = None, poll_seconds: float = 2.0):
        self.location = datasets.activity_recent_dir(datasets.Bucket(bucket.rstrip("/")))
        self.fs = fs or versioned.for_location(self.location)
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._loaded: dict | None = None  # {"version", "meta", "rows", "hours"}
        self.last_error: str | None = None

    def current(self) -> dict | None:
        """The recent view in force (None: nothing published yet, or unreadable — see last_error)."""
        with self._lock:
            if time.monotonic() - self._checked < self.poll_seconds:
                return self._loaded
            self._checked = time.monotonic()
            try:
                pointer = versioned.read_pointer(self.fs, self.location)
                if pointer is None:
                    self._loaded, self.last_error = None, None
                elif self._loaded is None or self._loaded["version"] != pointer["version"]:
                    files = versioned.data_files(self.fs, self.location, pointer=pointer)
                    by_name = {f.rsplit("/", 1)[-1]: f for f in files}
                    self._loaded = {"version": pointer["version"], "meta": pointer["meta"],
                                    "rows": _read(self.fs, by_name[POOLS_FILE]),
                                    "hours": _read(self.fs, by_name[HOURS_FILE])}
                    self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep answering from what was loaded
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("activity/recent could not be read (%s); answering from the version loaded", exc)
            return self._loaded


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def activity(loaded: dict | None, hours: int, now: dt.datetime | None = None, last_error: str | None = None) -> dict:
    """The figures of the `hours` hours up to the newest hour processed (mempool's
    /api/v1/mining/pools/<period> shape for the pools), with what to make of them (`status`)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    empty = {"hours": hours, "window": None, "blockCount": 0, "unknownBlockCount": 0, "unknownShare": None,
             "pools": [], "blocksPerHour": [], "newestBlock": None, "staleAfterSeconds": STALE_AFTER_SECONDS,
             "lineage": None}
    if loaded is None:
        detail = ("no hourly activity has been published yet: run the DAG pool_activity_hourly "
                  "(or python -m pool_classifier.steps.merge_pool_activity --hour <hour>, then publish_pool_activity)")
        if last_error:
            detail = f"the hourly activity cannot be read ({last_error})"
        return {**empty, "status": "no_data", "detail": detail}
    meta, hour_rows = loaded["meta"], loaded["hours"]
    lineage = {"version": loaded["version"], "publishedAt": meta.get("published_at"),
               "poolsSha256": meta.get("pools_sha256"),
               "attributionInputs": sorted({h["attribution_inputs"] for h in hour_rows if h.get("attribution_inputs")})}
    newest = meta.get("newest_block")
    newest_block = None
    if newest:
        when = dt.datetime.fromisoformat(newest["block_time"])
        newest_block = {"height": newest["block_number"], "time": _iso(when),
                        "ageSeconds": max(0, int((now - when).total_seconds()))}
    if not hour_rows:
        return {**empty, "status": "empty", "detail": "no hour processed yet", "lineage": lineage}
    last = max(h["hour"] for h in hour_rows)
    start = last - dt.timedelta(hours=hours - 1)
    processed = {h["hour"]: h for h in hour_rows if h["hour"] >= start}
    rows = [r for r in loaded["rows"] if r["hour"] >= start]
    per_hour = []
    for k in range(hours):
        h = start + dt.timedelta(hours=k)
        got = processed.get(h)
        unknown = sum(r["blocks"] for r in rows if r["hour"] == h and r["pool_id"] == -1)
        per_hour.append({"hour": _iso(h), "blocks": got["blocks"] if got else 0, "unknown": unknown,
                         "status": got["status"] if got else "missing"})
    pools: dict[int, dict] = {}
    for r in rows:
        p = pools.setdefault(r["pool_id"], {"poolId": r["pool_id"], "name": r["pool_name"], "blockCount": 0,
                                            "byTag": 0, "byAddress": 0, "transactions": 0, "fees": 0})
        p["blockCount"] += r["blocks"]
        p["byTag"] += r["by_tag"]
        p["byAddress"] += r["by_address"]
        p["transactions"] += r["transactions"]
        p["fees"] = None if p["fees"] is None or r["fees"] is None else p["fees"] + r["fees"]
    total = sum(p["blockCount"] for p in pools.values())
    ranked = sorted(pools.values(), key=lambda p: (-p["blockCount"], p["poolId"]))
    for rank, p in enumerate(ranked, 1):
        p["rank"], p["share"] = rank, p["blockCount"] / total
    unknown = pools.get(-1, {}).get("blockCount", 0)
    age = newest_block["ageSeconds"] if newest_block else None
    # Stale first: a source stalled for longer than the window must not read as a quiet "empty".
    if age is not None and age > STALE_AFTER_SECONDS:
        status, detail = "stale", f"the newest block is {_age(age)} old: the hourly data has not moved since"
    elif total == 0:
        status, detail = "empty", f"no block in the {hours} h up to {_iso(last + dt.timedelta(hours=1))}"
    else:
        status, detail = "ok", f"{total} blocks in the {hours} h up to {_iso(last + dt.timedelta(hours=1))}"
    return {"status": status, "detail": detail, "hours": hours,
            "window": {"from": _iso(start), "to": _iso(last + dt.timedelta(hours=1))},
            "blockCount": total, "unknownBlockCount": unknown, "unknownShare": unknown / total if total else None,
            "pools": ranked, "blocksPerHour": per_hour, "newestBlock": newest_block,
            "staleAfterSeconds": STALE_AFTER_SECONDS, "lineage": lineage}


def _age(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
