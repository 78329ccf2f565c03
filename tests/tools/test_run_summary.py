"""tools/run_summary.py: the labelled addresses per pool and per kind, read back from a real
address_labels folder, and the training lines (target, kinds, label rules) from a metadata record."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pool_classifier.io import atomic
from tools import run_summary


def _labels(folder, rows, kinds=True):
    columns = ["address", "pool_id", "pool_name", "label_source"] + (["label_kind"] if kinds else [])
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    with atomic.write_dir(folder) as tmp:
        pq.write_table(table, tmp / "part-00000.parquet")


ROWS = (
    [(f"w{i}", 111, "Foundry USA", "coinbase", "pool_wallet") for i in range(5)]
    + [("l1", 111, "Foundry USA", "pool_list", "pool_wallet")]
    + [(f"m{i}", 142, "OCEAN", "coinbase", "coinbase_miner") for i in range(3)]
    + [("o1", 142, "OCEAN", "pool_list", "pool_wallet")]
    + [(f"a{i}", 44, "AntPool", "coinbase", "pool_wallet") for i in range(2)]
    + [("x1", 7, "Listed Only", "pool_list", "pool_wallet"), ("x2", 7, "Listed Only", "pool_list", "pool_wallet")]
)


def test_labels_are_counted_per_pool_kind_and_source(tmp_path):
    folder = str(tmp_path / "address_labels" / "dt=2024-03-02")
    _labels(folder, ROWS)
    by_pool = run_summary.labels_by_pool_and_kind(folder)
    assert list(by_pool) == ["Foundry USA", "OCEAN", "AntPool", "Listed Only"]  # most labels first
    assert by_pool["Foundry USA"] == {"pool_wallet": {"coinbase": 5, "pool_list": 1}}
    assert by_pool["OCEAN"] == {"coinbase_miner": {"coinbase": 3}, "pool_wallet": {"pool_list": 1}}
    totals = run_summary.kind_totals(by_pool)
    assert totals == {"coinbase_miner": {"coinbase": 3, "pool_list": 0, "pools": 1},
                      "pool_wallet": {"coinbase": 7, "pool_list": 4, "pools": 2}}
    text = "\n".join(run_summary.render_labels(by_pool, totals))
    assert "(1 other pools: 2 addresses from the pools list only)" in text
    ocean = next(line for line in text.splitlines() if line.strip().startswith("OCEAN"))
    assert ocean.split() == ["OCEAN", "3", "+", "0", "0", "+", "1"]
    assert "pools per kind: coinbase_miner 1, pool_wallet 2" in text


def test_labels_written_before_the_kinds_count_as_one_kind(tmp_path):
    folder = str(tmp_path / "address_labels" / "dt=2024-03-02")
    _labels(folder, [r[:4] for r in ROWS], kinds=False)
    assert run_summary.kind_totals(run_summary.labels_by_pool_and_kind(folder))["unkinded"]["coinbase"] == 10


def test_training_lines_show_the_target_the_kinds_and_the_label_rules():
    metrics = {"pr_auc": 0.9, "precision": 0.8, "recall": 0.7, "recall_at_95_precision": 0.5, "rows": 100,
               "positives": 10}
    summary = {
        "version": "rf-2024-03-02", "champion": "rf-2024-03-02", "promoted": True, "reason": "first",
        "champion_decision": "score >= 0.8020 (sigmoid): precision 0.960, recall 0.810",
        "split": {"key": "first_seen_time", "cutoff_utc": "2024-03-02T00:00:00+00:00", "train_rows": 300,
                  "train_positives": 30, "eval_rows": 100, "eval_positives": 10},
        "candidates": {"rf": metrics}, "challenger_vs_champion": None, "per_pool_recall": {},
        "positives_with_features": {"Foundry USA": 40}, "negatives_sampled": 360, "report": "/x/report.md",
        "target": {"positive_kinds": ["pool_wallet"], "rows_per_kind": {"coinbase_miner": 12, "pool_wallet": 40},
                   "left_out": 12},
        "per_kind": {"coinbase_miner": {"target": False, "scope": "all rows", "rows": 12, "predicted_pool": 3,
                                        "share_predicted": 0.25}},
        "label_rules": {"fixed": {"rule": "fixed (positive kinds: pool_wallet)", "positives": 40,
                                  "metrics": metrics, "on_fixed_target": None},
                        "original": {"rule": "original (tags only)", "positives": 52, "metrics": metrics,
                                     "on_fixed_target": {**metrics, "pr_auc": 0.5}}},
    }
    text = "\n".join(run_summary.render_training(summary))
    assert "training target       pool_wallet; training rows per kind: coinbase_miner 12, pool_wallet 40" in text
    assert "coinbase_miner       3 of 12 all rows (0.250)" in text
    assert "champion decision     score >= 0.8020 (sigmoid): precision 0.960, recall 0.810" in text
    assert "original (tags only): 52 positives" in text and "PR-AUC 0.5000" in text


def test_the_blocks_per_match_and_the_pools_list_of_the_day(tmp_path):
    folder = tmp_path / "block_pools"
    table = pa.table({"block_hash": ["h1", "h2", "h3", "h4"], "matched_by": ["tag", "address", "tag", "none"],
                      "pools_sha256": ["ab" * 32] * 4})
    with atomic.write_dir(folder) as tmp:
        pq.write_table(table, tmp / "part-00000.parquet")
    assert run_summary.attribution_summary(str(folder)) == {"blocks_matched_by": "address 1, none 1, tag 2",
                                                            "pools_sha256": "ab" * 32}

    old = tmp_path / "old_block_pools"
    with atomic.write_dir(old) as tmp:
        pq.write_table(table.drop(["pools_sha256"]), tmp / "part-00000.parquet")
    assert run_summary.attribution_summary(str(old))["pools_sha256"].startswith("(not recorded")
