"""check_extract: the data-quality gate after extract_day. The day's blocks, outputs and inputs
are whole and consistent: block numbers contiguous for the day (and with the day before), the
transactions equal the blocks' `transaction_count` sums, no duplicate hashes or rows, values
within 0…21 M BTC. SQL: `include/sql/gates/check_extract.sql`; shared parts: `quality_gate.py`.

    python -m pool_classifier.steps.check_extract --ds 2024-03-01
"""
from __future__ import annotations

import datetime as dt
import sys

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps import quality_gate as gate
from pool_classifier.targets import Target


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


def check_extract(target: Target, ds: str, settings: gate.GateSettings = gate.SETTINGS) -> dict:
    """After extract_day: the day's blocks, outputs and inputs are whole and consistent."""
    m = _measure(target, ds, settings)
    figures = {
        "blocks": m["n_blocks"],
        "first_block": m["first"],
        "last_block": m["last"],
        "missing_block_numbers": m["gaps_total"],
        "missing_block_numbers_unexplained": m["gaps_unexplained"],
        "previous_day_last_block": m["previous_last"],
        "transactions_expected": m["expected_tx"],
        "transactions_observed": m["observed_tx"],
        "output_rows": m["output_rows"],
        "input_rows": m["input_rows"],
    }
    return gate.finish(target, "extract", ds, _checks(m), figures, settings)


def _measure(target: Target, ds: str, settings: gate.GateSettings) -> dict:
    """The day's figures, from the queries of include/sql/gates/check_extract.sql."""
    sources = {table: gate.parquet(datasets.extract_dir(target, table, ds)) for table in datasets.EXTRACT_TABLES}
    m = {}
    con = gate.connect()
    try:
        def ask(name: str, **params):
            return gate.query(con, "extract", name, **sources, **params)

        (m["n_blocks"], m["distinct_numbers"], m["distinct_hashes"], m["first"], m["last"],
         m["expected_tx"]) = ask("blocks").fetchone()
        m["gaps_total"], m["gaps_unexplained"], m["gap_examples"] = _block_number_gaps(
            ask("block_times").fetchall(), ds, settings.midnight_window_seconds)
        m["observed_tx"], m["output_rows"], m["distinct_output_keys"] = ask("output_keys").fetchone()
        m["input_rows"], m["distinct_input_keys"] = ask("input_keys").fetchone()
        m["blocks_with_wrong_count"] = ask("blocks_with_wrong_count").fetchone()[0]
        m["orphans"] = ask("orphans").fetchone()[0]
        m["repeated_hashes"] = ask("repeated_hashes", known_duplicates=settings.known_duplicate_transactions).fetchone()[0]
        m["bad_output_values"] = ask("bad_output_values", max_money=gate.MAX_MONEY_SATOSHI).fetchone()
        m["bad_input_values"] = ask("bad_input_values", max_money=gate.MAX_MONEY_SATOSHI).fetchone()
        m["previous_last"] = None
        previous_dir = datasets.extract_dir(target, "blocks", datasets.day_before(ds))
        if atomic.exists(previous_dir):
            m["previous_last"] = ask("last_block", source=gate.parquet(previous_dir)).fetchone()[0]
    finally:
        con.close()
    return m


def _checks(m: dict) -> list[gate.Check]:
    """Each check of the day's figures, with what was expected and what was observed."""
    check, money = gate.Check, gate.MAX_MONEY_SATOSHI
    first, last, previous_last = m["first"], m["last"], m["previous_last"]
    between_days = 0 if previous_last is None or first is None else max(0, first - previous_last - 1)
    span = f"blocks {first}..{last}"
    if m["gap_examples"]:
        gaps = f"{span}; missing: {', '.join(m['gap_examples'])}"
    elif m["gaps_total"]:
        gaps = f"{span}; {m['gaps_total']} missing next to midnight (timestamp order)"
    else:
        gaps = span

    def values(side: str) -> gate.Check:
        bad = m[f"bad_{side}_values"]
        return check(f"{side}_values_valid", sum(bad) == 0, f"0 {side} values null, negative or > {money} satoshi",
                     sum(bad), "null {}, negative {}, above the money supply {}".format(*bad))

    return [
        check("blocks_present", m["n_blocks"] > 0, "> 0 blocks", m["n_blocks"]),
        check("block_hashes_unique", m["distinct_hashes"] == m["n_blocks"], f"{m['n_blocks']} distinct block hashes",
              m["distinct_hashes"]),
        check("block_numbers_unique", m["distinct_numbers"] == m["n_blocks"],
              f"{m['n_blocks']} distinct block numbers", m["distinct_numbers"]),
        check("block_numbers_contiguous", m["gaps_unexplained"] == 0, "0 missing block numbers",
              m["gaps_unexplained"], gaps),
        check("follows_previous_day", between_days == 0, "0 blocks missing since the day before", between_days,
              "no extract of the day before to compare with" if previous_last is None
              else f"the day before ends at block {previous_last}"),
        check("transaction_count", m["observed_tx"] == m["expected_tx"],
              f"{m['expected_tx']} transactions (sum of blocks.transaction_count)", m["observed_tx"],
              f"{m['blocks_with_wrong_count']} blocks whose outputs show another number of transactions"),
        check("rows_in_known_blocks", m["orphans"] == 0, "0 output/input rows of blocks not extracted", m["orphans"]),
        check("transaction_hashes_unique", m["repeated_hashes"] == 0,
              "0 transaction hashes in two blocks (BIP30 pair excepted)", m["repeated_hashes"]),
        check("output_rows_unique", m["distinct_output_keys"] == m["output_rows"],
              f"{m['output_rows']} distinct (block, transaction, output index)", m["distinct_output_keys"]),
        check("input_rows_unique", m["distinct_input_keys"] == m["input_rows"],
              f"{m['input_rows']} distinct (block, transaction, input index)", m["distinct_input_keys"]),
        values("output"),
        values("input"),
    ]


def main(argv: list[str] | None = None) -> int:
    return gate.gate_main("extract", argv)


if __name__ == "__main__":
    sys.exit(main())
