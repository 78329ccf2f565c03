"""Which pool mined a block, as the pools list means it: the one implementation of attribution.

The rule is mempool's `matchBlockMiner` (backend/src/api/pools-parser.ts, called by
`$findBlockMiner` in blocks.ts), the code the list (mempool/mining-pools, pools-v2.json) is
written for:

* pools are tried in file order; the first pool that matches wins (no "most specific tag");
* for each pool, first its payout addresses against the coinbase transaction's output
  addresses (exact, case-sensitive string equality), then its tags;
* a tag is a case-insensitive regular expression (`new RegExp(tag, 'i')`), searched anywhere in
  the coinbase script decoded one character per byte (mempool's `hex2ascii`: byte 0xNN becomes
  U+00NN, i.e. latin-1).

Deliberate differences, each tested in tests/test_attribution.py:

1. UTF-8 tags. A tag character above U+00FF (`七彩神仙鱼`, `🐟` for F2Pool, `八宝池` for 8baochi,
   `🐵🚀` for mononaut) can never occur in one-char-per-byte text, so in mempool those tags never
   match. Pools write them in UTF-8, so here each such character stands for its UTF-8 bytes (as a
   group, so a quantifier after it applies to the whole character). Characters up to U+00FF
   are matched as mempool does (as the byte of the same value). Effect: a block whose only
   evidence is such a tag is attributed here and `none` in mempool; a block that also matches
   a later pool goes to the earlier pool here.
2. JavaScript vs Python regular expressions. Tags are translated so that the two characters
   whose meaning differs and that the list uses mean what they mean in JavaScript: an
   unescaped `.` outside a class matches any character but `\\n`, `\\r` (JS line terminators;
   Python's `.` would also match `\\r`), and an unescaped `$` outside a class matches only at the
   very end (Python's `$` also matches before a final `\\n`). So `/$Mined by 7pool.com/` (pool
   86) never matches, in mempool as here. Case folding: Python's Unicode IGNORECASE and JS's
   `i` agree on every pair of characters up to U+00FF (the whole alphabet of the decoded
   script), so no translation. Not translated (the list uses none): `\\w`, `\\d`, `\\s`, `\\b`,
   which in Python also match non-ASCII letters/digits/spaces. A tag Python cannot compile is
   an error naming the file, the pool and the tag, when the list is loaded.
3. Output addresses: bitcoin-etl joins a multisig output's keys with ','; each part is also
   tried as an address (mempool's Esplora gives no address for bare multisig, so this only
   matters if the list ever holds one).

Speed: the regexes are compiled once per list; per block the work is one dict look-up per
output address, then, per tag of the pools before the address's pool, a substring test of the
longest literal any match must contain (`required_literals`) and a regex search only where they are all
there.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pool_classifier.datasets import POOLS_FILE
from pool_classifier.errors import DataError

DEFAULT_POOLS = POOLS_FILE  # include/pools/pools-v2.json (a copy of mempool/mining-pools, MIT)

MATCHED_BY = ("address", "tag", "none")


class PoolsListError(DataError, ValueError):
    """The pools list cannot be read: not JSON, not the pools-v2 shape, or a tag that is no regex."""


@dataclass(frozen=True)
class Attribution:
    pool_id: int | None
    pool_name: str | None
    matched_by: str  # "address" | "tag" | "none"


NONE = Attribution(None, None, "none")


@dataclass(frozen=True)
class Pool:
    id: int
    name: str
    addresses: tuple[str, ...]
    tags: tuple[str, ...]


def js_regex(tag: str) -> str:
    """The Python regex that means what `new RegExp(tag, 'i')` means over one-char-per-byte text.

    See the module docstring, differences 1 and 2: characters above U+00FF become their UTF-8
    bytes (one group per character), `.` becomes "not a JS line terminator", `$` the very end.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(tag):
        c = tag[i]
        if c == "\\" and i + 1 < len(tag):
            nxt = tag[i + 1]
            if nxt in "123456789" or (nxt == "k" and not in_class):
                raise re.error("backreferences are not supported (tags are combined into one regex)")
            out.append(_bytes_of(nxt, in_class) if ord(nxt) > 0xFF else c + nxt)
            i += 2
            continue
        if ord(c) > 0xFF:
            out.append(_bytes_of(c, in_class))
        elif in_class:
            if c == "]":
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            # a ']' right after '[' or '[^' is a literal in Python, but ends an empty class in JS
            if tag.startswith("^", i + 1):
                out.append("^")
                i += 1
            if tag.startswith("]", i + 1):
                raise re.error("a ']' first in a class (an empty class in JavaScript) is not supported")
        elif c == ".":
            out.append(r"[^\n\r]")
        elif c == "$":
            out.append(r"\Z")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _bytes_of(char: str, in_class: bool) -> str:
    if in_class:
        raise re.error(f"{char!r} (above U+00FF, several bytes in UTF-8) inside a [class] is not supported")
    # case-sensitive: folding one byte of a UTF-8 sequence (0xE4 'ä' vs 0xC4 'Ä') would make another character
    return "(?-i:" + re.escape(char.encode("utf-8").decode("latin-1")) + ")"


_PLAIN = re.compile(r"[^\\()\[\]{}?*+|]*")  # a tag whose only special characters are . ^ $


def required_literals(tag: str) -> tuple[str, ...]:
    """Lower-cased texts that any match of `tag` contains (a fast, sound pre-filter), or () if unknown.

    Only for tags whose special characters are at most `.`, `^`, `$` (all but one of the list):
    the runs between them, with characters above U+00FF as their UTF-8 bytes.
    """
    if not _PLAIN.fullmatch(tag):
        return ()
    runs = re.split(r"[.^$]", tag)
    return tuple(
        folded for run in runs if (folded := "".join(
            c.encode("utf-8").decode("latin-1") if ord(c) > 0xFF else c for c in run
        ).lower())
    )


def script_text(coinbase_param: str | None) -> str:
    """The coinbase script (lower- or upper-case hex) as one character per byte (mempool's hex2ascii)."""
    if not coinbase_param:
        return ""
    try:
        return bytes.fromhex(coinbase_param).decode("latin-1")
    except ValueError as e:
        raise DataError(f"coinbase_param is not hex: {coinbase_param[:80]!r} ({e})") from None


class PoolsList:
    """A pools-v2.json list, compiled for attribution; `sha256` is the hash of the file's bytes."""

    def __init__(self, pools: list[Pool], data: bytes, source: str) -> None:
        self.pools = pools
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.source = source
        self._data = data
        self._address_pool: dict[str, int] = {}
        for index, pool in enumerate(pools):
            for address in pool.addresses:
                self._address_pool.setdefault(address, index)
        # per pool (file order): its compiled tags, each with the literals any match must contain
        self._tags: list[tuple[int, re.Pattern[str], str]] = []
        for index, pool in enumerate(pools):
            for tag in pool.tags:
                if tag == "":
                    continue  # an empty tag would match every block; the list has none
                try:
                    regex = re.compile(js_regex(tag), re.IGNORECASE)
                except re.error as e:
                    raise PoolsListError(
                        f"{source}: pool {pool.id} ({pool.name!r}): tag {tag!r} is not a regular "
                        f"expression this implementation accepts: {e}"
                    ) from None
                # the longest literal is the pre-filter ("" when unknown: always searched)
                literal = max(required_literals(tag), key=len, default="")
                self._tags.append((index, regex, literal))

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path) -> PoolsList:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise PoolsListError(f"pools list {path}: cannot be read: {e}") from None
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> PoolsList:
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PoolsListError(f"pools list {source}: not JSON: {e}") from None
        if not isinstance(raw, list):
            raise PoolsListError(f"pools list {source}: expected a JSON array of pools (pools-v2.json), got {type(raw).__name__}")
        pools = [_pool(entry, n, source) for n, entry in enumerate(raw)]
        ids = [p.id for p in pools]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise PoolsListError(f"pools list {source}: pool ids {dup} appear more than once")
        return cls(pools, data, source)

    def to_bytes(self) -> bytes:
        """The file's bytes (what `sha256` hashes): a list shipped to Spark's workers as is."""
        return self._data

    # ------------------------------------------------------------------ attribution

    def attribute(self, coinbase_param: str | None, output_addresses: Iterable[str | None]) -> Attribution:
        """The block's pool: the first pool in file order whose address is paid or whose tag is in the script."""
        limit = len(self.pools)  # only pools before `limit` can still win
        by_address = False
        for address in output_addresses:
            if not address:
                continue
            parts = address.split(",") if "," in address else (address,)
            for part in parts:
                index = self._address_pool.get(part)
                if index is not None and index < limit:
                    limit, by_address = index, True
        text = script_text(coinbase_param)
        if text:
            folded = text.lower()
            for index, regex, literal in self._tags:
                if index >= limit:
                    break
                if literal in folded and regex.search(text):
                    pool = self.pools[index]
                    return Attribution(pool.id, pool.name, "tag")
        if by_address:
            pool = self.pools[limit]
            return Attribution(pool.id, pool.name, "address")
        return NONE

    def tag_pool(self, coinbase_param: str | None) -> Pool | None:
        """The pool the script's tags alone name (the first in file order), whatever the outputs:
        the original classifier's rule attributed by tags only (its label-rule variant)."""
        text = script_text(coinbase_param)
        if text:
            folded = text.lower()
            for index, regex, literal in self._tags:
                if literal in folded and regex.search(text):
                    return self.pools[index]
        return None


def _pool(entry: object, n: int, source: str) -> Pool:
    where = f"pools list {source}: entry {n}"
    if not isinstance(entry, dict):
        raise PoolsListError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [k for k in ("id", "name", "addresses", "tags") if k not in entry]
    if missing:
        raise PoolsListError(f"{where}: missing {missing}")
    if not isinstance(entry["id"], int) or isinstance(entry["id"], bool):
        raise PoolsListError(f"{where}: id {entry['id']!r} is not an integer")
    for key in ("addresses", "tags"):
        if not isinstance(entry[key], list) or not all(isinstance(x, str) for x in entry[key]):
            raise PoolsListError(f"{where} (pool {entry['id']}): {key} is not a list of strings")
    return Pool(int(entry["id"]), str(entry["name"]), tuple(entry["addresses"]), tuple(entry["tags"]))
