"""pool_classifier.attribution: mempool's rule (pools in file order, payout addresses before
tags, tags as case-insensitive regexes over the script one character per byte), its deliberate
differences, and every real tagged block of shared/ with its real coinbase outputs."""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import re

import pytest

from pool_classifier import attribution
from pool_classifier.attribution import Attribution, PoolsList, PoolsListError
from pool_classifier.datasets import POOLS_FILE
from pool_classifier.errors import DataError
from tests.conftest import REAL_DATA


def pools(*entries) -> PoolsList:
    """A small list: entries (id, name, addresses, tags) in file order."""
    data = [{"id": i, "name": n, "addresses": list(a), "tags": list(t), "link": ""} for i, n, a, t in entries]
    return PoolsList.from_bytes(json.dumps(data).encode(), source="test-list")


def hexof(raw: bytes) -> str:
    return raw.hex()


# ---------------------------------------------------------------- the rule


def test_file_order_wins_over_specificity_and_over_ids():
    # The later, longer tag is more specific; the earlier pool still wins (mempool stops at the
    # first pool that matches). The ids are deliberately not in file order.
    pl = pools((9, "Early", [], ["Pool"]), (1, "Late", [], ["/SuperPool/"]))
    assert pl.attribute(hexof(b"\x03\x01/SuperPool/"), []) == Attribution(9, "Early", "tag")
    assert pl.attribute(hexof(b"\x03\x01/Super/"), []) == Attribution(None, None, "none")


def test_address_before_tag_in_the_same_pool():
    pl = pools((1, "A", ["1Aaddr"], ["/A/"]))
    assert pl.attribute(hexof(b"/A/"), ["1Aaddr"]) == Attribution(1, "A", "address")
    assert pl.attribute(hexof(b"/A/"), ["1other"]) == Attribution(1, "A", "tag")
    assert pl.attribute(hexof(b"nothing"), ["1Aaddr"]) == Attribution(1, "A", "address")


def test_across_pools_the_earlier_pool_wins_whatever_matched_it():
    pl = pools((1, "First", ["1First"], ["/first/"]), (2, "Second", ["1Second"], ["/second/"]))
    # an earlier pool's tag beats a later pool's address
    assert pl.attribute(hexof(b"/first/"), ["1Second"]) == Attribution(1, "First", "tag")
    # an earlier pool's address beats a later pool's tag
    assert pl.attribute(hexof(b"/second/"), ["1First"]) == Attribution(1, "First", "address")
    # only the later pool's evidence: the later pool, by what matched
    assert pl.attribute(hexof(b"/second/"), ["1x"]) == Attribution(2, "Second", "tag")
    assert pl.attribute(hexof(b"xx"), ["1x", "1Second"]) == Attribution(2, "Second", "address")


def test_tag_pool_is_what_the_tags_alone_name_whatever_the_outputs():
    pl = pools((1, "First", ["1First"], ["/first/"]), (2, "Second", ["1Second"], ["/second/"]))
    assert pl.attribute(hexof(b"/second/"), ["1First"]).pool_id == 1  # the list's rule: address first
    assert pl.tag_pool(hexof(b"/second/")).id == 2  # tags only (the original's rule)
    assert pl.tag_pool(hexof(b"/first/ /second/")).id == 1  # file order among tags
    assert pl.tag_pool(hexof(b"nothing")) is None and pl.tag_pool(None) is None


def test_addresses_are_exact_and_multisig_parts_count():
    pl = pools((1, "A", ["1Aaddr", "bc1qabc"], []))
    assert pl.attribute(None, ["1aaddr"]).matched_by == "none"  # base58 is case-sensitive
    assert pl.attribute(None, ["BC1QABC"]).matched_by == "none"
    assert pl.attribute(None, ["1Aaddr2"]).matched_by == "none"
    # bitcoin-etl joins a multisig output's keys with ','
    assert pl.attribute(None, ["1k1,1Aaddr"]) == Attribution(1, "A", "address")
    assert pl.attribute(None, [None, "", "1x"]).matched_by == "none"
    assert pl.attribute(None, iter(["bc1qabc"])) == Attribution(1, "A", "address")  # any iterable


def test_tags_are_case_insensitive_regexes():
    pl = pools((1, "Dot", [], ["btc.com"]), (2, "Via", [], ["/ViaBTC/"]))
    assert pl.attribute(hexof(b"xx/BTC.COM/"), []).pool_name == "Dot"
    assert pl.attribute(hexof(b"xxBTCxcom"), []).pool_name == "Dot"  # '.' is any character
    assert pl.attribute(hexof(b"xxbtc\xffCOM"), []).pool_name == "Dot"  # including a non-ASCII byte
    # JS's '.' matches no line terminator (\n, \r); Python's would match '\r'
    assert pl.attribute(hexof(b"btc\rcom"), []).matched_by == "none"
    assert pl.attribute(hexof(b"btc\ncom"), []).matched_by == "none"
    for text in (b"/viabtc/", b"/VIABTC/", b"\x00\xff/vIaBtC/\x80"):
        assert pl.attribute(hexof(text), []).pool_name == "Via"
    assert pl.attribute(hexof(b"/Via BTC/"), []).matched_by == "none"


def test_dollar_is_the_very_end_and_the_lists_7pool_tag_never_matches():
    pl = pools((1, "End", [], ["foo$"]), (2, "Caret", [], ["^bar"]))
    assert pl.attribute(hexof(b"xxfoo"), []).pool_name == "End"
    assert pl.attribute(hexof(b"xxfoo\n"), []).matched_by == "none"  # Python's '$' alone would match
    assert pl.attribute(hexof(b"bar!"), []).pool_name == "Caret"
    assert pl.attribute(hexof(b"xbar"), []).matched_by == "none"
    real = PoolsList.load(POOLS_FILE)
    [seven] = [p for p in real.pools if "/$Mined by 7pool.com/" in p.tags]
    assert seven.tags == ("/$Mined by 7pool.com/",)
    # `$` before "Mined": an end-of-text anchor in mempool's RegExp too, so nothing can match;
    # 7pool's blocks are found by its payout address only
    assert real.attribute(hexof(b"/$Mined by 7pool.com/"), []).matched_by == "none"
    assert real.attribute(hexof(b"/$Mined by 7pool.com/"), seven.addresses) == Attribution(86, "7pool", "address")


def test_tags_straddling_non_ascii_bytes_and_the_half_byte_shift():
    pl = pools((1, "Ant", [], ["Mined by AntPool"]), (2, "Via", [], ["/ViaBTC/"]))
    assert pl.attribute(hexof(b"\xe4\xb8Mined by AntPool\xff\x80"), []).pool_name == "Ant"
    # a non-ASCII byte inside the tag's span breaks it
    assert pl.attribute(hexof(b"Mined by Ant\xa0Pool"), []).matched_by == "none"
    # "/ViaBTC/" is 2f5669614254432f; shifted by half a byte it is other bytes, never a match
    assert pl.attribute("a" + "2f5669614254432f" + "0", []).matched_by == "none"


def test_utf8_tags_match_their_utf8_bytes_only():
    pl = pools((1, "Fish", [], ["七彩神仙鱼", "🐟+"]), (2, "Later", [], ["Mined by"]))
    fish = "七彩神仙鱼".encode()
    assert fish.hex() == "e4b883e5bda9e7a59ee4bb99e9b1bc"
    # mempool compares its tags with one char per byte, where 七 (U+4E03) cannot occur: there
    # this block would go to "Later"; here the UTF-8 bytes count (the list means them).
    assert pl.attribute(hexof(b"\x03" + fish + b"Mined by x"), []) == Attribution(1, "Fish", "tag")
    # the bytes are compared exactly: 0xC4 is 0xE4 ('Ä'/'ä') case-flipped, another UTF-8 text
    flipped = b"\xc4" + fish[1:]
    assert pl.attribute(hexof(flipped + b"Mined by x"), []).pool_name == "Later"
    # a quantifier after a multi-byte character applies to the whole character
    assert pl.attribute(hexof("🐟🐟".encode()), []).pool_name == "Fish"
    assert pl.attribute(hexof("🐟".encode()[:3]), []).matched_by == "none"
    # a character up to U+00FF stays mempool's: it is the byte of the same value
    latin = pools((1, "Latin", [], ["café"]))
    assert latin.attribute(hexof(b"caf\xe9"), []).pool_name == "Latin"
    assert latin.attribute(hexof(b"CAF\xc9"), []).pool_name == "Latin"  # case-insensitive, as JS's 'i'
    assert latin.attribute(hexof("café".encode()), []).matched_by == "none"


def test_empty_or_missing_script_matches_no_tag():
    pl = pools((1, "A", ["1A"], ["x*"]))  # "x*" matches the empty string anywhere in a script
    assert pl.attribute(None, []) == Attribution(None, None, "none")
    assert pl.attribute("", []) == Attribution(None, None, "none")
    assert pl.attribute(None, ["1A"]) == Attribution(1, "A", "address")
    assert pl.attribute("00", []) == Attribution(1, "A", "tag")


def test_a_script_that_is_not_hex_is_a_clear_error():
    pl = pools((1, "A", [], ["a"]))
    with pytest.raises(DataError, match="coinbase_param is not hex: 'zz'"):
        pl.attribute("zz", [])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"id": 1}', "expected a JSON array"),
        (b'[{"id": 1, "name": "A", "tags": []}]', r"entry 0: missing \['addresses'\]"),
        (b'[{"id": "1", "name": "A", "addresses": [], "tags": []}]', "is not an integer"),
        (b'[{"id": 1, "name": "A", "addresses": [], "tags": "x"}]', "tags is not a list of strings"),
        (b'[{"id": 1, "name": "A", "addresses": [], "tags": ["(unclosed"]}]',
         r"pool 1 \('A'\): tag '\(unclosed' is not a regular expression"),
        (b'[{"id": 1, "name": "A", "addresses": [], "tags": []}, {"id": 1, "name": "B", "addresses": [], "tags": []}]',
         r"pool ids \[1\] appear more than once"),
    ],
)
def test_a_bad_pools_file_is_a_clear_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "my-pools.json"
    path.write_bytes(content)
    with pytest.raises(PoolsListError, match=re.escape(str(path)) + ".*" + message):
        PoolsList.load(path)
    assert issubclass(PoolsListError, DataError)  # the orchestration fails at once, no retry


def test_a_missing_pools_file_is_a_clear_error(tmp_path):
    with pytest.raises(PoolsListError, match="nowhere.json: cannot be read"):
        PoolsList.load(tmp_path / "nowhere.json")


def test_sha256_is_the_hash_of_the_files_bytes(tmp_path):
    real = PoolsList.load(POOLS_FILE)
    assert real.sha256 == hashlib.sha256(POOLS_FILE.read_bytes()).hexdigest()
    assert attribution.DEFAULT_POOLS == POOLS_FILE
    # the same pools written differently: another file, another hash
    data = json.loads(POOLS_FILE.read_bytes())
    other = tmp_path / "pools.json"
    other.write_text(json.dumps(data))
    reloaded = PoolsList.load(other)
    assert reloaded.sha256 == hashlib.sha256(other.read_bytes()).hexdigest() != real.sha256
    assert [p.id for p in reloaded.pools] == [p.id for p in real.pools]


def test_the_real_list_loads_whole():
    real = PoolsList.load(POOLS_FILE)
    raw = json.loads(POOLS_FILE.read_bytes())
    assert [p.id for p in real.pools] == [p["id"] for p in raw]  # file order kept
    assert sum(len(p.tags) for p in real.pools) == 197 and sum(len(p.addresses) for p in real.pools) == 217
    assert sum("." in t for p in real.pools for t in p.tags) == 55  # regexes, not literals


def _reference(pl: PoolsList, coinbase_param: str | None, addresses: list[str]) -> Attribution:
    """mempool's loop, written plainly: pool by pool, addresses then every tag's regex."""
    text = bytes.fromhex(coinbase_param or "").decode("latin-1")
    parts = {p for a in addresses for p in a.split(",")}
    for pool in pl.pools:
        if parts & set(pool.addresses):
            return Attribution(pool.id, pool.name, "address")
        for tag in pool.tags:
            if tag and text and re.search(attribution.js_regex(tag), text, re.IGNORECASE):
                return Attribution(pool.id, pool.name, "tag")
    return Attribution(None, None, "none")


def test_the_fast_path_equals_the_plain_loop_on_random_scripts():
    """The literal pre-filter never changes the result: scripts spliced from the list's own tags
    (in random case, with random bytes between) and its addresses."""
    real = PoolsList.load(POOLS_FILE)
    rng = random.Random(7)
    tags = [t for p in real.pools for t in p.tags]
    addresses = [a for p in real.pools for a in p.addresses]
    for _ in range(3000):
        chunks = [bytes(rng.randrange(256) for _ in range(rng.randrange(6)))]
        for tag in rng.sample(tags, rng.randrange(3)):
            raw = tag.encode("utf-8")
            raw = bytes(c ^ 0x20 if chr(c).isascii() and chr(c).isalpha() and rng.random() < 0.3 else c for c in raw)
            chunks += [raw, bytes(rng.randrange(256) for _ in range(rng.randrange(4)))]
        script = b"".join(chunks).hex()
        outs = rng.sample(addresses, rng.randrange(2)) + ["1nobody"]
        assert real.attribute(script, outs) == _reference(real, script, outs), script


# ---------------------------------------------------------------- every real tagged block

# Every block of ../shared/data/real/tagged_blocks/ with its pool and what matched, read from
# the decoded coinbase_param and the coinbase transaction's real output addresses against
# include/pools/pools-v2.json. Where a pool's payout address is among the outputs, "address"
# (the pool's addresses come before its tags); no block of these has evidence for two pools.
TAGGED_BLOCKS: dict[int, tuple[str | None, str]] = {
    # 2009-2011: bare pubkey outputs to miners' own keys and no text in the script
    25000: (None, "none"), 50000: (None, "none"), 75000: (None, "none"),
    100000: (None, "none"), 125000: (None, "none"), 150000: (None, "none"),
    169482: (None, "none"),  # 208 outputs (a payout-in-coinbase pool), none a listed address, no tag
    176149: ("BTC Guild", "tag"),  # "...BTC Guild..."
    200000: (None, "none"),  # only "/P2SH/" (the BIP16 vote, no pool's tag)
    225000: ("EclipseMC", "tag"),  # "...EMC US1": EclipseMC's tag is "EMC " (with the space)
    227836: ("Braiins Pool", "tag"),  # "/P2SH/.../slush/": the list names slush "Braiins Pool"
    250000: (None, "none"),
    # "/P2SH/" only in the script; the one output is 1CjPR7Z5ZSyWk6WtXvSFgkptmpoi4UM9BC, GHash.IO's
    262500: ("GHash.IO", "address"), 300000: ("GHash.IO", "address"), 312500: ("GHash.IO", "address"),
    277647: ("BTC Guild", "tag"),  # "Mined by BTC Guild"
    332208: ("KnCMiner", "tag"),  # "KnCMinerB2-P1/"
    # F2Pool: "七彩神仙鱼" in UTF-8 and/or "🐟" (tags mempool never matches, see the module), but
    # the output 1KFHE7w8BhaENAswwryaoccDb6qcT6DbYY is F2Pool's, and addresses come first
    350000: ("F2Pool", "address"), 399911: ("F2Pool", "address"), 450000: ("F2Pool", "address"),
    482253: ("F2Pool", "address"), 599847: ("F2Pool", "address"), 612500: ("F2Pool", "address"),
    363703: ("AntPool", "tag"),  # "/AntPool/sc2/": no AntPool address among its outputs
    370505: ("KnCMiner", "tag"),  # "KnCMinerB2-P2/"
    # "/BIP100/.../BTCC/", paid to 152f1muMCNa7goXYhYAQC61hxEgGacmncB, BTCC's address
    375000: ("BTCC", "address"), 387500: ("BTCC", "address"), 425000: ("BTCC", "address"),
    403617: ("1Hash", "address"),  # no text; pays 1F1xcRt8H8Wa623KqmkEontwAAVqDSAWCV, 1Hash's
    437500: ("AntPool", "tag"), 475000: ("AntPool", "tag"),  # "Mined by AntPool bj…", no listed address
    481829: ("Bixin", "address"),  # "/Bixin/", and 1KsFhYKLs8qb1GHqrPxHoywNQpet2CtP9t is Bixin's
    # "Mined by AntPool…" and an AntPool payout address (16MdTd…, 1CyB8G…, 1Nh7uH…)
    482683: ("AntPool", "address"), 497006: ("AntPool", "address"), 556977: ("AntPool", "address"),
    # "/BTC.COM/" (both of BTC.com's "/BTC.COM/", "/BTC.com/" match, case-insensitive) and its address
    500000: ("BTC.com", "address"), 575000: ("BTC.com", "address"), 623857: ("BTC.com", "address"),
    525000: ("BTC.TOP", "address"),  # "/BTC.TOP/" and 1Hz96kJKF2HLPGY15JWLB5m9qGNxvt8tHJ
    549400: (None, "none"),  # 94 outputs, none listed; no text
    627714: ("Lubian.com", "address"),  # "/Buffett/" is Lubian.com's tag, 34Jpa4… its address
}


def _real_tagged_blocks() -> list[tuple[dict, list[str]]]:
    folder = REAL_DATA / "tagged_blocks"
    with gzip.open(folder / "blocks.ndjson.gz", "rt") as f:
        blocks = [json.loads(line) for line in f]
    with gzip.open(folder / "coinbase_transactions.ndjson.gz", "rt") as f:
        coinbase = {tx["block_hash"]: tx for tx in map(json.loads, f)}
    out = []
    for block in blocks:
        tx = coinbase[block["hash"]]  # keyed by block hash, as the job is
        assert tx["is_coinbase"] and tx["block_number"] == block["number"]
        out.append((block, [",".join(o["addresses"]) for o in tx["outputs"] if o["addresses"]]))
    return out


def test_every_real_tagged_block_with_its_real_coinbase_outputs():
    real = PoolsList.load(POOLS_FILE)
    rows = _real_tagged_blocks()
    assert sorted(b["number"] for b, _ in rows) == sorted(TAGGED_BLOCKS)
    got = {}
    for block, outputs in rows:
        a = real.attribute(block["coinbase_param"], outputs)
        got[block["number"]] = (a.pool_name, a.matched_by)
        assert a == _reference(real, block["coinbase_param"], outputs)
        if a.pool_id is not None:
            assert next(p.name for p in real.pools if p.id == a.pool_id) == a.pool_name
    assert got == TAGGED_BLOCKS
    # both kinds of evidence are exercised on real data, and a block with both goes by address
    assert {m for _, m in got.values()} == {"address", "tag", "none"}


def test_real_tagged_blocks_by_tag_alone():
    """Without the outputs, the blocks attributed by address fall back to their tags: F2Pool's
    only through the UTF-8 tags (mempool: none), GHash.IO's and 1Hash's to none."""
    real = PoolsList.load(POOLS_FILE)
    got = {b["number"]: real.attribute(b["coinbase_param"], []) for b, _ in _real_tagged_blocks()}
    for number, (pool, matched_by) in TAGGED_BLOCKS.items():
        if matched_by == "tag":
            assert (got[number].pool_name, got[number].matched_by) == (pool, "tag")
    for number in (262500, 300000, 312500, 403617):
        assert got[number].matched_by == "none"
    for number in (350000, 399911, 450000, 482253, 599847, 612500):
        assert (got[number].pool_name, got[number].matched_by) == ("F2Pool", "tag")
    for number in (375000, 481829, 482683, 500000, 525000, 627714):
        assert got[number].matched_by == "tag" and got[number].pool_name == TAGGED_BLOCKS[number][0]
