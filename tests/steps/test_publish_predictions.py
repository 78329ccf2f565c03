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


def _scores_with_contributions(target, ds: str) -> None:
    """A day of scores in the real job's shape (tests/api/real_schema.json): with the explanation."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.conftest import PROJECT_ROOT

    real = json.loads((PROJECT_ROOT / "tests/api/real_schema.json").read_text())["predictions/address_scores"]
    item = pa.struct([("feature", pa.string()), ("value", pa.float64()), ("contribution", pa.float64())])
    table = pa.table({
        "address": ["b0", "b1"], "score": [0.9, 0.1], "label": [True, False], "known_pool": [True, False],
        "model_version": ["hgb-x"] * 2, "logical_date": pa.array([dt.date.fromisoformat(ds)] * 2, pa.date32()),
        "raw_output": [2.0, -2.0], "contribution_bias": [-1.0, -1.0],
        "top_contributions": pa.array([[{"feature": "has_spent", "value": 1.0, "contribution": 2.5}],
                                       [{"feature": "has_spent", "value": 0.0, "contribution": -0.5}]],
                                      pa.list_(pa.field("element", item))),
        "contribution_rest": [0.5, -0.5],
    })
    assert [[f.name, str(f.type)] for f in table.schema] == real
    with atomic.write_dir(datasets.predictions_dir(target, ds)) as folder:
        pq.write_table(table, folder / "part-00000.parquet")


def test_contributions_are_published_as_a_list_of_records_and_days_before_them_as_null(local_target):
    # A table created before the contributions existed, and a day scored then.
    _old_table(local_target).close()
    write_day(local_target, "2024-03-01", 2, 1)
    publish.publish_day(local_target, "2024-03-01")
    _scores_with_contributions(local_target, "2024-03-02")
    blocks = pd.DataFrame({"block_hash": ["h"], "block_number": [9],
                                     "block_timestamp": [pd.Timestamp("2024-03-02 10:00", tz="UTC")],
                                     "pool_id": [1], "pool_name": ["P"], "matched_by": ["tag"]})
    with atomic.write_dir(datasets.features_dir(local_target, "block_pools", "2024-03-02")) as folder:
        blocks.to_parquet(folder / "part-00000.parquet", index=False)
    assert publish.publish_day(local_target, "2024-03-02")["rows"] == {"address_scores": 2, "block_pools": 1}

    with duckdb.connect(publish.published_db(local_target), read_only=True) as con:
        rows = con.execute("""
            SELECT address, raw_output, contribution_bias + list_sum([c.contribution FOR c IN top_contributions])
                                        + contribution_rest, top_contributions[1].feature
            FROM address_scores ORDER BY address""").fetchall()
        columns = [r[0] for r in con.execute("DESCRIBE address_scores").fetchall()]
    assert columns == [f["name"] for f in publish.json.loads(
        (publish.SCHEMA_DIR / "pool_classifier.address_scores.json").read_text())]
    assert rows == [("a0", None, None, None), ("a1", None, None, None),
                    ("b0", 2.0, 2.0, "has_spent"), ("b1", -2.0, -2.0, "has_spent")]


def _old_table(target):
    """The address_scores table as publish_day created it before the contributions."""
    from pathlib import Path

    Path(publish.published_db(target)).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(publish.published_db(target))
    con.execute("CREATE TABLE address_scores (address VARCHAR, score DOUBLE, label BOOLEAN, known_pool BOOLEAN, "
                "model_version VARCHAR, logical_date DATE)")
    return con
