"""The command line, `python -m tools.synthetic_chain`: arguments in, the run's summary out as JSON."""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

# --help describes the tool with the package docstring's first line, as the single module did.
from . import __doc__ as _package_doc
from .actors import DEFAULT_POOLS_PATH
from .writer import generate


def main(argv: list[str] | None = None) -> int:
    # Named as before the package split: argparse would otherwise say "__main__.py".
    parser = argparse.ArgumentParser(prog="synthetic_chain.py", description=_package_doc.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per day)")
    parser.add_argument("--start", required=True, type=datetime.date.fromisoformat, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--tx-per-day", type=int, default=20000, help="transactions a day, coinbases included")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pools", type=Path, default=None, help=f"pools-v2.json (default: {DEFAULT_POOLS_PATH})")
    args = parser.parse_args(argv)
    summary = generate(args.out, args.start, args.days, args.tx_per_day, args.seed, args.pools)
    print(json.dumps(summary, indent=2))
    return 0
