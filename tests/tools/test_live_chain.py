"""tools/live_chain: the seeded chain appended to a real warehouse as time passes; appending
again never doubles a block, and the hourly step sees the new blocks in their hour."""
from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb

from pool_classifier.steps import merge_pool_activity as merge
from pool_classifier.targets import local
from tools import live_chain

UTC = dt.timezone.utc


def count(warehouse: str) -> tuple[int, int]:
    con = duckdb.connect(warehouse, read_only=True)
    try:
        blocks = con.execute('SELECT count(*) FROM "crypto_bitcoin".blocks').fetchone()[0]
        txs = con.execute('SELECT count(*) FROM "crypto_bitcoin".transactions').fetchone()[0]
        return blocks, txs
    finally:
        con.close()


def test_blocks_are_appended_as_their_time_passes_and_never_twice(tmp_path):
    folder = live_chain.chain_dir(tmp_path / "live", dt.date(2024, 3, 1), days=1, tx_per_day=300, seed=7)
    assert live_chain.chain_dir(tmp_path / "live", dt.date(2024, 3, 1), days=1, tx_per_day=300, seed=7) == folder
    blocks, transactions = live_chain.read_chain(folder)
    warehouse = str(tmp_path / "warehouse.duckdb")
    six, noon = dt.datetime(2024, 3, 1, 6, tzinfo=UTC), dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
    loaded, after = live_chain.append_due(blocks, transactions, warehouse, None, six)
    due_at_six = [w for w, _ in blocks if w <= six]
    assert loaded == len(due_at_six) > 0 and after == due_at_six[-1]
    more, after = live_chain.append_due(blocks, transactions, warehouse, after, noon)
    due_at_noon = [w for w, _ in blocks if w <= noon]
    assert loaded + more == len(due_at_noon) == count(warehouse)[0]
    assert count(warehouse)[1] == sum(len(transactions[n]) for n in range(
        min(transactions), min(transactions) + len(due_at_noon)))
    again, _ = live_chain.append_due(blocks, transactions, warehouse, None, noon)  # a restart
    assert again == len(due_at_noon) and count(warehouse)[0] == len(due_at_noon)
    assert live_chain.append_due(blocks, transactions, warehouse, after, noon) == (0, after)

    target = dataclasses.replace(local.target(), bucket=str(tmp_path / "bucket"), warehouse=warehouse)
    result = merge.merge_pool_activity(target, "2024-03-01T12")
    by_hour = {h["hour"]: h["blocks"] for h in result["hours"]}
    assert by_hour["2024-03-01T11"] == sum(1 for w, _ in blocks if w.hour == 11 and w.date() == noon.date())
    assert by_hour["2024-03-01T12"] == sum(1 for w, _ in blocks if w == noon)  # nothing after noon yet
