"""check_extract: the data-quality gate after extract_day. The day's blocks, outputs and inputs
are whole and consistent: block numbers contiguous for the day (and with the day before), the
transactions equal the blocks' `transaction_count` sums, no duplicate hashes or rows, values
within 0…21 M BTC. SQL: `include/sql/gates/check_extract.sql`; shared parts: `quality_gate.py`.

    python -m pool_classifier.steps.check_extract --ds 2024-03-01
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pool_classifier import datasets
from pool_classifier.steps.quality_gate import (
    MAX_MONEY_SATOSHI,
    SETTINGS,
    Check,
    GateSettings,
    connect,
    finish,
    gate_main,
    parquet,
    query,
)
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


def check_extract(target: Target, ds: str, settings: GateSettings = SETTINGS) -> dict:
    """After extract_day: the day's blocks, outputs and inputs are whole and consistent."""
    sources = {table: parquet(datasets.extract_dir(target, table, ds)) for table in datasets.EXTRACT_TABLES}
    con = connect()
    try:
        def ask(name: str, **params):
            return query(con, "extract", name, **sources, **params)

        n_blocks, distinct_numbers, distinct_hashes, first, last, expected_tx = ask("blocks").fetchone()
        gaps_total, gaps_unexplained, gap_examples = _block_number_gaps(
            ask("block_times").fetchall(), ds, settings.midnight_window_seconds
        )
        observed_tx, output_rows, distinct_output_keys = ask("output_keys").fetchone()
        input_rows, distinct_input_keys = ask("input_keys").fetchone()
        blocks_with_wrong_count = ask("blocks_with_wrong_count").fetchone()[0]
        orphans = ask("orphans").fetchone()[0]
        repeated_hashes = ask("repeated_hashes", known_duplicates=settings.known_duplicate_transactions).fetchone()[0]
        bad_output_values = ask("bad_output_values", max_money=MAX_MONEY_SATOSHI).fetchone()
        bad_input_values = ask("bad_input_values", max_money=MAX_MONEY_SATOSHI).fetchone()
        previous_last = None
        previous_dir = datasets.extract_dir(target, "blocks", datasets.day_before(ds))
        if Path(previous_dir).is_dir() and any(Path(previous_dir).glob("*.parquet")):
            previous_last = ask("last_block", source=parquet(previous_dir)).fetchone()[0]
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
    return finish(target, "extract", ds, checks, figures, settings)



def main(argv: list[str] | None = None) -> int:
    return gate_main("extract", argv)


if __name__ == "__main__":
    sys.exit(main())
