"""Bad input, each made from a copy of the real generated NDJSON exports with one defect: each
gets a clear error naming the file and the problem (nothing of that file is loaded), or a
quarantine with counts — never a silent drop. What the loader cannot see (rows cut at a line
boundary, a day never exported) is caught downstream, by the extract and its quality gate."""
from __future__ import annotations

import gzip
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pool_classifier import datasets
from pool_classifier.io import warehouse
from pool_classifier.io.warehouse import MAX_MONEY_SATOSHI, WarehouseLoadError
from pool_classifier.steps import extract_day as extract
from pool_classifier.steps.check_extract import check_extract
from pool_classifier.steps.extract_day import NoBlocksError
from pool_classifier.steps.quality_gate import QualityGateError
from tests.conftest import PROJECT_ROOT
from tests.reliability.scenarios import DAY_LIST

DAY = DAY_LIST[0]


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.fixture
def exports(chain_dir, tmp_path) -> Path:
    """A private copy of one generated day: blocks.ndjson.gz and transactions.ndjson.gz."""
    folder = tmp_path / "exports"
    shutil.copytree(chain_dir / DAY, folder)
    return folder


@pytest.fixture
def wh(tmp_path) -> Path:
    return tmp_path / "warehouse" / "bigquery-public-data.duckdb"


def ordinary(rows: list[dict]) -> dict:
    """The first transaction that is not a coinbase (it has inputs and outputs)."""
    return next(r for r in rows if not r["is_coinbase"] and r["inputs"] and r["outputs"])


def table_rows(wh: Path, table: str) -> int:
    con = warehouse.connect(wh, read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM crypto_bitcoin.{table}").fetchone()[0]
    finally:
        con.close()


def refused(exports: Path, wh: Path, table: str, pattern: str) -> str:
    """The load fails naming the file and the problem, and no row of that file is loaded."""
    with pytest.raises(WarehouseLoadError) as info:
        warehouse.load_exports(exports, wh)
    message = str(info.value)
    assert message.startswith(str(exports / f"{table}.ndjson.gz") + ": "), message
    assert re_search(pattern, message), message
    assert table_rows(wh, table) == 0
    return message


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_the_untouched_day_loads(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    assert warehouse.load_exports(exports, wh) == {"blocks": len(read_rows(exports / "blocks.ndjson.gz")),
                                                   "transactions": len(rows)}
    assert not warehouse.quarantine_dir(wh).exists()


# ---------------------------------------------------------------- null fields


def test_a_null_required_field_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    ordinary(rows)["block_number"] = None
    write_rows(exports / "transactions.ndjson.gz", rows)
    refused(exports, wh, "transactions",
            r"REQUIRED fields of transactions are null \(column: rows\): \{'block_number': 1\}")


def test_a_null_value_of_an_output_is_refused_naming_the_transaction(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    tx = ordinary(rows)
    tx["outputs"][0]["value"] = None
    write_rows(exports / "transactions.ndjson.gz", rows)
    refused(exports, wh, "transactions",
            rf"impossible transactions values: outputs.value: 1 null \(rows with hash {tx['hash']}\)")


def test_a_null_nested_required_field_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    ordinary(rows)["inputs"][0]["index"] = None
    write_rows(exports / "transactions.ndjson.gz", rows)
    refused(exports, wh, "transactions", r"\{'inputs.index': 1\}")


# ---------------------------------------------------------------- values


def test_a_negative_value_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    tx = ordinary(rows)
    tx["inputs"][0]["value"] = -1
    write_rows(exports / "transactions.ndjson.gz", rows)
    refused(exports, wh, "transactions",
            rf"inputs.value: 1 negative \(rows with hash {tx['hash']}\)")


def test_a_value_above_the_money_supply_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    tx = ordinary(rows)
    tx["outputs"][0]["value"] = MAX_MONEY_SATOSHI + 1          # 21M BTC + 1 satoshi
    tx["output_value"] = 10 ** 17
    write_rows(exports / "transactions.ndjson.gz", rows)
    message = refused(exports, wh, "transactions", r"impossible transactions values")
    assert f"output_value: 1 above {MAX_MONEY_SATOSHI} satoshi (21M BTC) (rows with hash {tx['hash']})" in message
    assert f"outputs.value: 1 above {MAX_MONEY_SATOSHI} satoshi (21M BTC) (rows with hash {tx['hash']})" in message


# ---------------------------------------------------------------- duplicates


def test_an_identical_duplicated_transaction_is_quarantined_with_counts(exports, wh, caplog):
    rows = read_rows(exports / "transactions.ndjson.gz")
    tx = ordinary(rows)
    write_rows(exports / "transactions.ndjson.gz", rows + [tx, tx])
    with caplog.at_level(logging.WARNING, logger=warehouse.__name__):
        loaded = warehouse.load_exports(exports, wh)
    assert loaded["transactions"] == len(rows)
    quarantine = warehouse.quarantine_dir(wh)
    summary = json.loads((quarantine / "transactions.ndjson.gz.summary.json").read_text())
    assert summary == {
        "file": str(exports / "transactions.ndjson.gz"),
        "table": "transactions",
        "rows_in_file": len(rows) + 2,
        "rows_loaded": len(rows),
        "duplicate_copies_quarantined": 2,
        "keys_repeated": 1,
        "key_columns": ["hash", "block_hash"],
        "examples": [tx["hash"]],
        "copies_file": str(quarantine / "transactions.ndjson.gz.duplicates.json"),
    }
    copies = duckdb.execute(
        f"SELECT hash FROM read_json('{quarantine / 'transactions.ndjson.gz.duplicates.json'}')"
    ).fetchall()
    assert copies == [(tx["hash"],), (tx["hash"],)]
    con = warehouse.connect(wh, read_only=True)
    assert con.execute("SELECT count(*) FROM crypto_bitcoin.transactions WHERE hash = ?", [tx["hash"]]).fetchone() == (1,)
    con.close()
    assert any("2 identical duplicate transactions rows quarantined" in r.getMessage() for r in caplog.records)


def test_a_duplicated_transaction_with_other_contents_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    tx = ordinary(rows)
    changed = json.loads(json.dumps(tx))
    changed["outputs"][0]["value"] = int(changed["outputs"][0]["value"]) + 1
    write_rows(exports / "transactions.ndjson.gz", rows + [changed])
    refused(exports, wh, "transactions",
            rf"1 transactions keys \('hash', 'block_hash'\) appear more than once with different contents "
            rf"\(e.g. {tx['hash']}\)")


def test_the_same_transactions_in_two_files_of_one_load_are_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    write_rows(exports / "transactions-000000000001.ndjson.gz", rows[:10])
    with pytest.raises(WarehouseLoadError) as info:
        warehouse.load_exports(exports, wh)
    assert str(info.value).startswith(str(exports / "transactions.ndjson.gz") + ": 10 transactions rows are also in "
                                      + str(exports / "transactions-000000000001.ndjson.gz"))
    assert table_rows(wh, "transactions") == 10  # the first file only: the second is refused whole


# ---------------------------------------------------------------- columns


def test_an_extra_column_is_refused(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    for r in rows:
        r["witness_size"] = 0
    ordinary(rows)["outputs"][0]["script_type"] = "p2wpkh"
    write_rows(exports / "transactions.ndjson.gz", rows)
    refused(exports, wh, "transactions",
            rf"not the crypto_bitcoin.transactions schema \(include/schemas/crypto_bitcoin.transactions.json\): "
            rf"unexpected column\(s\) witness_size \(in {len(rows)} rows\); "
            r"unexpected column\(s\) outputs.script_type \(in 1 rows\)$")


def test_a_missing_column_is_refused(exports, wh):
    rows = read_rows(exports / "blocks.ndjson.gz")
    for r in rows:
        del r["transaction_count"]
    write_rows(exports / "blocks.ndjson.gz", rows)
    refused(exports, wh, "blocks", r"column\(s\) transaction_count missing from every row$")


def test_a_required_column_missing_from_some_rows_is_refused(exports, wh):
    rows = read_rows(exports / "blocks.ndjson.gz")
    del rows[3]["timestamp"]
    write_rows(exports / "blocks.ndjson.gz", rows)
    refused(exports, wh, "blocks", r"REQUIRED fields of blocks are null \(column: rows\): \{'timestamp': 1\}")


# ---------------------------------------------------------------- truncated, corrupt, empty


def test_a_truncated_gzip_file_is_refused(exports, wh):
    raw = (exports / "transactions.ndjson.gz").read_bytes()
    (exports / "transactions.ndjson.gz").write_bytes(raw[: len(raw) * 2 // 3])
    refused(exports, wh, "transactions", r"truncated or corrupt gzip file")


def test_an_ndjson_file_cut_in_the_middle_of_a_line_is_refused(exports, wh):
    text = gzip.decompress((exports / "blocks.ndjson.gz").read_bytes())
    (exports / "blocks.ndjson.gz").unlink()
    cut = exports / "blocks.ndjson"
    cut.write_bytes(text[: len(text) // 2])
    with pytest.raises(WarehouseLoadError,
                       match=rf"^{cut}: not valid newline-delimited JSON at line \d+ \(a truncated or corrupt file\)"):
        warehouse.load_exports(exports, wh)


def test_a_corrupt_gzip_file_is_refused(exports, wh):
    raw = bytearray((exports / "transactions.ndjson.gz").read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0xFF
    (exports / "transactions.ndjson.gz").write_bytes(bytes(raw))
    refused(exports, wh, "transactions", r"(truncated or corrupt gzip file|not valid newline-delimited JSON)")


def test_a_file_that_is_not_json_is_refused(exports, wh):
    (exports / "transactions.ndjson.gz").unlink()
    junk = exports / "transactions.json"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(WarehouseLoadError, match=rf"^{junk}: not valid newline-delimited JSON at line \d+"):
        warehouse.load_exports(exports, wh)


def test_an_empty_file_is_refused(exports, wh):
    write_rows(exports / "blocks.ndjson.gz", [])
    refused(exports, wh, "blocks", r"no rows \(an empty blocks export\)")


def test_a_value_of_the_wrong_type_is_refused(exports, wh):
    rows = read_rows(exports / "blocks.ndjson.gz")
    rows[0]["number"] = "eight hundred"
    write_rows(exports / "blocks.ndjson.gz", rows)
    refused(exports, wh, "blocks", r"not a valid blocks export: .*eight hundred")


def test_the_command_line_says_why_and_exits_non_zero(exports, wh):
    rows = read_rows(exports / "transactions.ndjson.gz")
    ordinary(rows)["outputs"][0]["value"] = -3
    write_rows(exports / "transactions.ndjson.gz", rows)
    run = subprocess.run(
        [sys.executable, "-m", "pool_classifier.io.warehouse", "load", str(exports), "--warehouse", str(wh)],
        capture_output=True, text=True, env={"PYTHONPATH": str(PROJECT_ROOT / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 2
    assert run.stderr.startswith(f"load refused: {exports / 'transactions.ndjson.gz'}: impossible transactions values")


# ---------------------------------------------------------------- what only the pipeline can see


def test_a_missing_day_is_refused_by_the_extract_naming_the_day(chain_dir, tmp_path):
    """Days 1, 2 and 4 exported, day 3 not: extract refuses day 3 and writes nothing. (Day 4's
    features are then refused too, naming day 3: see the shuffled backfill test.)"""
    exports = tmp_path / "exports"
    for ds in (DAY_LIST[0], DAY_LIST[1], DAY_LIST[3]):
        shutil.copytree(chain_dir / ds, exports / ds)
    target = _local_target(tmp_path)
    warehouse.load_exports(exports, target.warehouse)
    with pytest.raises(NoBlocksError, match=rf"^No blocks on {DAY_LIST[2]} in `bigquery-public-data.crypto_bitcoin.blocks`"):
        extract.extract_day(target, DAY_LIST[2])
    assert not any(Path(datasets.extract_dir(target, t, DAY_LIST[2])).exists() for t in datasets.EXTRACT_TABLES)


def test_rows_cut_at_a_line_boundary_load_but_fail_the_extract_gate(exports, tmp_path):
    """A file cut between two lines is valid NDJSON: the loader cannot tell. The blocks'
    transaction_count can: the extract gate names the shortfall."""
    rows = read_rows(exports / "transactions.ndjson.gz")
    kept = rows[: len(rows) - 25]
    write_rows(exports / "transactions.ndjson.gz", kept)
    target = _local_target(tmp_path)
    warehouse.load_exports(exports, target.warehouse)
    extract.extract_day(target, DAY)
    with pytest.raises(QualityGateError) as info:
        check_extract(target, DAY)
    assert (f"transaction_count: expected {len(rows)} transactions (sum of blocks.transaction_count), "
            f"observed {len(kept)}") in str(info.value)


def _local_target(tmp_path):
    import dataclasses

    from pool_classifier import targets

    return dataclasses.replace(
        targets.local.target(), bucket=str(tmp_path / "bucket"),
        warehouse=str(tmp_path / "warehouse" / "bigquery-public-data.duckdb"),
    )
