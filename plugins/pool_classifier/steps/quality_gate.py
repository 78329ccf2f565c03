"""What the data-quality gates share: their settings (each threshold with its reason), the
checks' record, where the figures are kept, and how a gate ends.

The gates themselves, one step each: `check_extract` (after extract_day), `check_features`
(after build_features), `check_scores` (after score_addresses); their SQL is in
`include/sql/gates/check_<gate>.sql` (DuckDB, over the day's files). Each gate reads only the day's
output folders (and, where a check compares, the day before), writes its figures — every
check with its expected and observed numbers, pass or fail — to
`<bucket>/quality/<gate>/dt=<ds>/figures.json` (atomically, replaced on a re-run), then
raises `QualityGateError` if any check failed. The error names each failed check with what
was expected and what was observed, so the task log alone says what is wrong.

    python -m pool_classifier.steps.quality_gate {extract,features,scores} --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.errors import DataError
from pool_classifier.io import atomic, sql
from pool_classifier.io.atomic import write_text_atomically
from pool_classifier.targets import Target, current_target

GATES = datasets.GATES
FIGURES_FILE = datasets.GATE_FIGURES_FILE
# 21 million BTC in satoshi: no output, input or mean value can exceed the money supply.
MAX_MONEY_SATOSHI = 21_000_000 * 100_000_000
# Month columns of the features are Unix seconds of a month's first day; nothing before
# the genesis block's month (2009-01-01) exists.
GENESIS_MONTH_SECONDS = 1_230_768_000


def _reason(text: str) -> dict:
    return {"reason": text}


@dataclass(frozen=True)
class GateSettings:
    """Every threshold of the gates, each with why it has that value (see `reasons()`)."""

    midnight_window_seconds: int = field(default=7200, metadata=_reason(
        "Block timestamps are not monotonic: a block may carry a time up to ~2 h before its "
        "predecessor's, so a block near midnight can fall on the other day and leave a gap in "
        "the day's block numbers. A gap is accepted only when the blocks on both sides of it "
        "are within this many seconds of the same midnight."))
    known_duplicate_transactions: tuple[str, ...] = field(default=(
        "d5d27987d2a3dfc724e359870c6644b40e497bdc0589a033220fe15429d88599",
        "e3bf3d07d4b0375638d5f1db5255fe07ba2c4cb067cd81b84ee974b6585fb468",
    ), metadata=_reason(
        "BIP30: the only two transaction hashes that appear in two blocks of the real chain "
        "(blocks 91,812/91,842 and 91,722/91,880, November 2010). Any other hash seen in two "
        "blocks of a day is a duplicated row."))
    max_feature_null_rate: float = field(default=0.0, metadata=_reason(
        "Every feature is defined for every address (undefined values are 0 by definition, see "
        "feature_spec), so any null is a bug in the features job."))
    max_score_psi: float = field(default=0.25, metadata=_reason(
        "Population stability index of the day's scores against the day before, over ten "
        "equal-width bins of [0, 1]: above 0.25 is the usual mark of a significant shift, "
        "the point where a model's inputs or the model itself should be looked at."))
    max_predicted_pool_share_ratio: float = field(default=5.0, metadata=_reason(
        "The share of addresses predicted to be pool addresses may move from day to day "
        "(pools pay in bursts), but not by more than this factor either way: a model "
        "predicting five times more (or fewer) pools than yesterday is broken, not lucky."))
    score_bins: int = field(default=10, metadata=_reason(
        "Ten equal-width bins of the score: fine enough to see a shift, coarse enough that "
        "a day of a few thousand addresses fills them."))

    def reasons(self) -> dict[str, dict]:
        return {
            f.name: {"value": getattr(self, f.name), "reason": f.metadata["reason"]}
            for f in dataclasses.fields(self)
        }


SETTINGS = GateSettings()


class QualityGateError(DataError, ValueError):
    """A gate found the day's data wrong; the message names each failed check, expected vs observed."""


@dataclass
class Check:
    name: str
    passed: bool
    expected: object
    observed: object
    detail: str = ""

    def line(self) -> str:
        text = f"{self.name}: expected {self.expected}, observed {self.observed}"
        return f"{text} ({self.detail})" if self.detail else text


def figures_path(target: Target, gate: str, ds: str) -> str:
    """Where a gate keeps the figures of one day."""
    return datasets.quality_figures(target, gate, ds)


def read_figures(target: Target, gate: str, ds: str) -> dict:
    return json.loads(Path(figures_path(target, gate, ds)).read_text())


def parquet(folder: str) -> str:
    """A DuckDB source for every Parquet file of a day's folder; fails naming the folder."""
    if not atomic.exists(folder):
        raise QualityGateError(f"no Parquet files in {folder}: the step before the gate wrote nothing")
    return atomic.duckdb_source(folder)


def connect():
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # One thread: a parallel avg() of doubles adds in whatever order the threads finish, so
    # its last bits (score_mean) could differ between two runs of the same day; the figures
    # must be the same bytes on a re-run. A gate reads one day: one thread is fast enough.
    con.execute("SET threads = 1")
    return con


def query(con, gate: str, query_name: str, **params):
    """Run one named query of `include/sql/gates/check_<gate>.sql`."""
    return con.execute(sql.named_query(f"gates/check_{gate}", query_name, **params))


def finish(target: Target, gate: str, ds: str, checks: list[Check], figures: dict,
            settings: GateSettings) -> dict:
    """Keep the figures (pass or fail), then fail on any failed check."""
    failed = [c for c in checks if not c.passed]
    path = figures_path(target, gate, ds)
    record = {
        "gate": gate,
        "ds": ds,
        "passed": not failed,
        "checks": [dataclasses.asdict(c) for c in checks],
        "figures": figures,
        "settings": settings.reasons(),
    }
    write_text_atomically(path, json.dumps(record, indent=2, sort_keys=True, default=json_default) + "\n")
    if failed:
        lines = "\n".join(f"  - {c.line()}" for c in failed)
        raise QualityGateError(
            f"quality gate '{gate}' failed for {ds}: {len(failed)} of {len(checks)} checks failed:\n"
            f"{lines}\nAll figures: {path}"
        )
    return record


def json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def run(gate: str, target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """Run the gate `check_<gate>` for day `ds`."""
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; expected one of {GATES}")
    module = importlib.import_module(f"pool_classifier.steps.check_{gate}")
    return getattr(module, f"check_{gate}")(target, ds, settings)


def gate_main(gate: str, argv: list[str] | None = None) -> int:
    """`python -m pool_classifier.steps.check_<gate> --ds <day>`."""
    parser = argparse.ArgumentParser(description=f"Run the {gate} quality gate on one day's outputs.")
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    return _run_and_report(gate, args.ds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one quality gate on one day's outputs.")
    parser.add_argument("gate", choices=GATES)
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    return _run_and_report(args.gate, args.ds)


def _run_and_report(gate: str, ds: str) -> int:
    target = current_target()
    try:
        record = run(gate, target, ds)
    except QualityGateError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"quality gate '{gate}' passed for {ds}: {len(record['checks'])} checks; "
          f"figures in {figures_path(target, gate, ds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
