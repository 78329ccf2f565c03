"""Data-quality gates between the steps: checks over one day's files, figures kept per day.

    check_extract(target, ds)    after extract_day:   blocks contiguous, transaction counts,
                                                      no duplicate hashes, values in range
    check_features(target, ds)   after build_features: null rate and range of every feature
    check_scores(target, ds)     after score_addresses: scores valid, every address scored,
                                                      distribution against the day before

Each gate reads only the day's output folders (and, where a check compares, the day
before), writes its figures — every check with its expected and observed numbers, pass
or fail — to `<bucket>/quality/<gate>/dt=<ds>/figures.json` (atomically, replaced on a
re-run), then raises `QualityGateError` if any check failed. The error names each failed
check with what was expected and what was observed, so the task log alone says what is
wrong. Thresholds live in one place, `GateSettings`, each with its reason.

    python -m pool_classifier.steps.quality_gates {extract,features,scores} --ds 2024-03-01
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.model.feature_spec import FEATURE_COLUMNS
from pool_classifier.io.atomic import write_text_atomically
from pool_classifier.targets import Target, current_target

GATES = ("extract", "features", "scores")
FIGURES_FILE = "figures.json"
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


class QualityGateError(ValueError):
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
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; expected one of {GATES}")
    return f"{target.bucket}/quality/{gate}/dt={ds}/{FIGURES_FILE}"


def read_figures(target: Target, gate: str, ds: str) -> dict:
    return json.loads(Path(figures_path(target, gate, ds)).read_text())


def _previous_day(ds: str) -> str:
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()


def _require_local(target: Target) -> None:
    if not target.bucket.startswith("/"):
        raise NotImplementedError(
            f"the quality gates read local folders; target {target.name!r} keeps its data in "
            f"{target.bucket} (its gates run as BigQuery SQL, the next milestone)."
        )


def _parquet(folder: str) -> str:
    """A DuckDB source for every Parquet file of a day's folder; fails naming the folder."""
    if not Path(folder).is_dir() or not any(Path(folder).glob("*.parquet")):
        raise QualityGateError(f"no Parquet files in {folder}: the step before the gate wrote nothing")
    return f"read_parquet('{folder}/*.parquet')"


def _connect():
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # One thread: a parallel avg() of doubles adds in whatever order the threads finish, so
    # its last bits (score_mean) could differ between two runs of the same day; the figures
    # must be the same bytes on a re-run. A gate reads one day: one thread is fast enough.
    con.execute("SET threads = 1")
    return con


def _finish(target: Target, gate: str, ds: str, checks: list[Check], figures: dict,
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
    write_text_atomically(path, json.dumps(record, indent=2, sort_keys=True, default=_json_default) + "\n")
    if failed:
        lines = "\n".join(f"  - {c.line()}" for c in failed)
        raise QualityGateError(
            f"quality gate '{gate}' failed for {ds}: {len(failed)} of {len(checks)} checks failed:\n"
            f"{lines}\nAll figures: {path}"
        )
    return record


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


# ---------------------------------------------------------------- extract


def _block_number_gaps(rows: list[tuple[int, dt.datetime]], ds: str, window: int) -> tuple[int, int, list]:
    """Missing block numbers between the day's first and last block: (total, unexplained, examples).

    A gap is explained by timestamp disorder when the blocks on both sides of it are within
    `window` seconds of the same midnight (the day's start or its end).
    """
    start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(days=1)

    def near(ts: dt.datetime, edge: dt.datetime) -> bool:
        return abs((ts - edge).total_seconds()) <= window

    total = unexplained = 0
    examples = []
    for (a, ta), (b, tb) in zip(rows, rows[1:]):
        if b - a <= 1:
            continue
        missing = b - a - 1
        total += missing
        if not ((near(ta, start) and near(tb, start)) or (near(ta, end) and near(tb, end))):
            unexplained += missing
            if len(examples) < 5:
                examples.append(f"{a + 1}..{b - 1}")
    return total, unexplained, examples


def check_extract(target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """After extract_day: the day's blocks, outputs and inputs are whole and consistent."""
    _require_local(target)
    blocks = _parquet(datasets.extract_dir(target, "blocks", ds))
    outputs = _parquet(datasets.extract_dir(target, "outputs", ds))
    inputs = _parquet(datasets.extract_dir(target, "inputs", ds))
    con = _connect()
    try:
        n_blocks, distinct_numbers, distinct_hashes, first, last, expected_tx = con.execute(
            f"SELECT count(*), count(DISTINCT block_number), count(DISTINCT block_hash), "
            f"min(block_number), max(block_number), coalesce(sum(transaction_count), 0) FROM {blocks}"
        ).fetchone()
        numbered = con.execute(
            f"SELECT DISTINCT block_number, block_timestamp FROM {blocks} ORDER BY 1"
        ).fetchall()
        gaps_total, gaps_unexplained, gap_examples = _block_number_gaps(
            numbered, ds, settings.midnight_window_seconds
        )
        observed_tx, output_rows, distinct_output_keys = con.execute(
            f"SELECT count(DISTINCT (block_number, transaction_hash)), count(*), "
            f"count(DISTINCT (block_number, transaction_hash, output_index)) FROM {outputs}"
        ).fetchone()
        input_rows, distinct_input_keys = con.execute(
            f"SELECT count(*), count(DISTINCT (block_number, transaction_hash, input_index)) FROM {inputs}"
        ).fetchone()
        blocks_with_wrong_count = con.execute(
            f"SELECT count(*) FROM {blocks} AS b LEFT JOIN (SELECT block_number, "
            f"count(DISTINCT transaction_hash) AS n FROM {outputs} GROUP BY 1) AS o USING (block_number) "
            "WHERE coalesce(o.n, 0) <> coalesce(b.transaction_count, -1)"
        ).fetchone()[0]
        orphans = con.execute(
            f"SELECT count(*) FROM (SELECT block_number FROM {outputs} UNION ALL "
            f"SELECT block_number FROM {inputs}) WHERE block_number NOT IN (SELECT block_number FROM {blocks})"
        ).fetchone()[0]
        known = ", ".join(f"'{h}'" for h in settings.known_duplicate_transactions) or "''"
        repeated_hashes = con.execute(
            f"SELECT count(*) FROM (SELECT transaction_hash FROM {outputs} "
            f"WHERE transaction_hash NOT IN ({known}) GROUP BY 1 "
            "HAVING count(DISTINCT block_number) > 1)"
        ).fetchone()[0]
        bad_output_values = con.execute(
            f"SELECT count(*) FILTER (WHERE value IS NULL), count(*) FILTER (WHERE value < 0), "
            f"count(*) FILTER (WHERE value > {MAX_MONEY_SATOSHI}) FROM {outputs}"
        ).fetchone()
        bad_input_values = con.execute(
            f"SELECT count(*) FILTER (WHERE value IS NULL), count(*) FILTER (WHERE value < 0), "
            f"count(*) FILTER (WHERE value > {MAX_MONEY_SATOSHI}) FROM {inputs}"
        ).fetchone()
        previous_last = None
        previous_dir = datasets.extract_dir(target, "blocks", _previous_day(ds))
        if Path(previous_dir).is_dir() and any(Path(previous_dir).glob("*.parquet")):
            previous_last = con.execute(f"SELECT max(block_number) FROM {_parquet(previous_dir)}").fetchone()[0]
    finally:
        con.close()

    between_days = 0 if previous_last is None or first is None else max(0, first - previous_last - 1)
    checks = [
        Check("blocks_present", n_blocks > 0, "> 0 blocks", n_blocks),
        Check("block_hashes_unique", distinct_hashes == n_blocks, f"{n_blocks} distinct block hashes",
              distinct_hashes),
        Check("block_numbers_unique", distinct_numbers == n_blocks, f"{n_blocks} distinct block numbers",
              distinct_numbers),
        Check("block_numbers_contiguous", gaps_unexplained == 0, "0 missing block numbers",
              gaps_unexplained,
              f"blocks {first}..{last}; missing: {', '.join(gap_examples)}" if gap_examples
              else f"blocks {first}..{last}; {gaps_total} missing next to midnight (timestamp order)"
              if gaps_total else f"blocks {first}..{last}"),
        Check("follows_previous_day", between_days == 0, "0 blocks missing since the day before",
              between_days,
              "no extract of the day before to compare with" if previous_last is None
              else f"the day before ends at block {previous_last}"),
        Check("transaction_count", observed_tx == expected_tx,
              f"{expected_tx} transactions (sum of blocks.transaction_count)", observed_tx,
              f"{blocks_with_wrong_count} blocks whose outputs show another number of transactions"),
        Check("rows_in_known_blocks", orphans == 0, "0 output/input rows of blocks not extracted", orphans),
        Check("transaction_hashes_unique", repeated_hashes == 0,
              "0 transaction hashes in two blocks (BIP30 pair excepted)", repeated_hashes),
        Check("output_rows_unique", distinct_output_keys == output_rows,
              f"{output_rows} distinct (block, transaction, output index)", distinct_output_keys),
        Check("input_rows_unique", distinct_input_keys == input_rows,
              f"{input_rows} distinct (block, transaction, input index)", distinct_input_keys),
        Check("output_values_valid", sum(bad_output_values) == 0,
              f"0 output values null, negative or > {MAX_MONEY_SATOSHI} satoshi", sum(bad_output_values),
              "null {}, negative {}, above the money supply {}".format(*bad_output_values)),
        Check("input_values_valid", sum(bad_input_values) == 0,
              f"0 input values null, negative or > {MAX_MONEY_SATOSHI} satoshi", sum(bad_input_values),
              "null {}, negative {}, above the money supply {}".format(*bad_input_values)),
    ]
    figures = {
        "blocks": n_blocks,
        "first_block": first,
        "last_block": last,
        "missing_block_numbers": gaps_total,
        "missing_block_numbers_unexplained": gaps_unexplained,
        "previous_day_last_block": previous_last,
        "transactions_expected": expected_tx,
        "transactions_observed": observed_tx,
        "output_rows": output_rows,
        "input_rows": input_rows,
    }
    return _finish(target, "extract", ds, checks, figures, settings)


# ---------------------------------------------------------------- features

# (low, high) per feature; None = unbounded. Month columns are checked apart (0 or a month).
_MONTHS = ("output_month_min", "output_month_max", "input_month_min", "input_month_max")
_FLAGS = ("has_received", "has_spent")


def _feature_ranges(ds: str) -> dict[str, tuple[float | None, float | None]]:
    month_end = dt.datetime.fromisoformat(ds).replace(day=1, tzinfo=dt.timezone.utc).timestamp()
    day_end = (dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)).timestamp()
    span = month_end - GENESIS_MONTH_SECONDS   # longest possible distance between two months
    since_genesis = day_end - GENESIS_MONTH_SECONDS
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for name in FEATURE_COLUMNS:
        if name in _MONTHS:
            ranges[name] = (GENESIS_MONTH_SECONDS, month_end)   # or 0 when undefined
        elif name in _FLAGS:
            ranges[name] = (0, 1)
        elif name.endswith("_active_time"):
            ranges[name] = (0, span)
        elif name.startswith("io_"):
            ranges[name] = (-span, span)
        elif name.endswith("_idle_time"):
            ranges[name] = (0, since_genesis)
        elif name.startswith(("mean_tx_", "stddev_tx_")):
            ranges[name] = (0, MAX_MONEY_SATOSHI)
        else:                                                  # counts, sums, per-month ratios
            ranges[name] = (0, None)
    return ranges


def check_features(target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """After build_features: every feature present, no nulls, every value in its range."""
    _require_local(target)
    source = _parquet(datasets.features_dir(target, "address_features", ds))
    con = _connect()
    try:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        missing = [c for c in FEATURE_COLUMNS if c not in columns]
        present = [c for c in FEATURE_COLUMNS if c in columns]
        rows, addresses = con.execute(
            f"SELECT count(*), count(DISTINCT address) FROM {source}"
        ).fetchone()
        ranges = _feature_ranges(ds)
        per_feature = {}
        for name in present:
            low, high = ranges[name]
            col = f'"{name}"'
            as_double = f"CAST({col} AS DOUBLE)"
            conditions = []
            if name in _MONTHS:
                conditions.append(f"({col} <> 0 AND ({col} < {low} OR {col} > {high}))")
            else:
                if low is not None:
                    conditions.append(f"{col} < {low}")
                if high is not None:
                    conditions.append(f"{col} > {high}")
                if name in _FLAGS:
                    conditions.append(f"{col} NOT IN (0, 1)")
            conditions.append(f"NOT isfinite({as_double})")
            nulls, out_of_range, lo_seen, hi_seen = con.execute(
                f"SELECT count(*) FILTER (WHERE {col} IS NULL), "
                f"count(*) FILTER (WHERE {' OR '.join(conditions)}), "
                f"min({as_double}), max({as_double}) FROM {source}"
            ).fetchone()
            per_feature[name] = {
                "null_rate": nulls / rows if rows else 0.0,
                "nulls": nulls,
                "out_of_range": out_of_range,
                "min": lo_seen,
                "max": hi_seen,
                "range": [low, high],
            }
        inconsistent = 0
        if not missing:
            inconsistent = con.execute(
                f"SELECT count(*) FROM {source} WHERE (has_received = 1) <> (total_tx_output_count > 0) "
                "OR (has_spent = 1) <> (total_tx_input_count > 0)"
            ).fetchone()[0]
    finally:
        con.close()

    checks = [
        Check("rows_present", rows > 0, "> 0 featured addresses", rows),
        Check("addresses_unique", addresses == rows, f"{rows} distinct addresses", addresses),
        Check("feature_columns", not missing, f"all {len(FEATURE_COLUMNS)} feature columns",
              f"missing {missing}" if missing else "all present"),
    ]
    for name, f in per_feature.items():
        checks.append(Check(
            f"null_rate[{name}]", f["null_rate"] <= settings.max_feature_null_rate,
            f"<= {settings.max_feature_null_rate}", round(f["null_rate"], 6), f"{f['nulls']} of {rows} rows",
        ))
        low, high = f["range"]
        bounds = f"[{low}, {high if high is not None else '∞'}]"
        if name in _MONTHS:
            bounds = f"0 or a month in {bounds}"
        checks.append(Check(
            f"range[{name}]", f["out_of_range"] == 0, f"0 values outside {bounds}, all finite",
            f["out_of_range"], f"min {f['min']}, max {f['max']}",
        ))
    checks.append(Check(
        "side_flags_consistent", inconsistent == 0,
        "0 addresses whose has_received/has_spent disagree with their counts", inconsistent,
    ))
    figures = {"rows": rows, "features": per_feature}
    return _finish(target, "features", ds, checks, figures, settings)


# ---------------------------------------------------------------- scores


def _score_histogram(con, source: str, bins: int) -> list[int]:
    counts = dict(con.execute(
        f"SELECT least(CAST(floor(score * {bins}) AS INTEGER), {bins - 1}) AS bin, count(*) "
        f"FROM {source} WHERE score BETWEEN 0 AND 1 GROUP BY 1"
    ).fetchall())
    return [int(counts.get(i, 0)) for i in range(bins)]


def population_stability_index(expected: list[int], observed: list[int]) -> float:
    """PSI between two histograms over the same bins (empty bins get half a count)."""
    n_e, n_o = sum(expected), sum(observed)
    if not n_e or not n_o:
        return 0.0
    psi = 0.0
    for e, o in zip(expected, observed):
        pe, po = max(e, 0.5) / n_e, max(o, 0.5) / n_o
        psi += (po - pe) * math.log(po / pe)
    return psi


def check_scores(target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """After score_addresses: valid scores for every featured address, no shift from the day before."""
    _require_local(target)
    source = _parquet(datasets.predictions_dir(target, ds))
    features = _parquet(datasets.features_dir(target, "address_features", ds))
    con = _connect()
    try:
        rows, addresses, invalid, mean, p50, p90, p99, predicted = con.execute(
            f"SELECT count(*), count(DISTINCT address), "
            f"count(*) FILTER (WHERE score IS NULL OR NOT (score BETWEEN 0 AND 1)), "
            f"avg(score), quantile_cont(score, 0.5), quantile_cont(score, 0.9), "
            f"quantile_cont(score, 0.99), count(*) FILTER (WHERE label) FROM {source}"
        ).fetchone()
        featured = con.execute(f"SELECT count(*) FROM {features}").fetchone()[0]
        unscored = con.execute(
            f"SELECT count(*) FROM {features} WHERE address NOT IN (SELECT address FROM {source})"
        ).fetchone()[0]
        histogram = _score_histogram(con, source, settings.score_bins)
        previous = None
        previous_dir = datasets.predictions_dir(target, _previous_day(ds))
        if Path(previous_dir).is_dir() and any(Path(previous_dir).glob("*.parquet")):
            prev_source = _parquet(previous_dir)
            prev_rows, prev_predicted = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE label) FROM {prev_source}"
            ).fetchone()
            previous = {
                "ds": _previous_day(ds),
                "rows": prev_rows,
                "predicted_pools": prev_predicted,
                "histogram": _score_histogram(con, prev_source, settings.score_bins),
            }
    finally:
        con.close()

    share = predicted / rows if rows else 0.0
    checks = [
        Check("rows_present", rows > 0, "> 0 scored addresses", rows),
        Check("addresses_unique", addresses == rows, f"{rows} distinct addresses", addresses),
        Check("every_featured_address_scored", unscored == 0 and rows == featured,
              f"{featured} scored addresses (the day's featured addresses)", rows,
              f"{unscored} featured addresses without a score"),
        Check("scores_valid", invalid == 0, "0 scores null or outside [0, 1]", invalid),
    ]
    figures = {
        "rows": rows,
        "predicted_pools": predicted,
        "predicted_pool_share": share,
        "score_mean": mean,
        "score_p50": p50,
        "score_p90": p90,
        "score_p99": p99,
        "histogram": histogram,
        "previous_day": previous,
    }
    if previous is None:
        checks.append(Check("score_shift", True, "a day before to compare with", "none",
                            "first scored day: this day is the baseline"))
    else:
        psi = population_stability_index(previous["histogram"], histogram)
        figures["psi"] = psi
        checks.append(Check(
            "score_psi", psi <= settings.max_score_psi, f"<= {settings.max_score_psi}", round(psi, 4),
            f"scores of {ds} against {previous['ds']}",
        ))
        prev_share = previous["predicted_pools"] / previous["rows"] if previous["rows"] else 0.0
        ratio = _share_ratio(share, prev_share, rows, previous["rows"])
        figures["predicted_pool_share_ratio"] = ratio
        limit = settings.max_predicted_pool_share_ratio
        checks.append(Check(
            "predicted_pool_share", ratio <= limit, f"within {limit}x of the day before",
            f"{ratio:.2f}x", f"{share:.4%} of addresses vs {prev_share:.4%} on {previous['ds']}",
        ))
    return _finish(target, "scores", ds, checks, figures, settings)


def _share_ratio(share: float, previous: float, rows: int, previous_rows: int) -> float:
    """How many times larger one share is than the other (≥ 1); one address of slack on each side,
    so that 0 against 1 pool address is a ratio, not an infinity."""
    a = (share * rows + 1) / (rows + 1)
    b = (previous * previous_rows + 1) / (previous_rows + 1)
    return max(a, b) / min(a, b)


CHECKS = {"extract": check_extract, "features": check_features, "scores": check_scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one quality gate on one day's outputs.")
    parser.add_argument("gate", choices=GATES)
    parser.add_argument("--ds", required=True)
    args = parser.parse_args(argv)
    target = current_target()
    try:
        record = CHECKS[args.gate](target, args.ds)
    except QualityGateError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"quality gate '{args.gate}' passed for {args.ds}: {len(record['checks'])} checks; "
          f"figures in {figures_path(target, args.gate, args.ds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
