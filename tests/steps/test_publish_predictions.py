"""Local publishing: the day's rows replace the day, in the BigQuery tables' columns."""
import datetime as dt

import duckdb
import pandas as pd
import pytest

from pool_classifier import datasets
from pool_classifier.io import atomic
from pool_classifier.steps import publish_predictions as publish


def write_day(target, ds, n_scores, n_blocks):
    day = dt.date.fromisoformat(ds)
    scores = pd.DataFrame({
        "address": [f"a{i}" for i in range(n_scores)],
        "score": [i / max(n_scores, 1) for i in range(n_scores)],
        "label": [i % 2 == 0 for i in range(n_scores)],
        "known_pool": [False] * n_scores,
        "model_version": ["rf-x"] * n_scores,
        "logical_date": [day] * n_scores,
    })
    blocks = pd.DataFrame({
        "block_hash": [f"h{i}" for i in range(n_blocks)],
        "block_number": list(range(n_blocks)),
        # 23:59 UTC: in the day, whatever the machine's zone
        "block_timestamp": [pd.Timestamp(f"{ds} 23:59:00", tz="UTC")] * n_blocks,
        "pool_id": [1] * n_blocks,
        "pool_name": ["P"] * n_blocks,
        "matched_by": ["tag"] * n_blocks,
    })
    for frame, location in ((scores, datasets.predictions_dir(target, ds)),
                            (blocks, datasets.features_dir(target, "block_pools", ds))):
        with atomic.write_dir(location) as folder:
            frame.to_parquet(folder / "part-00000.parquet", index=False)


def table_rows(target, table):
    with duckdb.connect(publish.published_db(target), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_publishing_a_day_twice_replaces_it(local_target):
    write_day(local_target, "2024-03-01", 5, 3)
    write_day(local_target, "2024-03-02", 4, 2)
    first = publish.publish_day(local_target, "2024-03-01")
    assert first["rows"] == {"address_scores": 5, "block_pools": 3}
    publish.publish_day(local_target, "2024-03-02")
    before = {t: table_rows(local_target, t) for t in publish.TABLES}
    assert publish.publish_day(local_target, "2024-03-01") == first
    assert {t: table_rows(local_target, t) for t in publish.TABLES} == before
    assert len(before["address_scores"]) == 9 and len(before["block_pools"]) == 5
    # A re-run with fewer rows leaves no stale row of the old run.
    write_day(local_target, "2024-03-01", 2, 1)
    assert publish.publish_day(local_target, "2024-03-01")["rows"] == {"address_scores": 2, "block_pools": 1}
    assert len(table_rows(local_target, "address_scores")) == 6


def test_a_missing_day_names_the_folder(local_target):
    with pytest.raises(FileNotFoundError, match=r"publish address_scores 2024-03-05: .*dt=2024-03-05 does not exist"):
        publish.publish_day(local_target, "2024-03-05")
