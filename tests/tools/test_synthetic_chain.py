"""The synthetic chain is deterministic, has the exact shape of the BigQuery exports, and is a valid chain."""
from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import synthetic_chain

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "include" / "schemas"
POOLS = json.loads((ROOT / "include" / "pools" / "pools-v2.json").read_text(encoding="utf-8"))

# Two small days across the 2024 halving: the subsidy must change with the date.
START = datetime.date(2024, 4, 19)
DAYS = 2
TX_PER_DAY = 1500

TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2}) UTC$")
MONTH_RE = re.compile(r"^\d{4}-\d{2}-01$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
HEX_RE = re.compile(r"^(?:[0-9a-f]{2})*$")


def _sha256_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain_a")
    summary = synthetic_chain.generate(out, START, DAYS, TX_PER_DAY, seed=11)
    days = [START + datetime.timedelta(days=d) for d in range(DAYS)]
    blocks = {d: _rows(out / d.isoformat() / "blocks.ndjson.gz") for d in days}
    txs = {d: _rows(out / d.isoformat() / "transactions.ndjson.gz") for d in days}
    with open(out / "ground_truth" / "address_roles.csv", newline="", encoding="utf-8") as f:
        truth_rows = list(csv.reader(f))
    return {"out": out, "summary": summary, "days": days, "blocks": blocks, "txs": txs,
            "truth_rows": truth_rows, "truth": {r[0]: (r[1], r[2]) for r in truth_rows[1:]}}


def _all_blocks(chain):
    return [b for d in chain["days"] for b in chain["blocks"][d]]


def _all_txs(chain):
    return [t for d in chain["days"] for t in chain["txs"][d]]


# ------------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_files(chain, tmp_path):
    # Another process with another string-hash seed: set iteration order must not leak in.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT / "plugins")}
    subprocess.run([sys.executable, "-m", "tools.synthetic_chain", "--out", str(tmp_path / "b"),
                    "--start", START.isoformat(), "--days", str(DAYS), "--tx-per-day", str(TX_PER_DAY),
                    "--seed", "11"], check=True, env=env, capture_output=True)
    first, second = _sha256_tree(chain["out"]), _sha256_tree(tmp_path / "b")
    assert len(first) == 2 * DAYS + 1
    assert first == second


def test_different_seed_gives_different_files(chain, tmp_path):
    synthetic_chain.generate(tmp_path / "c", START, DAYS, TX_PER_DAY, seed=12)
    first, other = _sha256_tree(chain["out"]), _sha256_tree(tmp_path / "c")
    assert first.keys() == other.keys()
    assert all(first[k] != other[k] for k in first)


def test_no_temporary_files_left(chain):
    assert not [p for p in chain["out"].rglob("*") if ".tmp" in p.name]


# ------------------------------------------------------------------ shape
def _check_value(field: dict, value, where: str):
    mode = field.get("mode", "NULLABLE").upper()
    kind = field["type"].upper()
    if mode == "REPEATED":
        assert isinstance(value, list), where
        for k, item in enumerate(value):
            _check_scalar_or_record(field, kind, item, f"{where}[{k}]")
        return
    if value is None:
        assert mode != "REQUIRED", f"{where}: REQUIRED field is null"
        return
    _check_scalar_or_record(field, kind, value, where)


def _check_scalar_or_record(field: dict, kind: str, value, where: str):
    if kind in ("RECORD", "STRUCT"):
        assert isinstance(value, dict), where
        assert list(value) == [f["name"] for f in field["fields"]], where
        for sub in field["fields"]:
            _check_value(sub, value[sub["name"]], f"{where}.{sub['name']}")
    elif kind in ("INT64", "INTEGER", "NUMERIC"):
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    elif kind == "STRING":
        assert isinstance(value, str), where
    elif kind == "TIMESTAMP":
        assert isinstance(value, str) and TS_RE.match(value), where
    elif kind == "DATE":
        assert isinstance(value, str) and MONTH_RE.match(value), where
    else:
        raise AssertionError(f"{where}: unexpected schema type {kind}")


@pytest.mark.parametrize("table", ["blocks", "transactions"])
def test_rows_have_exactly_the_schema_fields_and_types(chain, table):
    schema = json.loads((SCHEMA_DIR / f"crypto_bitcoin.{table}.json").read_text())
    names = {f["name"] for f in schema}
    rows = _all_blocks(chain) if table == "blocks" else _all_txs(chain)
    assert rows
    for row in rows:
        assert set(row) == names
        for field in schema:
            _check_value(field, row[field["name"]], f"{table}.{field['name']}")


def test_hashes_hex_and_months(chain):
    for b in _all_blocks(chain):
        assert HEX64_RE.match(b["hash"]) and b["hash"].startswith("0000000000")
        assert HEX64_RE.match(b["merkle_root"])
        assert HEX_RE.match(b["coinbase_param"])
        assert b["timestamp_month"] == b["timestamp"][:8] + "01"
    for t in _all_txs(chain):
        assert HEX64_RE.match(t["hash"])
        assert t["block_timestamp_month"] == t["block_timestamp"][:8] + "01"
        for i in t["inputs"]:
            assert HEX64_RE.match(i["spent_transaction_hash"]) and HEX_RE.match(i["script_hex"])
        for o in t["outputs"]:
            assert HEX_RE.match(o["script_hex"])


# ------------------------------------------------------------------ blocks
def test_blocks_contiguous_within_their_day_and_counted(chain):
    numbers = [b["number"] for b in _all_blocks(chain)]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    by_hash = {}
    for d in chain["days"]:
        assert 130 <= len(chain["blocks"][d]) <= 160
        assert len(chain["txs"][d]) == TX_PER_DAY
        for b in chain["blocks"][d]:
            assert b["timestamp"].startswith(d.isoformat() + " ")
            by_hash[b["hash"]] = b
    per_block: dict[str, list] = {}
    for t in _all_txs(chain):
        b = by_hash[t["block_hash"]]
        assert (t["block_number"], t["block_timestamp"]) == (b["number"], b["timestamp"])
        per_block.setdefault(t["block_hash"], []).append(t)
    for h, b in by_hash.items():
        txs = per_block[h]
        assert b["transaction_count"] == len(txs)
        assert txs[0]["is_coinbase"] and not any(t["is_coinbase"] for t in txs[1:])
        assert b["weight"] == 3 * b["stripped_size"] + b["size"]


def test_coinbase_rules_and_subsidy_by_date(chain):
    halving = datetime.date(2024, 4, 20)
    by_block: dict[str, list] = {}
    for t in _all_txs(chain):
        by_block.setdefault(t["block_hash"], []).append(t)
    seen_subsidies = set()
    for b in _all_blocks(chain):
        txs = by_block[b["hash"]]
        cb = txs[0]
        assert cb["inputs"] == [] and cb["input_count"] == 0 and cb["input_value"] == 0 and cb["fee"] == 0
        day = datetime.date.fromisoformat(b["timestamp"][:10])
        subsidy = 312_500_000 if day >= halving else 625_000_000
        assert cb["output_value"] == subsidy + sum(t["fee"] for t in txs[1:])
        assert synthetic_chain.subsidy(b["number"]) == subsidy       # height and date agree
        seen_subsidies.add(subsidy)
        # BIP34: the script starts with the block height.
        assert bytes.fromhex(b["coinbase_param"]).startswith(synthetic_chain.bip34_height_push(b["number"]))
    assert seen_subsidies == {312_500_000, 625_000_000}
    first_after = next(b for b in _all_blocks(chain) if b["timestamp"] >= "2024-04-20")
    assert first_after["number"] == 840_000


def test_counts_values_and_fees_consistent(chain):
    for t in _all_txs(chain):
        assert t["input_count"] == len(t["inputs"]) and t["output_count"] == len(t["outputs"])
        assert [i["index"] for i in t["inputs"]] == list(range(len(t["inputs"])))
        assert [o["index"] for o in t["outputs"]] == list(range(len(t["outputs"])))
        assert t["input_value"] == sum(i["value"] for i in t["inputs"])
        assert t["output_value"] == sum(o["value"] for o in t["outputs"])
        assert t["size"] >= t["virtual_size"] > 0
        if not t["is_coinbase"]:
            assert t["inputs"] and t["input_value"] == t["output_value"] + t["fee"]
            assert 0 < t["fee"] < 0.01 * 1e8
        for o in t["outputs"]:
            assert o["value"] >= 0
            assert len(o["addresses"]) == 1 or o["type"] == "multisig"
        for i in t["inputs"]:
            assert len(i["addresses"]) == 1 and i["type"] in (
                "pubkeyhash", "scripthash", "witness_v0_keyhash")


def test_every_input_spends_an_existing_unspent_output_once(chain):
    outputs = {}           # (tx hash, index) -> (output, block number, is_coinbase)
    tx_hashes = {t["hash"] for t in _all_txs(chain)}
    spent = set()
    n_in_chain = n_prehistory = n_cross_day = 0
    day_of_tx = {t["hash"]: t["block_timestamp"][:10] for t in _all_txs(chain)}
    for t in _all_txs(chain):    # files are in chain order
        for i in t["inputs"]:
            key = (i["spent_transaction_hash"], i["spent_output_index"])
            assert key not in spent, f"double spend of {key}"
            spent.add(key)
            if key[0] in tx_hashes:
                assert key in outputs, f"{t['hash']} spends {key}, not created earlier"
                out, height, is_cb = outputs[key]
                for field in ("value", "addresses", "type", "required_signatures"):
                    assert i[field] == out[field]
                if is_cb:
                    assert t["block_number"] >= height + 100, "immature coinbase spent"
                n_in_chain += 1
                n_cross_day += day_of_tx[key[0]] != t["block_timestamp"][:10]
            else:
                n_prehistory += 1
        for o in t["outputs"]:
            outputs[(t["hash"], o["index"])] = (o, t["block_number"], t["is_coinbase"])
    assert n_in_chain and n_prehistory and n_cross_day   # day 2 spends day-1 outputs


# ------------------------------------------------------------------ scripts and addresses
def _check_script(o: dict):
    addr, typ = o["addresses"][0], o["type"]
    if typ == "pubkeyhash":
        payload = synthetic_chain.b58check_decode(addr)
        assert payload[0] == 0 and o["script_hex"] == "76a914" + payload[1:].hex() + "88ac"
        assert addr.startswith("1")
    elif typ == "scripthash":
        payload = synthetic_chain.b58check_decode(addr)
        assert payload[0] == 5 and o["script_hex"] == "a914" + payload[1:].hex() + "87"
        assert addr.startswith("3")
    elif typ == "witness_v0_keyhash":
        ver, prog = synthetic_chain.segwit_decode(addr)
        assert addr.startswith("bc1q") and ver == 0 and o["script_hex"] == "0014" + prog.hex()
        assert o["script_asm"] == "0 " + prog.hex()
    elif typ == "nonstandard":
        assert o["value"] == 0 and o["script_hex"].startswith("6a") and o["required_signatures"] is None
        assert addr == "nonstandard" + hashlib.sha256(bytes.fromhex(o["script_hex"])).hexdigest()[:40]
    elif typ == "multisig":
        assert o["script_hex"].endswith("ae") and len(o["addresses"]) >= 2
        for a in o["addresses"]:
            assert synthetic_chain.b58check_decode(a)[0] == 0
    else:
        raise AssertionError(f"unexpected output type {typ}")


def test_encodings_match_known_vectors():
    # BIP173 test vector and two real addresses whose scripts are in the shared real data.
    prog = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert synthetic_chain.segwit_encode(0, prog) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert synthetic_chain.segwit_decode("bc1qjl8uwezzlech723lpnyuza0h2cdkvxvh54v3dn")[1].hex() == \
        "97cfc76442fe717f2a3f0cc9c175f7561b661997"
    assert synthetic_chain.b58check_encode(bytes.fromhex("00c825a1ecf2a6830c4401620c3a16f1995057c2ab")) == \
        "1KFHE7w8BhaENAswwryaoccDb6qcT6DbYY"
    with pytest.raises(ValueError):
        synthetic_chain.b58check_decode("1KFHE7w8BhaENAswwryaoccDb6qcT6DbYZ")
    assert synthetic_chain.bip34_height_push(840000).hex() == "0340d10c"


def test_output_scripts_match_their_addresses(chain):
    types = {}
    for t in _all_txs(chain):
        for o in t["outputs"]:
            _check_script(o)
            types[o["type"]] = types.get(o["type"], 0) + 1
    assert {"pubkeyhash", "scripthash", "witness_v0_keyhash", "nonstandard", "multisig"} <= set(types)
    plain_op_returns = sum(1 for t in _all_txs(chain) if not t["is_coinbase"]
                           for o in t["outputs"] if o["type"] == "nonstandard")
    assert plain_op_returns >= 3 * DAYS


# ------------------------------------------------------------------ pools and ground truth
def _pool_tags():
    return {p["name"]: [t.encode("utf-8") for t in p["tags"] if t] for p in POOLS}


def test_pool_blocks_carry_their_own_tag_only(chain):
    tags, truth = _pool_tags(), chain["truth"]
    cb_by_block = {t["block_hash"]: t for t in _all_txs(chain) if t["is_coinbase"]}
    pools_seen = {}
    for b in _all_blocks(chain):
        script = bytes.fromhex(b["coinbase_param"])
        payees = [o["addresses"][0] for o in cb_by_block[b["hash"]]["outputs"] if o["type"] != "nonstandard"]
        roles = {truth[a] for a in payees}
        if any(role == "solo_miner" for role, _ in roles):
            assert len(payees) == 1
            assert not any(t.lower() in script.lower() for ts in tags.values() for t in ts)
            continue
        assert {role for role, _ in roles} <= {"pool_wallet", "pool_miner"}
        (pool,) = {actor for _, actor in roles}
        assert any(t in script for t in tags[pool]), f"block {b['number']}: no tag of {pool}"
        others = [t for name, ts in tags.items() if name != pool for t in ts]
        assert not any(t.lower() in script.lower() for t in others)
        pools_seen[pool] = pools_seen.get(pool, 0) + 1
    assert len(pools_seen) >= 6
    assert pools_seen == {k: v for k, v in chain["summary"]["blocks_per_pool"].items()
                          if k != synthetic_chain.SOLO and v}


def test_pool_blocks_attribute_to_their_pool_under_the_lists_rule(chain):
    """What the pipeline will say of each block (pool_classifier.attribution: pools in file
    order, payout addresses first, tags as regexes) is the generator's truth: its pool, or none
    for a solo miner."""
    from pool_classifier.attribution import PoolsList

    pools, truth = PoolsList.load(ROOT / "include" / "pools" / "pools-v2.json"), chain["truth"]
    cb_by_block = {t["block_hash"]: t for t in _all_txs(chain) if t["is_coinbase"]}
    matched = {}
    for b in _all_blocks(chain):
        outputs = [",".join(o["addresses"]) for o in cb_by_block[b["hash"]]["outputs"] if o["addresses"]]
        got = pools.attribute(b["coinbase_param"], outputs)
        actors = {actor for a in outputs if a in truth for role, actor in [truth[a]]
                  if role in ("pool_wallet", "pool_miner")}
        if not actors:  # a solo miner's block
            assert got.matched_by == "none", f"block {b['number']}: {got}"
            continue
        (pool,) = actors
        assert got.pool_name == pool, f"block {b['number']}: {pool}'s, attributed {got}"
        matched[got.matched_by] = matched.get(got.matched_by, 0) + 1
    assert matched.get("tag", 0) > 0


def test_direct_pools_pay_their_steady_miners_twenty_times_in_two_days(chain):
    payees = chain["summary"]["coinbase_payees"]
    direct = {name: p for name, p in payees.items() if p["style"] == "direct"}
    assert len(direct) == 3
    # Their steady (PPLNS core) miners: the coinbase_miner labels of the demo.
    assert all(p["addresses_20plus"] >= 80 for p in direct.values())
    assert chain["summary"]["coinbase_20plus_addresses"]["total"] == sum(p["addresses_20plus"] for p in direct.values())


def _coinbases(chain):
    return [t for t in _all_txs(chain) if t["is_coinbase"]]


def test_wallet_pools_rotate_their_coinbases_over_many_addresses_of_their_own(chain):
    truth, payees = chain["truth"], chain["summary"]["coinbase_payees"]
    wallets = {name for name, p in payees.items() if p["style"] == "wallet"}
    assert len(wallets) == 5 and all(payees[name]["addresses_20plus"] == 0 for name in wallets)
    # Hundreds of distinct pool wallets paid by coinbases in two days, every wallet pool with dozens.
    assert sum(payees[name]["addresses"] for name in wallets) >= 300
    assert all(payees[name]["addresses"] >= 25 for name in wallets)
    paid: dict = {}
    for t in _coinbases(chain):
        outs = [o["addresses"][0] for o in t["outputs"] if o["type"] != "nonstandard"]
        owners = {truth[a] for a in outs}
        if owners <= {("pool_wallet", name) for name in wallets}:
            (owner,) = owners
            assert 1 <= len(outs) <= 4 and len(set(outs)) == len(outs)
            for a in outs:
                paid[a] = paid.get(a, 0) + 1
    assert len(paid) == sum(payees[name]["addresses"] for name in wallets)
    assert max(paid.values()) == 1  # a rotation longer than two days of blocks: each paid once


def test_wallet_pools_coinbase_addresses_pay_miners_from_their_own_coins(chain):
    truth = chain["truth"]
    paid = {o["addresses"][0] for t in _coinbases(chain) for o in t["outputs"]
            if o["type"] != "nonstandard" and truth[o["addresses"][0]][0] == "pool_wallet"}
    spent = {i["addresses"][0] for t in _all_txs(chain) if not t["is_coinbase"] for i in t["inputs"]}
    # Nearly every coinbase address spends in the window (a payout to the pool's miners), so it has
    # flows of its own: a training positive with features.
    assert len(paid & spent) >= 0.7 * len(paid)
    payout_inputs = [t for t in _all_txs(chain) if not t["is_coinbase"]
                     and {truth[i["addresses"][0]][0] for i in t["inputs"]} == {"pool_wallet"}]
    assert payout_inputs and all(
        sum(truth[",".join(o["addresses"])][0] == "pool_miner" for o in t["outputs"]) >= 50 for t in payout_inputs)


def test_ground_truth_file(chain):
    rows, truth = chain["truth_rows"], chain["truth"]
    assert rows[0] == ["address", "role", "actor"]
    addresses = [r[0] for r in rows[1:]]
    assert addresses == sorted(addresses) and len(set(addresses)) == len(addresses)
    assert {r[1] for r in rows[1:]} <= set(synthetic_chain.ROLES)
    assert {r[1] for r in rows[1:]} >= {"pool_wallet", "pool_miner", "exchange", "user", "faucet",
                                         "gambling", "payment_processor"}
    used = set()
    for t in _all_txs(chain):
        for io in t["inputs"] + t["outputs"]:
            if io["type"] != "nonstandard":
                used.add(",".join(io["addresses"]))
    assert used == set(addresses)
    counts = {}
    for _, role, _ in rows[1:]:
        counts[role] = counts.get(role, 0) + 1
    assert {k: v for k, v in chain["summary"]["addresses_per_role"].items() if v} == counts
    # Real payout addresses of pools-v2.json are used, and labelled with their pool.
    real = {a: p["name"] for p in POOLS for a in p["addresses"]}
    labelled_real = [a for a in addresses if a in real]
    assert labelled_real and all(truth[a] == ("pool_wallet", real[a]) for a in labelled_real)


def test_miners_also_spend(chain):
    truth = chain["truth"]
    spenders = {i["addresses"][0] for t in _all_txs(chain) for i in t["inputs"]}
    assert any(truth[a][0] == "pool_miner" for a in spenders)
    receive_only = sum(1 for a, (role, _) in truth.items() if role == "user" and a not in spenders)
    assert receive_only > sum(1 for a, (role, _) in truth.items() if role == "user" and a in spenders)


def test_rejects_too_few_transactions(tmp_path):
    with pytest.raises(ValueError, match="tx_per_day"):
        synthetic_chain.generate(tmp_path, START, 1, 100)
