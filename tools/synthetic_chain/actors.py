"""Who owns what: addresses (Addr) and how they are made, wallets (Actor), the pool record, and the
pools list (pools-v2.json) with each pool's distinctive coinbase tags."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from .encoding import _varint_len, b58check_encode, segwit_encode
from .settings import P2PKH, P2SH

DEFAULT_POOLS_PATH = Path(__file__).resolve().parents[2] / "include" / "pools" / "pools-v2.json"


class Addr:
    """One output script and its owner. Only the hash and keys are kept: a million of these
    live in memory, and the JSON is rendered from per-type templates when used."""
    __slots__ = ("s", "kind", "owner", "used", "h", "key", "special", "out_size")

    def __init__(self, s, kind, owner, h, key, special, out_size):
        self.s, self.kind, self.owner, self.used = s, kind, owner, False
        self.h, self.key, self.special, self.out_size = h, key, special, out_size


_OUT_SIZE = (34, 32, 31)


def _make_addr(kind: int, h: bytes, owner, rng: random.Random, text: str | None = None) -> Addr:
    if kind == P2PKH:
        s = text or b58check_encode(b"\x00" + h)
        key = "%02x%064x" % (2 + rng.getrandbits(1), rng.getrandbits(256))    # compressed pubkey
    elif kind == P2SH:
        s = text or b58check_encode(b"\x05" + h)
        key = "%040x" % rng.getrandbits(160)                                   # keyhash in the redeem script
    else:
        s = text or segwit_encode(0, h)
        key = None
    return Addr(s, kind, owner, h.hex(), key, None, _OUT_SIZE[kind])


def _special_addr(script: bytes, asm: str, typ: str, addresses: list[str], req_sigs) -> Addr:
    """An output nobody in the simulation spends (OP_RETURN, bare multisig)."""
    addr_json = ",".join(f'"{a}"' for a in addresses)
    req = "null" if req_sigs is None else str(req_sigs)
    frag = (f'"script_asm":"{asm}","script_hex":"{script.hex()}","required_signatures":{req},'
            f'"type":"{typ}","addresses":[{addr_json}],"value":')
    a = Addr(",".join(addresses), -1, None, None, None, frag, 8 + _varint_len(len(script)) + len(script))
    a.used = True
    return a


def _nonstandard_address(script: bytes) -> str:
    # bitcoin-etl's name for script outputs without an address.
    return "nonstandard" + hashlib.sha256(script).hexdigest()[:40]


class Actor:
    """One wallet: who owns some addresses and the unspent outputs paid to them."""
    __slots__ = ("role", "name", "kinds", "addr", "addrs", "utxos", "pool", "in_pool", "dep")

    def __init__(self, role, name, kinds, pool=None):
        self.role, self.name, self.kinds, self.pool = role, name, kinds, pool
        self.addr = None      # the one address it always receives on, if it reuses one
        self.addrs = None
        self.utxos = []
        self.in_pool = False
        self.dep = None       # the exchange deposit address it pays to


class _Pool:
    def __init__(self, idx, name, style, share, tags, settings):
        self.idx, self.name, self.style, self.share, self.tags = idx, name, style, share, tags
        self.settings = settings
        self.wallet = None
        self.payout_addrs = []
        self.miners = []
        self.weights = []
        self.incl = []
        self.payout_seconds = 0   # a wallet pool's interval between payouts (chain.schedule)
        self.cb_paid = 0      # a wallet pool's coinbase addresses paid so far (the rotation's position)
        self.cb_spent = 0     # ...and how many of them its payouts have spent an earlier coinbase of


def load_pools(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        pools = json.load(f)
    if not isinstance(pools, list) or not all({"name", "tags", "addresses"} <= set(p) for p in pools):
        raise ValueError(f"{path}: expected a list of {{id, name, addresses[], tags[], link}} "
                         "as in mempool/mining-pools pools-v2.json")
    return pools


def _usable_tags(pools: list[dict]) -> list[list[str]]:
    """Per pool, the tags that contain no other pool's tag (case-insensitively), so a block
    carrying one of them is attributed to exactly that pool; short enough for the 100-byte
    coinbase script limit."""
    lowered = [[t.encode("utf-8").lower() for t in p["tags"] if t] for p in pools]
    out = []
    for i, p in enumerate(pools):
        good = []
        for t in p["tags"]:
            tb = t.encode("utf-8").lower()
            if 0 < len(tb) <= 60 and not any(u in tb for j, us in enumerate(lowered) if j != i for u in us):
                good.append(t)
        out.append(good)
    return out
