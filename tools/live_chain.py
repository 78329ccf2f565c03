"""A local demo of "live": the seeded synthetic chain, made for the days around now, appended to
the local warehouse block by block as the wall clock passes each block's time. With `make airflow`
running, the hourly DAG `pool_activity_hourly` then attributes new blocks every hour and `/live`
(`make serve`) moves.

    python -m tools.live_chain                      # every 60 s: append the blocks now due
    python -m tools.live_chain --once               # append what is due, then exit

The chain is `tools.synthetic_chain`'s (same generator, seed and pools), generated once for
`--days` days from `--start` (default: yesterday, UTC, so the last 24 h are there at once) into
`data/live/`, then replayed: a block is loaded when its timestamp is past. Loads go through the
warehouse's own loader (`pool_classifier.io.warehouse`: keyed, idempotent), so running it twice
or restarting it never doubles a block. A load that finds the warehouse locked (an Airflow task
reading it) is tried again at the next tick.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("live_chain")


def chain_dir(cache: Path, start: dt.date, days: int, tx_per_day: int, seed: int) -> Path:
    """The generated chain's folder, generated once (the generator is seeded: the same every time)."""
    from tools import synthetic_chain

    folder = cache / f"start={start.isoformat()}_days={days}_tx={tx_per_day}_seed={seed}"
    if not (folder / "ground_truth").exists():
        synthetic_chain.generate(folder, start, days=days, tx_per_day=tx_per_day, seed=seed)
    return folder


def _block_time(row: dict) -> dt.datetime:
    return dt.datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.timezone.utc)


def read_chain(folder: Path) -> tuple[list[tuple[dt.datetime, str]], dict[int, list[str]]]:
    """Every block line with its time, in height order, and each height's transaction lines."""
    blocks, transactions = [], {}
    for day in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[:4].isdigit()):
        with gzip.open(day / "blocks.ndjson.gz", "rt") as f:
            for line in f:
                row = json.loads(line)
                blocks.append((row["number"], _block_time(row), line.rstrip("\n")))
        with gzip.open(day / "transactions.ndjson.gz", "rt") as f:
            for line in f:
                transactions.setdefault(json.loads(line)["block_number"], []).append(line.rstrip("\n"))
    blocks.sort()
    return [(when, line) for _, when, line in blocks], transactions


def append_due(blocks, transactions, warehouse: str, after: dt.datetime | None, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Load the blocks with `after` < time ≤ `now` (and their transactions); returns (blocks loaded,
    the newest time loaded). Nothing due: (0, after)."""
    from pool_classifier.io.warehouse import load_exports

    due = [(when, line) for when, line in blocks if when <= now and (after is None or when > after)]
    if not due:
        return 0, after
    with tempfile.TemporaryDirectory(prefix="live-chain-") as tmp:
        heights = [json.loads(line)["number"] for _, line in due]
        Path(tmp, "blocks.ndjson").write_text("\n".join(line for _, line in due) + "\n")
        Path(tmp, "transactions.ndjson").write_text(
            "\n".join(t for h in heights for t in transactions.get(h, [])) + "\n")
        load_exports(tmp, warehouse)
    return len(due), due[-1][0]


def main(argv: list[str] | None = None) -> int:
    from pool_classifier.targets import current_target, local

    parser = argparse.ArgumentParser(description="Append the synthetic chain's blocks to the local warehouse as time passes.")
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).date()
    parser.add_argument("--start", type=dt.date.fromisoformat, default=yesterday, help="first UTC day (default: yesterday)")
    parser.add_argument("--days", type=int, default=3, help="days generated from --start (default 3)")
    parser.add_argument("--tx-per-day", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between appends")
    parser.add_argument("--once", action="store_true", help="append what is due, then exit")
    parser.add_argument("--warehouse", default=None, help="DuckDB file (default: the local target's)")
    parser.add_argument("--cache", type=Path, default=None, help="where the chain is generated (default data/live)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    warehouse = args.warehouse or current_target().warehouse
    Path(warehouse).parent.mkdir(parents=True, exist_ok=True)
    folder = chain_dir(args.cache or local.data_dir() / "live", args.start, args.days, args.tx_per_day, args.seed)
    blocks, transactions = read_chain(folder)
    log.info("chain %s: %d blocks from %s to %s", folder.name, len(blocks), blocks[0][0], blocks[-1][0])
    after = None
    while True:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            loaded, after = append_due(blocks, transactions, warehouse, after, now)
            if loaded:
                log.info("appended %d blocks up to %s into %s", loaded, after.isoformat(), warehouse)
        except Exception as exc:  # noqa: BLE001 - a locked warehouse: the next tick tries again
            if "lock" not in str(exc).lower():
                raise
            log.info("warehouse busy (%s); trying again in %.0f s", exc, args.interval)
        if args.once or (after is not None and after >= blocks[-1][0]):
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
