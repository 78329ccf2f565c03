"""The local warehouse loader and the atomic publish of a day's folder."""
from __future__ import annotations

import gzip
import json
import shutil

import pytest

from pool_classifier.io import warehouse
from tests.conftest import REAL_DATA


def test_real_exports_load_with_bigquery_types(real_warehouse):
    con = warehouse.connect(real_warehouse, read_only=True)
    try:
        n_blocks, n_tx = con.execute(
            "SELECT (SELECT count(*) FROM crypto_bitcoin.blocks), "
            "(SELECT count(*) FROM crypto_bitcoin.transactions)"
        ).fetchone()
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'transactions'"
        ).fetchall())
        genesis = con.execute(
            "SELECT outputs[1].value, block_timestamp FROM crypto_bitcoin.transactions "
            "WHERE block_number = 0"
        ).fetchone()
    finally:
        con.close()
    assert (n_blocks, n_tx) == (4313 + 41, 4371 + 41 + 420)
    assert types["output_value"] == "DECIMAL(38,9)"
    assert types["block_timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["inputs"].startswith("STRUCT(")
    assert int(genesis[0]) == 5_000_000_000
    assert genesis[1].isoformat() == "2009-01-03T18:15:05+00:00"


def test_loading_twice_does_not_double(tmp_path):
    path = tmp_path / "wh.duckdb"
    source = REAL_DATA / "tagged_blocks"
    first = warehouse.load_exports(source, path)
    second = warehouse.load_exports(source, path)
    assert first == second == {"blocks": 41, "transactions": 41}
    con = warehouse.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM crypto_bitcoin.blocks").fetchone()[0] == 41
    con.close()


def test_uncompressed_exports_load(tmp_path):
    plain = tmp_path / "exports" / "blocks-000000000000.json"
    plain.parent.mkdir()
    with gzip.open(REAL_DATA / "tagged_blocks" / "blocks.ndjson.gz", "rb") as f:
        plain.write_bytes(f.read())
    assert warehouse.load_exports(plain.parent, tmp_path / "wh.duckdb")["blocks"] == 41


def test_a_file_without_a_table_name_is_refused(tmp_path):
    odd = tmp_path / "exports" / "something.json.gz"
    odd.parent.mkdir()
    shutil.copy(REAL_DATA / "tagged_blocks" / "blocks.ndjson.gz", odd)
    with pytest.raises(warehouse.WarehouseLoadError, match="something.json.gz"):
        warehouse.load_exports(odd.parent, tmp_path / "wh.duckdb")


def test_a_row_missing_a_required_field_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "exports" / "blocks.json"
    bad.parent.mkdir()
    with gzip.open(REAL_DATA / "tagged_blocks" / "blocks.ndjson.gz", "rt") as f:
        rows = [json.loads(line) for line in f][:3]
    del rows[1]["hash"]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(warehouse.WarehouseLoadError, match=r"blocks.json.*hash"):
        warehouse.load_exports(bad.parent, tmp_path / "wh.duckdb")
