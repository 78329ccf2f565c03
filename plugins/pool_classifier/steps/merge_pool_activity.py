"""merge_pool_activity: the blocks of the last hours attributed to their pools, merged per hour
into the table `pool_activity_hourly` (the hourly DAG's first task).

Every run re-reads the window of the last `window_hours` UTC hours up to the run's hour (the
current hour, partial, included), so late blocks and short reorgs are absorbed: each hour of the
window is rebuilt from the source as it stands and replaces that hour whole (`io/versioned.py`:
a new version of `activity/pool_activity_hourly/hour=YYYY-MM-DDTHH/`, its pointer written last).
A re-run of any hour gives the same rows; hours run in any order. An hour without blocks is
written too, empty, its pointer saying `status: empty` (recorded, not a failure).

Blocks are attributed by `pool_classifier.attribution` (the one implementation, as the daily
features): by payout address among the coinbase outputs and by coinbase tag. Where the source
gives the coinbase outputs (the local warehouse) the fees come with them (coinbase value −
subsidy); the gcp source reads `blocks` only (docs/gcp.md, "The hourly DAG": the outputs would
scan the month of `transactions` every hour), so there the fees are NULL and only tags attribute.

    python -m pool_classifier.steps.merge_pool_activity --hour 2024-03-01T12 [--window-hours 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
from dataclasses import dataclass
from typing import Protocol

from pool_classifier import datasets
from pool_classifier.errors import DataError
from pool_classifier.targets import Target, current_target

# The hours each run re-reads, the run's own included: 3 absorbs a block that arrives in the
# source up to 2 h late and a reorg of a few blocks (they replace each other at the same height).
WINDOW_HOURS = 3
MIN_WINDOW_HOURS = 2
MAX_WINDOW_HOURS = 48
UNKNOWN_POOL_ID = -1
UNKNOWN_POOL_NAME = "unknown"
HOUR_FORMAT = "%Y-%m-%dT%H"
SCHEMA_FILE = "pool_classifier.pool_activity_hourly.json"
BLOCKS_FILE = "blocks.parquet"
POOLS_FILE = "pools.parquet"


class ActivityRequestError(DataError, ValueError):
    """An hour or a window that cannot be processed; the message names it and says what to give."""


# ---------------------------------------------------------------- hours and windows


def parse_hour(text: str) -> dt.datetime:
    """`YYYY-MM-DDTHH` (or any ISO time: truncated to its hour), as an aware UTC datetime."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ActivityRequestError(f"hour={text!r} is not an hour: give YYYY-MM-DDTHH (UTC)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)


def hour_name(hour: dt.datetime) -> str:
    return hour.astimezone(dt.timezone.utc).strftime(HOUR_FORMAT)


def window(hour: dt.datetime, window_hours: int = WINDOW_HOURS) -> list[dt.datetime]:
    """The hours a run for `hour` rewrites, oldest first: `window_hours` of them, `hour` last."""
    if not isinstance(window_hours, int) or not MIN_WINDOW_HOURS <= window_hours <= MAX_WINDOW_HOURS:
        raise ActivityRequestError(
            f"window_hours={window_hours!r}: give {MIN_WINDOW_HOURS} to {MAX_WINDOW_HOURS} (at least 2, "
            "so that a block that reaches the source late is still counted in its hour)")
    return [hour - dt.timedelta(hours=k) for k in range(window_hours - 1, -1, -1)]


def _sql_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def window_params(start: dt.datetime, end: dt.datetime) -> dict[str, str]:
    """The SQL's parameters for [start, end): the bounds and their days (the partition filter)."""
    last = end - dt.timedelta(microseconds=1)
    return {"start": _sql_time(start), "end": _sql_time(end),
            "first_day": start.date().isoformat(), "last_day": last.date().isoformat()}


def render_sql(name: str, start: dt.datetime, end: dt.datetime) -> str:
    """`include/sql/<name>.sql` (hourly_blocks, hourly_coinbase_outputs) for the window, BigQuery SQL."""
    from pool_classifier.io import sql

    return sql.render(name, **window_params(start, end))


# ---------------------------------------------------------------- the sources


class WindowSource(Protocol):
    """Where the window's blocks come from (the local warehouse, or BigQuery on gcp)."""

    # "tags+addresses" when coinbase outputs are read, "tags" when not.
    attribution_inputs: str

    def blocks(self, start: dt.datetime, end: dt.datetime) -> list[dict]:
        """block_hash, block_number, block_timestamp (aware UTC), coinbase_param, transaction_count."""

    def coinbase_outputs(self, start: dt.datetime, end: dt.datetime) -> list[dict] | None:
        """block_number, output_index, address, value of the window's coinbases; None: not read."""


class WarehouseSource:
    """The local warehouse (DuckDB standing in for BigQuery): both SQL files, transpiled."""

    attribution_inputs = "tags+addresses"

    def __init__(self, warehouse: str):
        self.warehouse = warehouse

    def _rows(self, name: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
        from pool_classifier.io import sql
        from pool_classifier.steps.extract_day import connect_warehouse

        con = connect_warehouse(self.warehouse)
        try:
            cursor = con.execute(sql.to_duckdb(render_sql(name, start, end)))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]
        finally:
            con.close()

    def blocks(self, start, end):
        return self._rows("hourly_blocks", start, end)

    def coinbase_outputs(self, start, end):
        return self._rows("hourly_coinbase_outputs", start, end)


# ---------------------------------------------------------------- the transforms (pure)


def subsidy(height: int) -> int:
    """The block subsidy in satoshi at `height` (halving every 210,000 blocks)."""
    return 5_000_000_000 >> (height // 210_000) if height < 64 * 210_000 else 0


def attribute_blocks(blocks: list[dict], outputs: list[dict] | None, pools) -> list[dict]:
    """Each block with its pool (`pools`: an `attribution.PoolsList`), the hour it belongs to, its
    transactions and, when the coinbase outputs were read, its fees. Sorted by height."""
    # Keyed by block hash (as the daily job): a stale block beside the main one at its height has
    # its own coinbase.
    by_block: dict[str, list[dict]] = {}
    for out in outputs or ():
        by_block.setdefault(out["block_hash"], []).append(out)
    rows = []
    for block in sorted(blocks, key=lambda b: (b["block_number"], b["block_hash"])):
        paid = sorted(by_block.get(block["block_hash"], ()), key=lambda o: o["output_index"])
        found = pools.attribute(block["coinbase_param"], [o["address"] for o in paid])
        when = _utc(block["block_timestamp"])
        fees = None
        if outputs is not None:
            fees = max(0, sum(int(o["value"] or 0) for o in paid) - subsidy(block["block_number"])) if paid else None
        rows.append({
            "hour": when.replace(minute=0, second=0, microsecond=0),
            "block_hash": block["block_hash"],
            "block_number": int(block["block_number"]),
            "block_timestamp": when,
            "pool_id": UNKNOWN_POOL_ID if found.pool_id is None else int(found.pool_id),
            "pool_name": found.pool_name or UNKNOWN_POOL_NAME,
            "matched_by": found.matched_by,
            "transactions": int(block["transaction_count"] or 0),
            "fees": fees,
        })
    return rows


def hour_rows(block_rows: list[dict], hour: dt.datetime, pools_sha256: str) -> list[dict]:
    """One hour's rows of `pool_activity_hourly`: one per pool that mined in it (and one for
    the unknown blocks), most blocks first."""
    mine = [b for b in block_rows if b["hour"] == hour]
    total = len(mine)
    groups: dict[int, list[dict]] = {}
    for b in mine:
        groups.setdefault(b["pool_id"], []).append(b)
    rows = []
    for pool_id, group in groups.items():
        newest = max(group, key=lambda b: (b["block_number"], b["block_timestamp"]))
        fees = [b["fees"] for b in group]
        rows.append({
            "hour": hour, "pool_id": pool_id, "pool_name": group[0]["pool_name"], "blocks": len(group),
            "share": len(group) / total, "transactions": sum(b["transactions"] for b in group),
            "fees": None if any(f is None for f in fees) else sum(fees),
            "by_tag": sum(b["matched_by"] == "tag" for b in group),
            "by_address": sum(b["matched_by"] == "address" for b in group),
            "by_unknown": sum(b["matched_by"] == "none" for b in group),
            "newest_block_number": newest["block_number"], "newest_block_time": newest["block_timestamp"],
            "pools_sha256": pools_sha256,
        })
    return sorted(rows, key=lambda r: (-r["blocks"], r["pool_id"]))


def _utc(value) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace(" UTC", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


# ---------------------------------------------------------------- Parquet (pyarrow: no Spark here)


def table_schema():
    """The pyarrow schema of `pool_activity_hourly` (include/schemas/…pool_activity_hourly.json)."""
    import pyarrow as pa

    types = {"TIMESTAMP": pa.timestamp("us", tz="UTC"), "INT64": pa.int64(), "STRING": pa.string(),
             "FLOAT64": pa.float64()}
    fields = json.loads((datasets.SCHEMA_DIR / SCHEMA_FILE).read_text())
    return pa.schema([pa.field(f["name"], types[f["type"]], nullable=f.get("mode") != "REQUIRED") for f in fields])


def blocks_schema():
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([("hour", ts), ("block_hash", pa.string()), ("block_number", pa.int64()),
                      ("block_timestamp", ts), ("pool_id", pa.int64()), ("pool_name", pa.string()),
                      ("matched_by", pa.string()), ("transactions", pa.int64()), ("fees", pa.int64())])


def parquet_bytes(rows: list[dict], schema) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def read_parquet_rows(fs, path: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(fs.read_bytes(path))).to_pylist()


# ---------------------------------------------------------------- the step


@dataclass(frozen=True)
class HourWritten:
    hour: str
    blocks: int
    pools: int
    status: str


def merge_pool_activity(target: Target, hour: dt.datetime | str, window_hours: int = WINDOW_HOURS,
                        source: WindowSource | None = None, pools=None) -> dict:
    """Rebuild every hour of the window ending at `hour` from the source, each replacing its
    hour. Returns what was written per hour."""
    from pool_classifier import attribution
    from pool_classifier.io import versioned

    hour = parse_hour(hour) if isinstance(hour, str) else parse_hour(hour.isoformat())
    now = parse_hour(dt.datetime.now(dt.timezone.utc).isoformat())
    if hour > now:
        # A future hour's empty version would become the newest hour and end the dashboard's window.
        raise ActivityRequestError(f"hour={hour_name(hour)} has not begun (now {hour_name(now)} UTC): "
                                   "give a past hour")
    hours = window(hour, window_hours)
    source = source or WarehouseSource(target.warehouse)
    pools = pools or attribution.PoolsList.load(datasets.POOLS_FILE)
    start, end = hours[0], hours[-1] + dt.timedelta(hours=1)
    blocks = source.blocks(start, end)
    outputs = source.coinbase_outputs(start, end) if blocks else []
    block_rows = attribute_blocks(blocks, outputs, pools)
    fs = versioned.for_location(target.bucket)
    written = []
    for h in hours:
        mine = [b for b in block_rows if b["hour"] == h]
        rows = hour_rows(block_rows, h, pools.sha256)
        newest = max(mine, key=lambda b: b["block_number"]) if mine else None
        meta = {
            "hour": hour_name(h), "blocks": len(mine), "status": "ok" if mine else "empty",
            "pools_sha256": pools.sha256, "pools_source": str(pools.source),
            "attribution_inputs": source.attribution_inputs,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "run_hour": hour_name(hour)},
            "newest_block": None if newest is None else {
                "block_number": newest["block_number"], "block_time": newest["block_timestamp"].isoformat()},
        }
        versioned.publish_files(fs, datasets.activity_hour_dir(target, "pool_activity_hourly", hour_name(h)),
                                {POOLS_FILE: parquet_bytes(rows, table_schema())}, meta)
        versioned.publish_files(fs, datasets.activity_hour_dir(target, "block_pools_hourly", hour_name(h)),
                                {BLOCKS_FILE: parquet_bytes(mine, blocks_schema())}, meta)
        written.append(HourWritten(hour_name(h), len(mine), len(rows), meta["status"]).__dict__)
    return {"window": [hour_name(hours[0]), hour_name(hours[-1])], "blocks": len(block_rows),
            "pools_sha256": pools.sha256, "attribution_inputs": source.attribution_inputs, "hours": written}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Attribute the last hours' blocks to pools, merged per hour.")
    parser.add_argument("--hour", required=True, help="the run's hour, YYYY-MM-DDTHH (UTC); the window ends with it")
    parser.add_argument("--window-hours", type=int, default=WINDOW_HOURS)
    args = parser.parse_args(argv)
    result = merge_pool_activity(current_target(), args.hour, args.window_hours)
    for h in result["hours"]:
        print(f"{h['hour']}: {h['blocks']} blocks, {h['pools']} pools ({h['status']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
