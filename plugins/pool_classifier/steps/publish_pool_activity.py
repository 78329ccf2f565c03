"""publish_pool_activity: the last 7 days of `pool_activity_hourly` in one version of
`activity/recent/` (the hourly DAG's second task), what the API's `/v1/pools/activity` and
`/live` read: one pointer and two small files instead of 168 hour folders a request.

The 7 days end at the newest hour written so far (not at the run's hour), so running an old
hour again never moves the dashboard back in time; the result depends only on the hours in
force, so a re-run gives the same files.

    python -m pool_classifier.steps.publish_pool_activity
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys

from pool_classifier import datasets
from pool_classifier.steps.merge_pool_activity import (
    POOLS_FILE,
    hour_name,
    parquet_bytes,
    parse_hour,
    read_parquet_rows,
    table_schema,
)
from pool_classifier.targets import Target, current_target

RECENT_HOURS = 7 * 24
HOURS_FILE = "hours.parquet"


def hours_schema():
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([("hour", ts), ("blocks", pa.int64()), ("status", pa.string()),
                      ("newest_block_number", pa.int64()), ("newest_block_time", ts),
                      ("attribution_inputs", pa.string()), ("pools_sha256", pa.string())])


def written_hours(fs, target: Target) -> list[str]:
    """The hours with a folder (`YYYY-MM-DDTHH`), oldest first (one listing)."""
    root = datasets.activity_root(target)
    names = [n.rstrip("/") for n in fs.list_dir(root)]
    return sorted(n[len("hour="):] for n in names if n.startswith("hour="))


def publish_pool_activity(target: Target, recent_hours: int = RECENT_HOURS) -> dict:
    """Rewrite `activity/recent/` from the hours in force; returns its meta."""
    from pool_classifier.io import versioned

    fs = versioned.for_location(target.bucket)
    hours = written_hours(fs, target)
    rows, hour_rows = [], []
    newest = None
    if hours:
        last = parse_hour(hours[-1])
        wanted = {hour_name(last - dt.timedelta(hours=k)) for k in range(recent_hours)}
        for name in (h for h in hours if h in wanted):
            location = datasets.activity_hour_dir(target, "pool_activity_hourly", name)
            pointer = versioned.read_pointer(fs, location)
            if pointer is None:  # a writer killed before its first pointer: the hour is absent
                continue
            meta = pointer["meta"]
            for path in versioned.data_files(fs, location, pointer=pointer):
                rows += read_parquet_rows(fs, path)
            block = meta.get("newest_block")
            hour_rows.append({
                "hour": parse_hour(name), "blocks": meta["blocks"], "status": meta["status"],
                "newest_block_number": block["block_number"] if block else None,
                "newest_block_time": dt.datetime.fromisoformat(block["block_time"]) if block else None,
                "attribution_inputs": meta.get("attribution_inputs"), "pools_sha256": meta.get("pools_sha256"),
            })
            if block and (newest is None or block["block_number"] > newest["block_number"]):
                newest = block
    rows.sort(key=lambda r: (r["hour"], -r["blocks"], r["pool_id"]))
    meta = {
        "first_hour": hours_in(hour_rows, 0), "last_hour": hours_in(hour_rows, -1), "hours": len(hour_rows),
        "blocks": sum(h["blocks"] for h in hour_rows), "newest_block": newest,
        "pools_sha256": sorted({h["pools_sha256"] for h in hour_rows if h["pools_sha256"]}),
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    versioned.publish_files(fs, datasets.activity_recent_dir(target), {
        POOLS_FILE: parquet_bytes(rows, table_schema()), HOURS_FILE: parquet_bytes(hour_rows, hours_schema())}, meta)
    return meta


def hours_in(hour_rows: list[dict], index: int) -> str | None:
    return hour_name(hour_rows[index]["hour"]) if hour_rows else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The last 7 days of pool_activity_hourly, for the API.")
    parser.parse_args(argv)
    meta = publish_pool_activity(current_target())
    print(f"activity/recent: {meta['hours']} hours ({meta['first_hour']} … {meta['last_hour']}), {meta['blocks']} blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
