"""Write a deterministic synthetic Bitcoin chain, day by day, in the exact NDJSON shape of `bq extract` of
`crypto_bitcoin.blocks` / `.transactions`, with the ground-truth role of every address it uses.

    python -m tools.synthetic_chain --out DIR --start 2024-03-01 --days 3 --tx-per-day 20000 --seed 7
"""
from __future__ import annotations

import argparse
import bisect
import csv
import datetime
import gzip
import hashlib
import io
import json
import os
import random
from collections import deque
from pathlib import Path

DEFAULT_POOLS_PATH = Path(__file__).resolve().parents[2] / "include" / "pools" / "pools-v2.json"

ROLES = ("pool_wallet", "pool_miner", "solo_miner", "exchange", "user", "faucet", "gambling",
         "payment_processor")
SOLO = "(solo/unknown)"

# (name in pools-v2.json, payout style, % of the day's blocks, settings). The direct pools get
# most blocks on purpose: a miner must be paid by >= 20 coinbases of one pool in ONE day to be
# labelled, which needs ~25+ blocks per direct pool out of ~144.
POOL_PLAN = (
    ("OCEAN", "direct", 22, {"core": 150, "casual": 250, "fee": 0.02}),
    ("Eligius", "direct", 20, {"core": 135, "casual": 165, "fee": 0.0}),
    ("KanoPool", "direct", 18, {"core": 125, "casual": 125, "fee": 0.009}),
    ("Foundry USA", "wallet", 16, {"miners": 600, "payout_hours": 4}),
    ("AntPool", "wallet", 11, {"miners": 500, "payout_hours": 6}),
    ("F2Pool", "wallet", 5, {"miners": 400, "payout_hours": 8}),
    ("ViaBTC", "wallet", 3, {"miners": 300, "payout_hours": 3}),
    ("Braiins Pool", "wallet", 2, {"miners": 250, "payout_hours": 6}),
)
SOLO_SHARE = 3
DIRECT_MIN_OUTPUTS, DIRECT_MAX_OUTPUTS = 30, 150
N_SOLO_MINERS = 8

# (share of deposits, withdrawal interval s, consolidation interval s): bigger exchanges act more often.
EXCHANGES = ((40, 480, 7200), (30, 600, 10800), (20, 900, 14400), (10, 1200, 21600))
GAMBLING = ((50, 900), (30, 1200), (20, 1800))          # (share of bets, payout interval s)
FAUCETS = ((400, 2400), (300, 3600), (250, 5400))       # (claimers, payout interval s)
PROCESSORS = ((60, 14400), (40, 21600))                 # (merchants, settlement interval s)
# Rhythmic service transactions may take at most this share of a day's non-coinbase budget;
# beyond it their intervals stretch, so small test runs still have organic traffic.
MAX_SCHEDULED_SHARE = 0.4

# Organic transaction mix: cumulative thresholds over rng.random().
_ORGANIC = ((0.57, "pay"), (0.76, "deposit"), (0.84, "bet"), (0.90, "invoice"),
            (0.98, "miner"), (1.01, "consolidate"))
P_PREHISTORY = 0.2   # share of user spends that use coins received before the window
OP_RETURN_EVERY, MULTISIG_EVERY = 2500, 8000   # organic transactions per extra output of that kind
COINBASE_MATURITY = 100
DUST = 546
SECONDS_PER_DAY = 86400

# Halving heights and their (real, or for 2028 estimated) dates: the start height is anchored
# on them so that the subsidy follows both the height and the date of each block.
HALVINGS = ((0, datetime.date(2009, 1, 3)), (210000, datetime.date(2012, 11, 28)),
            (420000, datetime.date(2016, 7, 9)), (630000, datetime.date(2020, 5, 11)),
            (840000, datetime.date(2024, 4, 20)), (1050000, datetime.date(2028, 4, 15)))

P2PKH, P2SH, P2WPKH = 0, 1, 2
USER_KINDS = (P2WPKH,) * 11 + (P2PKH,) * 5 + (P2SH,) * 4
SERVICE_KINDS = (P2WPKH, P2WPKH, P2WPKH, P2SH, P2SH)
_IN_VBYTES = (148, 91, 68)          # fee estimates only; exact sizes are computed on emission
_SEQUENCES = (4294967295,) * 8 + (4294967293,) * 9 + (4294967294,) * 3

# Coinbase filler bytes: no ASCII letters and nothing >= 0x80, so random bytes can neither spell
# a pool tag nor join letters across bytes that an ASCII decoder drops.
_FILLER = bytes(b for b in range(128) if not (65 <= b <= 90 or 97 <= b <= 122))


# ---------------------------------------------------------------- address encodings
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B58_PAIRS = tuple(a + b for a in _B58 for b in _B58)
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_B32_INDEX = {c: i for i, c in enumerate(_B32)}
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _gen_xor(top: int) -> int:
    acc = 0
    for i in range(5):
        if (top >> i) & 1:
            acc ^= _GEN[i]
    return acc


# XOR of the generators selected by the 5 top bits: one table lookup per character.
_GEN_TABLE = tuple(_gen_xor(b) for b in range(32))


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def b58check_encode(payload: bytes) -> str:
    data = payload + sha256d(payload)[:4]
    n = int.from_bytes(data, "big")
    out = []
    while n:   # two base58 digits per big-int division: addresses are made by the million
        n, r = divmod(n, 3364)
        out.append(_B58_PAIRS[r])
    text = "".join(reversed(out)).lstrip("1")
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + text


def b58check_decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"{text!r}: not base58")
        n = n * 58 + _B58_INDEX[c]
    pad = len(text) - len(text.lstrip("1"))
    data = b"\0" * pad + n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(data) < 5 or sha256d(data[:-4])[:4] != data[-4:]:
        raise ValueError(f"{text!r}: bad base58check checksum")
    return data[:-4]


def _bech32_polymod(values, chk=1) -> int:
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ v) ^ _GEN_TABLE[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


_BC_STATE = _bech32_polymod(_hrp_expand("bc"))


def _double_step(top10: int) -> int:
    g0 = _GEN_TABLE[top10 >> 5]
    return ((g0 & 0x1FFFFFF) << 5) ^ _GEN_TABLE[(top10 & 31) ^ (g0 >> 25)]


# Two polymod steps at once: the XOR they add depends only on the top 10 bits of the state,
# so a 20-byte program is 16 table steps of 10 bits each instead of 32 bit-fiddling ones.
_GEN_TABLE2 = tuple(_double_step(t) for t in range(1024))
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)
_BC_V0_STATE = _bech32_polymod((0,), _BC_STATE)
_P2WPKH_SHIFTS = tuple(range(150, -1, -10))


def segwit_encode(witver: int, prog: bytes, hrp: str = "bc") -> str:
    """BIP173 bech32 (witness v0) address."""
    if hrp == "bc" and witver == 0 and len(prog) == 20:
        n = int.from_bytes(prog, "big")
        chunks = [(n >> s) & 1023 for s in _P2WPKH_SHIFTS]
        chk = _BC_V0_STATE
        for c in chunks:
            chk = ((chk & 0xFFFFF) << 10) ^ c ^ _GEN_TABLE2[chk >> 20]
        for _ in range(3):
            chk = ((chk & 0xFFFFF) << 10) ^ _GEN_TABLE2[chk >> 20]
        chk ^= 1
        return ("bc1q" + "".join([_B32_PAIRS[c] for c in chunks]) + _B32_PAIRS[chk >> 20]
                + _B32_PAIRS[(chk >> 10) & 1023] + _B32_PAIRS[chk & 1023])
    data = [witver] + _to_5bit(prog)
    mod = _bech32_polymod(data + [0] * 6, _bech32_polymod(_hrp_expand(hrp))) ^ 1
    return hrp + "1" + "".join(_B32[d] for d in data + [(mod >> 5 * (5 - i)) & 31 for i in range(6)])


def _to_5bit(prog: bytes) -> list[int]:
    bits = len(prog) * 8
    n = int.from_bytes(prog, "big") << ((5 - bits % 5) % 5)
    groups = (bits + 4) // 5
    return [(n >> (5 * (groups - 1 - i))) & 31 for i in range(groups)]


def segwit_decode(addr: str, hrp: str = "bc") -> tuple[int, bytes]:
    addr = addr.lower()
    sep = addr.rfind("1")
    if addr[:sep] != hrp or len(addr) - sep < 8 or any(c not in _B32_INDEX for c in addr[sep + 1:]):
        raise ValueError(f"{addr!r}: not a bech32 {hrp} address")
    data = [_B32_INDEX[c] for c in addr[sep + 1:]]
    if _bech32_polymod(_hrp_expand(hrp) + data) != 1:
        raise ValueError(f"{addr!r}: bad bech32 checksum (or bech32m, not supported)")
    acc = bits = 0
    prog = bytearray()
    for d in data[1:-6]:
        acc, bits = (acc << 5) | d, bits + 5
        if bits >= 8:
            bits -= 8
            prog.append((acc >> bits) & 0xFF)
    return data[0], bytes(prog)


def _ripemd160(data: bytes) -> bytes:
    """Pure-Python RIPEMD-160: hashlib's depends on the OpenSSL build, output must not."""
    def rol(x, n):
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    r1 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5,
          2, 14, 11, 8, 3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12, 1, 9, 11, 10, 0, 8, 12, 4,
          13, 3, 7, 15, 14, 5, 6, 2, 4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13]
    r2 = [5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12, 6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12,
          4, 9, 1, 2, 15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13, 8, 6, 4, 1, 3, 11, 15, 0,
          5, 12, 2, 13, 9, 7, 10, 14, 12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11]
    s1 = [11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8, 7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9,
          11, 7, 13, 12, 11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5, 11, 12, 14, 15, 14,
          15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12, 9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6]
    s2 = [8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6, 9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7,
          6, 15, 13, 11, 9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5, 15, 5, 8, 11, 14, 14,
          6, 14, 6, 9, 12, 9, 12, 5, 15, 8, 8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11]
    k1 = [0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E]
    k2 = [0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000]

    def f(j, x, y, z):
        if j < 16:
            return x ^ y ^ z
        if j < 32:
            return (x & y) | (~x & z)
        if j < 48:
            return (x | ~y) ^ z
        if j < 64:
            return (x & z) | (y & ~z)
        return x ^ (y | ~z)

    msg = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + 4 * i: off + 4 * i + 4], "little") for i in range(16)]
        a1, b1, c1, d1, e1 = h
        a2, b2, c2, d2, e2 = h
        for j in range(80):
            t = (rol((a1 + (f(j, b1, c1, d1) & 0xFFFFFFFF) + x[r1[j]] + k1[j // 16]) & 0xFFFFFFFF, s1[j])
                 + e1) & 0xFFFFFFFF
            a1, e1, d1, c1, b1 = e1, d1, rol(c1, 10), b1, t
            t = (rol((a2 + (f(79 - j, b2, c2, d2) & 0xFFFFFFFF) + x[r2[j]] + k2[j // 16]) & 0xFFFFFFFF,
                     s2[j]) + e2) & 0xFFFFFFFF
            a2, e2, d2, c2, b2 = e2, d2, rol(c2, 10), b2, t
        h = [(h[1] + c1 + d2) & 0xFFFFFFFF, (h[2] + d1 + e2) & 0xFFFFFFFF, (h[3] + e1 + a2) & 0xFFFFFFFF,
             (h[4] + a1 + b2) & 0xFFFFFFFF, (h[0] + b1 + c2) & 0xFFFFFFFF]
    return b"".join(v.to_bytes(4, "little") for v in h)


def _push(data: bytes) -> bytes:
    n = len(data)
    if n <= 75:
        return bytes([n]) + data
    return bytes([0x4C, n]) + data


def bip34_height_push(height: int) -> bytes:
    """The minimal CScriptNum push of the height that BIP34 puts first in every coinbase script."""
    if height == 0:
        return b"\x00"
    body = height.to_bytes((height.bit_length() + 7) // 8, "little")
    if body[-1] & 0x80:
        body += b"\0"
    return _push(body)


def _varint_len(n: int) -> int:
    return 1 if n < 253 else 3 if n < 65536 else 5


# ---------------------------------------------------------------- addresses and actors
class Addr:
    """One output script and its owner. Only the hash and keys are kept: a million of these
    live in memory, and the JSON is rendered from per-type templates when used."""
    __slots__ = ("s", "kind", "owner", "used", "h", "key", "special", "out_size")

    def __init__(self, s, kind, owner, h, key, special, out_size):
        self.s, self.kind, self.owner, self.used = s, kind, owner, False
        self.h, self.key, self.special, self.out_size = h, key, special, out_size


# Output and input JSON per address kind (P2PKH, P2SH, P2WPKH), in bq extract's key order.
_OUT_JSON = (
    '{"index":%d,"script_asm":"OP_DUP OP_HASH160 %s OP_EQUALVERIFY OP_CHECKSIG","script_hex":"76a914%s88ac",'
    '"required_signatures":1,"type":"pubkeyhash","addresses":["%s"],"value":%d}',
    '{"index":%d,"script_asm":"OP_HASH160 %s OP_EQUAL","script_hex":"a914%s87",'
    '"required_signatures":1,"type":"scripthash","addresses":["%s"],"value":%d}',
    '{"index":%d,"script_asm":"0 %s","script_hex":"0014%s",'
    '"required_signatures":1,"type":"witness_v0_keyhash","addresses":["%s"],"value":%d}',
)
_IN_P2PKH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"%s[ALL] %s",'
                  '"script_hex":"%02x%s0121%s","sequence":%d,"required_signatures":1,"type":"pubkeyhash",'
                  '"addresses":["%s"],"value":%d}')
# P2SH spends are P2SH-wrapped P2WPKH, the common modern case: the scriptSig pushes 0014<keyhash>.
_IN_P2SH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"0014%s",'
                 '"script_hex":"160014%s","sequence":%d,"required_signatures":1,"type":"scripthash",'
                 '"addresses":["%s"],"value":%d}')
# Native segwit inputs have an empty scriptSig (the witness is not in the table).
_IN_P2WPKH_JSON = ('{"index":%d,"spent_transaction_hash":"%s","spent_output_index":%d,"script_asm":"",'
                   '"script_hex":"","sequence":%d,"required_signatures":1,"type":"witness_v0_keyhash",'
                   '"addresses":["%s"],"value":%d}')
_OUT_SIZE = (34, 32, 31)


def _render_output(j: int, a: Addr, v: int) -> str:
    if a.special is not None:
        return '{"index":%d,%s%d}' % (j, a.special, v)
    return _OUT_JSON[a.kind] % (j, a.h, a.h, a.s, v)


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


def _weighted_sample(rng: random.Random, n: int, weights, k: int) -> list[int]:
    """k distinct indices of range(n) drawn by weight (Efraimidis-Spirakis), in index order."""
    keys = sorted(((rng.random() ** (1.0 / weights[i]), i) for i in range(n)), reverse=True)
    return sorted(i for _, i in keys[:k])


def _cumulative(weights) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    """Index drawn by weight from cumulative weights (rng.choices without its overhead)."""
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    wsum = sum(weights)
    q = [total * w // wsum for w in weights]
    rest = total - sum(q)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % wsum), i))
    for i in order[:rest]:
        q[i] += 1
    return q


def start_height(start_date: datetime.date, block_counts: list[int]) -> int:
    """A realistic first height, placed so that no halving height falls on the wrong date."""
    if start_date < HALVINGS[0][1]:
        raise ValueError(f"start date {start_date} is before the genesis block (2009-01-03)")
    total = sum(block_counts)
    end_date = start_date + datetime.timedelta(days=len(block_counts))
    e = max(i for i, (_, d) in enumerate(HALVINGS) if d <= start_date)
    h0, d0 = HALVINGS[e]
    nxt = HALVINGS[e + 1] if e + 1 < len(HALVINGS) else None
    if nxt is not None and nxt[1] < end_date:
        return nxt[0] - sum(block_counts[:(nxt[1] - start_date).days])
    # Estimate from the nearer halving, then keep the whole run inside its subsidy era.
    est = h0 + (start_date - d0).days * 144
    if nxt is not None:
        if (nxt[1] - start_date).days < (start_date - d0).days:
            est = nxt[0] - (nxt[1] - start_date).days * 144
        est = min(est, nxt[0] - total)
    return max(est, h0 + 1)


def subsidy(height: int) -> int:
    return 5_000_000_000 >> (height // 210000) if height < 64 * 210000 else 0


# ---------------------------------------------------------------- the generator
class _Chain:
    def __init__(self, rng: random.Random, pools_data: list[dict], tx_per_day: int):
        self.rng = rng
        self.tx_per_day = tx_per_day
        self.addrs: list[Addr] = []
        self.extra_truth: list[tuple[str, str, str]] = []
        self.users: list[Actor] = []
        self.user_pool: list[Actor] = []
        self.miner_pool: list[Actor] = []
        self.all_miners: list[Actor] = []
        self.merchants: list[Actor] = []
        self.maturing: deque = deque()
        self._setup_pools(pools_data)
        self._setup_services()

    # --- addresses
    def new_addr(self, owner: Actor, kind: int | None = None) -> Addr:
        rng = self.rng
        if kind is None:
            kinds = owner.kinds
            kind = kinds[0] if len(kinds) == 1 else kinds[int(rng.random() * len(kinds))]
        a = _make_addr(kind, rng.getrandbits(160).to_bytes(20, "big"), owner, rng)
        self.addrs.append(a)
        return a

    def fixed_actor(self, role, name, kinds, pool=None) -> Actor:
        act = Actor(role, name, kinds, pool)
        act.addr = self.new_addr(act)
        return act

    def recv_addr(self, actor: Actor) -> Addr:
        return actor.addr if actor.addr is not None else self.new_addr(actor)

    def new_user(self, fixed=False, name=None) -> Actor:
        # One wallet, one address type: a user's change looks like the coins it spends.
        kind = USER_KINDS[int(self.rng.random() * len(USER_KINDS))]
        u = Actor("user", name or "user-%06d" % len(self.users), (kind,), self.user_pool)
        if fixed:
            u.addr = self.new_addr(u)
        self.users.append(u)
        return u

    def prehistory(self, addr: Addr, value: int) -> tuple:
        """An output paid before the window: its transaction is not in the files."""
        return ("%064x" % self.rng.getrandbits(256), int(self.rng.random() * 4), value, addr)

    # --- setup
    def _setup_pools(self, pools_data):
        rng = self.rng
        usable = _usable_tags(pools_data)
        self.all_tags = [(i, t.encode("utf-8").lower()) for i, p in enumerate(pools_data) for t in p["tags"] if t]
        by_name = {p["name"]: i for i, p in enumerate(pools_data)}
        chosen: list[int] = []
        plan = []
        for name, style, share, settings in POOL_PLAN:
            i = by_name.get(name)
            if i is None or not usable[i] or i in chosen:
                # A pools file without this pool: take the next pool that has usable tags.
                i = next((j for j in range(len(pools_data)) if usable[j] and j not in chosen), None)
                if i is None:
                    raise ValueError("the pools file has too few pools with distinctive coinbase tags")
            chosen.append(i)
            plan.append((i, style, share, settings))
        self.pools: list[_Pool] = []
        for i, style, share, settings in plan:
            p = _Pool(i, pools_data[i]["name"], style, share, usable[i], settings)
            p.wallet = Actor("pool_wallet", p.name, SERVICE_KINDS)
            real = []
            for text in pools_data[i]["addresses"]:
                a = self._decode_real(text, p.wallet)
                if a is not None:
                    real.append(a)
            if style == "wallet":
                if len(real) > 5:   # a handful to rotate among, not all 37 of AntPool's
                    real = [real[j] for j in sorted(rng.sample(range(len(real)), 5))]
                p.payout_addrs = real or [self.new_addr(p.wallet) for _ in range(3)]
                p.miners = [self.fixed_actor("pool_miner", p.name, USER_KINDS, self.miner_pool)
                            for _ in range(settings["miners"])]
                p.weights = [rng.paretovariate(1.3) for _ in p.miners]
            else:
                p.payout_addrs = real[:1] or [self.new_addr(p.wallet)]
                n_core, n_casual = settings["core"], settings["casual"]
                p.miners = [self.fixed_actor("pool_miner", p.name, USER_KINDS, self.miner_pool)
                            for _ in range(n_core + n_casual)]
                p.weights = [rng.paretovariate(1.2) for _ in p.miners]
                # PPLNS-style: steady miners are in every share window, occasional ones seldom.
                p.incl = [rng.uniform(0.9, 1.0) for _ in range(n_core)] + \
                         [rng.uniform(0.01, 0.12) for _ in range(n_casual)]
            p.wallet.addr = p.payout_addrs[0]
            self.all_miners.extend(p.miners)
            self.pools.append(p)
        self.solo_miners = [self.fixed_actor("solo_miner", "solo-%02d" % (k + 1), USER_KINDS, self.miner_pool)
                            for k in range(N_SOLO_MINERS)]
        self.all_miners.extend(self.solo_miners)
        self.pool_shares = [p.share for p in self.pools] + [SOLO_SHARE]

    def _decode_real(self, text: str, owner: Actor) -> Addr | None:
        try:
            if text.startswith("1") or text.startswith("3"):
                payload = b58check_decode(text)
                if len(payload) != 21 or payload[0] not in (0, 5):
                    return None
                kind = P2PKH if payload[0] == 0 else P2SH
                a = _make_addr(kind, payload[1:], owner, self.rng, text)
            elif text.startswith("bc1q"):
                ver, prog = segwit_decode(text)
                if ver != 0 or len(prog) != 20:
                    return None
                a = _make_addr(P2WPKH, prog, owner, self.rng, text)
            else:
                return None   # taproot/testnet addresses: not among the output types generated
        except ValueError:
            return None
        self.addrs.append(a)
        return a

    def _setup_services(self):
        rng = self.rng
        self.exchanges = []
        for k, (share, wd_int, cons_int) in enumerate(EXCHANGES):
            name = "exchange-%02d" % (k + 1)
            ex = {"name": name, "share": share,
                  "deposits": Actor("exchange", name, SERVICE_KINDS),
                  "hot": self.fixed_actor("exchange", name, SERVICE_KINDS),
                  "cold": self.fixed_actor("exchange", name, (P2SH, P2WPKH)),
                  "wd_int": wd_int, "cons_int": cons_int}
            self.exchanges.append(ex)
        self.ex_cum = _cumulative(ex["share"] for ex in self.exchanges)
        self.gambling = []
        for k, (share, pay_int) in enumerate(GAMBLING):
            name = "gambling-%02d" % (k + 1)
            bets = Actor("gambling", name, (P2PKH, P2SH, P2WPKH))
            bets.addrs = [self.new_addr(bets) for _ in range(3)]
            self.gambling.append({"name": name, "share": share, "bets": bets, "bettors": [],
                                  "hot": self.fixed_actor("gambling", name, SERVICE_KINDS), "pay_int": pay_int})
        self.gm_cum = _cumulative(g["share"] for g in self.gambling)
        self.faucets = []
        for k, (n_claimers, pay_int) in enumerate(FAUCETS):
            name = "faucet-%02d" % (k + 1)
            claimers = [self.new_user(fixed=True) for _ in range(n_claimers)]
            self.faucets.append({"name": name, "wallet": self.fixed_actor("faucet", name, (P2PKH, P2WPKH)),
                                 "claimers": claimers,
                                 "weights": [1.0 / (j + 1) ** 0.7 for j in range(n_claimers)],
                                 "pay_int": pay_int})
        self.processors = []
        for k, (n_merchants, pay_int) in enumerate(PROCESSORS):
            name = "processor-%02d" % (k + 1)
            merchants = [self.new_user(fixed=True, name="merchant-%04d" % (len(self.merchants) + j + 1))
                         for j in range(n_merchants)]
            self.merchants.extend(merchants)
            self.processors.append({"name": name, "invoices": Actor("payment_processor", name, SERVICE_KINDS),
                                    "revenue": self.fixed_actor("payment_processor", name, SERVICE_KINDS),
                                    "merchants": merchants,
                                    "weights": [rng.paretovariate(1.5) for _ in merchants], "pay_int": pay_int,
                                    "share": n_merchants})
        self.pp_cum = _cumulative(pp["share"] for pp in self.processors)

    def schedule(self) -> list[list]:
        """Rhythmic service transactions as [handler, interval_s, phase_s] (phase fixed for the run)."""
        rng = self.rng
        services = []
        for p in self.pools:
            if p.style == "wallet":
                services.append([lambda p=p: self.pool_payout(p), p.settings["payout_hours"] * 3600])
        for ex in self.exchanges:
            services.append([lambda ex=ex: self.exchange_withdrawal(ex), ex["wd_int"]])
            services.append([lambda ex=ex: self.exchange_consolidation(ex), ex["cons_int"]])
        for g in self.gambling:
            services.append([lambda g=g: self.gambling_payout(g), g["pay_int"]])
        for f in self.faucets:
            services.append([lambda f=f: self.faucet_payout(f), f["pay_int"]])
        for pp in self.processors:
            services.append([lambda pp=pp: self.processor_settlement(pp), pp["pay_int"]])
        per_day = sum(SECONDS_PER_DAY / s[1] for s in services)
        cap = MAX_SCHEDULED_SHARE * max(self.tx_per_day - 150, 1)
        stretch = max(1.0, per_day / cap)
        for s in services:
            s[1] = s[1] * stretch
            s.append(rng.uniform(0, s[1]))
        return services

    # --- emission
    def begin_block(self, height, block_hash, ts, month):
        self.height = height
        self.block_hash = block_hash
        self.lines: list[str] = []
        self.txids: list[str] = []
        self.fees = 0
        self.base_sum = 0
        self.size_sum = 0
        self.blk_mid = ('"block_number":%d,"block_hash":"%s","block_timestamp":"%s","is_coinbase":false,"inputs":['
                        % (height, block_hash, ts))
        self.blk_cb_mid = self.blk_mid.replace('"is_coinbase":false', '"is_coinbase":true')
        self.blk_tail = ',"block_timestamp_month":"%s"}' % month
        maturing = self.maturing
        while maturing and maturing[0][0] <= height:
            self._deliver(maturing.popleft()[1])

    def _deliver(self, u):
        o = u[3].owner
        o.utxos.append(u)
        if o.pool is not None and not o.in_pool:
            o.pool.append(o)
            o.in_pool = True

    def emit(self, ins: list, outs: list) -> int:
        """Append one non-coinbase transaction to the block; returns its fee."""
        rng = self.rng
        gr = rng.getrandbits
        txid = "%064x" % gr(256)
        seq = _SEQUENCES[int(rng.random() * 20)]
        parts = []
        base = 0
        wit = 0
        n_legacy = 0
        in_total = 0
        for i, (ptx, pvout, val, a) in enumerate(ins):
            in_total += val
            a.used = True
            kind = a.kind
            if kind == P2PKH:
                # Strict DER (BIP66): no leading zero byte, and a 00 byte before a high bit
                # because DER integers are signed; s is low-S (BIP62).
                r = gr(256) | (1 << 248)
                rh = "%064x" % r
                rlen = 32
                if r >> 255:
                    rh = "00" + rh
                    rlen = 33
                der = "30%02x02%02x%s0220%064x" % (rlen + 36, rlen, rh, gr(254) | (1 << 248))
                dlen = rlen + 38
                parts.append(_IN_P2PKH_JSON % (i, ptx, pvout, der, a.key, dlen + 1, der, a.key, seq, a.s, val))
                base += 41 + dlen + 36
                n_legacy += 1
            elif kind == P2SH:
                parts.append(_IN_P2SH_JSON % (i, ptx, pvout, a.key, a.key, seq, a.s, val))
                base += 64
                wit += 108
            else:
                parts.append(_IN_P2WPKH_JSON % (i, ptx, pvout, seq, a.s, val))
                base += 41
                wit += 108
        oparts = []
        out_total = 0
        for j, (a, v) in enumerate(outs):
            oparts.append(_OUT_JSON[a.kind] % (j, a.h, a.h, a.s, v) if a.special is None
                          else '{"index":%d,%s%d}' % (j, a.special, v))
            out_total += v
            base += a.out_size
            a.used = True
            o = a.owner
            if o is not None:
                o.utxos.append((txid, j, v, a))
                if o.pool is not None and not o.in_pool:
                    o.pool.append(o)
                    o.in_pool = True
        fee = in_total - out_total
        if fee <= 0 or not ins:
            raise AssertionError(f"generator bug: fee {fee} for {len(ins)} inputs")
        nin, nout = len(ins), len(outs)
        base += 8 + _varint_len(nin) + _varint_len(nout)
        if wit:
            wit += 2 + n_legacy
        size = base + wit
        vsize = (4 * base + wit + 3) // 4
        lock = 0
        if rng.random() < 0.55:    # Core's anti-fee-sniping: lock_time = tip height, sometimes a bit less
            lock = self.height - (rng.randrange(3) if rng.random() < 0.1 else 0)
        self.lines.append(
            '{"hash":"%s","size":%d,"virtual_size":%d,"version":%d,"lock_time":%d,%s%s],"outputs":[%s],'
            '"input_count":%d,"output_count":%d,"input_value":%d,"output_value":%d,"fee":%d%s'
            % (txid, size, vsize, 2 if rng.random() < 0.8 else 1, lock, self.blk_mid, ",".join(parts),
               ",".join(oparts), nin, nout, in_total, out_total, fee, self.blk_tail))
        self.txids.append(txid)
        self.fees += fee
        self.base_sum += base
        self.size_sum += size
        return fee

    def feerate(self) -> float:
        return self.day_feerate * (0.4 + 1.2 * self.rng.random())

    @staticmethod
    def est_vsize(ins, outs) -> int:
        return 11 + sum(_IN_VBYTES[u[3].kind] for u in ins) + sum(a.out_size for a, _ in outs)

    # --- picking coins
    def pick_user(self):
        pool = self.user_pool
        rng = self.rng
        while pool:
            i = int(rng.random() * len(pool))
            u = pool[i]
            if u.utxos:
                return u
            pool[i] = pool[-1]
            pool.pop()
            u.in_pool = False
        return None

    @staticmethod
    def take(actor: Actor, n: int, rng) -> list:
        utxos = actor.utxos
        out = []
        for _ in range(min(n, len(utxos))):
            k = int(rng.random() * len(utxos))
            out.append(utxos[k])
            utxos[k] = utxos[-1]
            utxos.pop()
        return out

    def user_inputs(self, n: int):
        rng = self.rng
        u = self.pick_user() if rng.random() >= P_PREHISTORY else None
        if u is not None:
            return u, self.take(u, n, rng)
        if self.users and rng.random() < 0.6:
            u = self.users[int(rng.random() * len(self.users))]
        else:
            u = self.new_user()
        ins = [self.prehistory(self.recv_addr(u), int(10 ** rng.uniform(4.5, 8.3)))
               for _ in range(1 if rng.random() < 0.75 else 2)]
        return u, ins

    def top_up(self, actor: Actor, ins: list, need: int, lo=5.0, hi=7.0):
        """Adds one pre-window coin of the same owner when the picked ones cannot pay `need`."""
        if sum(u[2] for u in ins) < need:
            ins.append(self.prehistory(self.recv_addr(actor), need + int(10 ** self.rng.uniform(lo, hi))))

    def random_user(self) -> Actor:
        rng = self.rng
        if self.users and rng.random() < 0.55:
            return self.users[int(rng.random() * len(self.users))]
        return self.new_user()

    def exchange_deposit_addr(self, payer: Actor) -> Addr:
        rng = self.rng
        if payer.dep is not None and rng.random() < 0.5:
            return payer.dep
        ex = self.exchanges[_pick(rng, self.ex_cum)]
        payer.dep = self.new_addr(ex["deposits"])
        return payer.dep

    # --- organic transactions
    def organic(self, flag=None):
        rng = self.rng
        if flag is not None:
            return self.user_spend("pay", flag)
        r = rng.random()
        for threshold, kind in _ORGANIC:
            if r < threshold:
                break
        if kind == "miner":
            return self.miner_spend()
        if kind == "consolidate":
            return self.user_consolidation()
        return self.user_spend(kind)

    def user_spend(self, kind: str, flag=None):
        rng = self.rng
        payer, ins = self.user_inputs((1, 1, 1, 1, 2, 2, 3)[int(rng.random() * 7)])
        fr = self.feerate()
        change_addr = self.recv_addr(payer)
        n_rec = 1
        if kind == "pay":
            if rng.random() < 0.06:
                n_rec = rng.randint(2, 4)
            recs = []
            for _ in range(n_rec):
                r = rng.random()
                if r < 0.1 and self.merchants:
                    rec = self.merchants[int(r * 10 * len(self.merchants))]
                else:
                    rec = self.random_user()
                if rec is payer:
                    rec = self.new_user()
                recs.append(self.recv_addr(rec))
            cap = None
        elif kind == "deposit":
            recs = [self.exchange_deposit_addr(payer)]
            cap = None
        elif kind == "bet":
            g = self.gambling[_pick(rng, self.gm_cum)]
            bets = g["bets"]
            recs = [bets.addrs[rng.randrange(len(bets.addrs))]]
            bettors = g["bettors"]
            bettors.append(ins[0][3])      # sites pay wins back to the address the bet came from
            if len(bettors) > 2000:
                del bettors[:1000]
            cap = int(10 ** rng.uniform(4.0, 6.5))
        else:   # invoice
            pp = self.processors[_pick(rng, self.pp_cum)]
            recs = [self.new_addr(pp["invoices"])]
            cap = int(10 ** rng.uniform(4.3, 7.0))
        extra = []
        if flag == "op_return":
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(8, 80)))
            script = b"\x6a" + _push(data)
            extra.append((_special_addr(script, "OP_RETURN " + data.hex(), "nonstandard",
                                        [_nonstandard_address(script)], None), 0))
        elif flag == "multisig":
            extra.append((self.bare_multisig(payer), rng.randint(1000, 8000)))
        n_out = len(recs) + 1 + len(extra)
        fee = int(self.est_vsize(ins, [(a, 0) for a in recs] + [(change_addr, 0)] + extra) * fr) + 1
        need = fee + (n_out + 2) * DUST + sum(v for _, v in extra) + (cap or 0)
        if len(ins) >= 3 and sum(u[2] for u in ins) < need:
            # Users spend 1-3 coins: put the smallest back before adding a bigger one.
            ins.sort(key=lambda u: (u[2], u[0], u[1]))
            self._deliver(ins.pop(0))
        self.top_up(payer, ins, need)
        avail = sum(u[2] for u in ins) - fee - sum(v for _, v in extra)
        if cap is not None:
            pay = min(cap, avail - DUST)
        elif kind == "deposit" and rng.random() < 0.3:
            pay = avail       # "send all" to the exchange: no change
        else:
            pay = int(avail * rng.uniform(0.05, 0.95))
        pay = max(pay, DUST * n_rec)
        change = avail - pay
        outs = []
        left = pay
        for k, a in enumerate(recs):
            v = left if k == len(recs) - 1 else max(DUST, int(pay * rng.uniform(0.1, 0.6) / len(recs)))
            left -= v
            outs.append((a, v))
        if change >= DUST:
            outs.append((change_addr, change))
        outs.extend(extra)
        rng.shuffle(outs)
        self.emit(ins, outs)

    def bare_multisig(self, owner: Actor) -> Addr:
        rng = self.rng
        n = rng.choice((2, 3, 3))
        m = 1 if rng.random() < 0.8 else 2
        keys = [bytes([2 + rng.getrandbits(1)]) + rng.getrandbits(256).to_bytes(32, "big") for _ in range(n)]
        script = bytes([0x50 + m]) + b"".join(_push(k) for k in keys) + bytes([0x50 + n, 0xAE])
        asm = " ".join([str(m)] + [k.hex() for k in keys] + [str(n), "OP_CHECKMULTISIG"])
        # bitcoin-etl lists one P2PKH address per key of a bare multisig output.
        addresses = [b58check_encode(b"\x00" + _ripemd160(hashlib.sha256(k).digest())) for k in keys]
        a = _special_addr(script, asm, "multisig", addresses, m)
        self.extra_truth.append((a.s, owner.role, owner.name))
        return a

    def user_consolidation(self):
        rng = self.rng
        u = self.pick_user()
        if u is None or len(u.utxos) < 2:
            return self.user_spend("pay")
        ins = self.take(u, rng.randint(2, 10), rng)
        dest = self.recv_addr(u)
        fee = int(self.est_vsize(ins, [(dest, 0)]) * self.feerate()) + 1
        self.top_up(u, ins, fee + DUST)
        self.emit(ins, [(dest, sum(x[2] for x in ins) - fee)])

    def miner_spend(self):
        rng = self.rng
        pool = self.miner_pool
        m = None
        if rng.random() < 0.85:
            while pool:
                i = rng.randrange(len(pool))
                if pool[i].utxos:
                    m = pool[i]
                    break
                pool[i].in_pool = False
                pool[i] = pool[-1]
                pool.pop()
        if m is None:
            m = self.all_miners[rng.randrange(len(self.all_miners))]
            ins = [self.prehistory(m.addr, int(10 ** rng.uniform(5.5, 8.0)))]
        else:
            ins = self.take(m, rng.randint(1, 25), rng)
        if m.dep is None:     # a miner sells on one exchange, through one deposit address
            m.dep = self.new_addr(self.exchanges[_pick(rng, self.ex_cum)]["deposits"])
        fee = int(self.est_vsize(ins, [(m.dep, 0), (m.addr, 0)]) * self.feerate()) + 1
        self.top_up(m, ins, fee + 3 * DUST)
        avail = sum(u[2] for u in ins) - fee
        pay = avail if rng.random() < 0.7 else max(DUST, int(avail * rng.uniform(0.2, 0.9)))
        if avail - pay < DUST:
            outs = [(m.dep, avail)]
        else:     # change back to the payout address: miners keep the one the pool knows
            outs = [(m.dep, pay), (m.addr, avail - pay)]
        self.emit(ins, outs)

    # --- rhythmic service transactions
    def pool_payout(self, p: _Pool):
        rng = self.rng
        n_m = len(p.miners)
        k = n_m if n_m <= 100 else rng.randint(100, min(300, n_m))
        chosen = _weighted_sample(rng, n_m, p.weights, k)
        interval = p.settings["payout_hours"] * 3600
        amount = int(p.share / 100 * interval / 600 * (subsidy(self.height) + 2e7) * 0.97)
        w = [p.weights[i] for i in chosen]
        wsum = sum(w)
        outs = [(p.miners[i].addr, max(DUST * 2, int(amount * wi / wsum))) for i, wi in zip(chosen, w)]
        amount = sum(v for _, v in outs)
        fr = self.feerate() * 0.6      # batch payouts are not in a hurry
        ins = []
        have = 0
        utxos = p.wallet.utxos
        out_vsize = 11 + sum(a.out_size for a, _ in outs) + 34
        # Oldest first: matured coinbases, then earlier change.
        while utxos and len(ins) < 50 and have < amount + int((out_vsize + 150 * (len(ins) + 1)) * fr) + DUST:
            ins.append(utxos.pop(0))
            have += ins[-1][2]
        fee = int((self.est_vsize(ins, outs) + 34) * fr) + 1
        if have < amount + fee + DUST:
            ins.append(self.prehistory(p.payout_addrs[0], amount + fee + int(amount * rng.uniform(0.2, 2.0))))
            fee = int((self.est_vsize(ins, outs) + 34) * fr) + 1
        outs.append((p.payout_addrs[0], sum(u[2] for u in ins) - amount - fee))
        self.emit(ins, outs)

    def exchange_withdrawal(self, ex):
        rng = self.rng
        n = rng.randint(10, 80)
        outs = []
        for _ in range(n):
            r = rng.random()
            if r < 0.1:
                a = self.new_addr(self.exchanges[int(r * 10 * len(self.exchanges))]["deposits"])
            else:
                a = self.recv_addr(self.random_user())
            outs.append((a, int(10 ** rng.uniform(5.0, 8.0))))
        amount = sum(v for _, v in outs)
        hot = ex["hot"]
        fr = self.feerate()
        fee = int((self.est_vsize([], outs) + 2 * 91 + 34) * fr) + 1
        need = amount + fee + DUST
        ins = []
        if hot.utxos:
            hot.utxos.sort(key=lambda u: (-u[2], u[0], u[1]))
            if hot.utxos[0][2] >= need:
                ins = [hot.utxos.pop(0)]
            elif len(hot.utxos) > 1 and hot.utxos[0][2] + hot.utxos[1][2] >= need:
                ins = [hot.utxos.pop(0), hot.utxos.pop(0)]
        if not ins:   # refilled from cold storage before the window
            ins = [self.prehistory(hot.addr, need + int(need * rng.uniform(2, 10)))]
        change = sum(u[2] for u in ins) - amount - fee
        outs.append((hot.addr, change))
        rng.shuffle(outs)
        self.emit(ins, outs)

    def exchange_consolidation(self, ex):
        rng = self.rng
        dep = ex["deposits"]
        n = rng.randint(20, 150)
        ins = dep.utxos[:n]
        del dep.utxos[:n]
        while len(ins) < 10:
            ins.append(self.prehistory(self.new_addr(dep), int(10 ** rng.uniform(5, 7.5))))
        dest = ex["hot"].addr if rng.random() < 0.8 else ex["cold"].addr
        fee = int(self.est_vsize(ins, [(dest, 0)]) * self.feerate() * 0.5) + 1
        self.top_up(dep, ins, fee + DUST)
        self.emit(ins, [(dest, sum(u[2] for u in ins) - fee)])

    def gambling_payout(self, g):
        rng = self.rng
        bettors = g["bettors"]
        recent = bettors[-300:]
        winners: dict = {}
        for _ in range(rng.randint(5, 40)):
            if recent and rng.random() < 0.9:
                a = recent[rng.randrange(len(recent))]
            else:
                a = self.recv_addr(self.random_user())
            winners.setdefault(a.s, a)
        outs = [(a, int(10 ** rng.uniform(4.3, 6.5))) for a in winners.values()]
        amount = sum(v for _, v in outs)
        bets = g["bets"]
        ins = bets.utxos[:30]
        del bets.utxos[:30]
        hot = g["hot"]
        fr = self.feerate()
        fee = int((self.est_vsize(ins, outs) + 34 + 91) * fr) + 1
        if sum(u[2] for u in ins) < amount + fee + DUST:
            ins.extend(self.take(hot, 2, rng))
        self.top_up(hot, ins, amount + fee + DUST, 6.0, 7.5)
        change = sum(u[2] for u in ins) - amount - fee
        outs.append((hot.addr, change))
        rng.shuffle(outs)
        self.emit(ins, outs)

    def faucet_payout(self, f):
        rng = self.rng
        claimers = f["claimers"]
        idx = _weighted_sample(rng, len(claimers), f["weights"], min(len(claimers), rng.randint(20, 100)))
        outs = [(claimers[i].addr, rng.randint(600, 5000)) for i in idx]
        amount = sum(v for _, v in outs)
        wallet = f["wallet"]
        ins = self.take(wallet, 3, rng)
        fee = int((self.est_vsize(ins, outs) + 34 + 68) * self.feerate()) + 1
        self.top_up(wallet, ins, amount + fee + DUST, 6.0, 7.3)   # donations/top-ups before the window
        outs.append((wallet.addr, sum(u[2] for u in ins) - amount - fee))
        self.emit(ins, outs)

    def processor_settlement(self, pp):
        rng = self.rng
        inv = pp["invoices"]
        ins = inv.utxos[:200]
        del inv.utxos[:200]
        while len(ins) < 3:
            ins.append(self.prehistory(self.new_addr(inv), int(10 ** rng.uniform(4.5, 7.0))))
        merchants = pp["merchants"]
        idx = _weighted_sample(rng, len(merchants), pp["weights"], min(len(merchants), rng.randint(5, 40)))
        total = sum(u[2] for u in ins)
        outs_m = [(merchants[i].addr, 0) for i in idx]
        fee = int(self.est_vsize(ins, outs_m + [(pp["revenue"].addr, 0)]) * self.feerate() * 0.7) + 1
        revenue = max(DUST, total // 100)
        distributable = total - fee - revenue
        if distributable < 10 * DUST * len(idx):
            ins.append(self.prehistory(self.new_addr(inv), DUST * len(idx) * 20 + fee + revenue))
            total = sum(u[2] for u in ins)
            distributable = total - fee - revenue
        w = [pp["weights"][i] for i in idx]
        wsum = sum(w)
        vals = [max(DUST, int(distributable * wi / wsum)) for wi in w]
        vals[0] += distributable - sum(vals)
        if vals[0] < DUST:
            raise AssertionError("generator bug: settlement split")
        outs = [(a, v) for (a, _), v in zip(outs_m, vals)] + [(pp["revenue"].addr, revenue)]
        self.emit(ins, outs)

    # --- coinbase
    def coinbase_script(self, pool_idx: int | None, tag: str | None) -> bytes:
        rng = self.rng
        head = bip34_height_push(self.height)
        for _ in range(1000):
            filler = bytes(_FILLER[rng.randrange(len(_FILLER))] for _ in range(8))
            extra = bytes(_FILLER[rng.randrange(len(_FILLER))] for _ in range(4))
            body = _push(tag.encode("utf-8")) if tag is not None else b""
            script = head + body + _push(filler) + _push(extra)
            if not self._foreign_tag(script, pool_idx):
                return script
        raise AssertionError("generator bug: cannot build a coinbase script free of foreign tags")

    def _foreign_tag(self, script: bytes, pool_idx) -> bool:
        variants = (script.lower(), bytes(b for b in script if b < 128).lower())
        for i, t in self.all_tags:
            if i != pool_idx and (t in variants[0] or t in variants[1]):
                return True
        return False

    def coinbase(self, slot: int, day_counts: dict) -> str:
        rng = self.rng
        total = subsidy(self.height) + self.fees
        if slot < len(self.pools):
            p = self.pools[slot]
            ascii_tags = [t for t in p.tags if t.isascii()]
            tags = ascii_tags if ascii_tags and rng.random() < 0.85 else p.tags
            tag = tags[rng.randrange(len(tags))]
            script = self.coinbase_script(p.idx, tag)
            if p.style == "wallet":
                addrs = p.payout_addrs
                a = addrs[0] if rng.random() < 0.5 else addrs[rng.randrange(len(addrs))]
                if len(addrs) > 1 and rng.random() < 0.2:
                    b = addrs[(addrs.index(a) + 1) % len(addrs)]
                    part = int(total * rng.uniform(0.5, 0.95))
                    outs = [(a, part), (b, total - part)]
                else:
                    outs = [(a, total)]
            else:
                outs = self.direct_outputs(p, total)
        else:
            p = None
            script = self.coinbase_script(None, None)
            outs = [(self.solo_miners[rng.randrange(len(self.solo_miners))].addr, total)]
        commitment = b"\x6a\x24\xaa\x21\xa9\xed" + rng.getrandbits(256).to_bytes(32, "big")
        outs.append((_special_addr(commitment, "OP_RETURN " + commitment[2:].hex(), "nonstandard",
                                   [_nonstandard_address(commitment)], None), 0))
        txid = "%064x" % rng.getrandbits(256)
        oparts = []
        base = 0
        mature_at = self.height + COINBASE_MATURITY
        for j, (a, v) in enumerate(outs):
            oparts.append(_render_output(j, a, v))
            base += a.out_size
            a.used = True
            if a.owner is not None:
                self.maturing.append((mature_at, (txid, j, v, a)))
                if p is not None:
                    key = (p.idx, a.s)
                    day_counts[key] = day_counts.get(key, 0) + 1
        base += 4 + 1 + (41 + len(script)) + _varint_len(len(outs)) + 4
        wit = 2 + 34     # marker/flag and the witness reserved value
        size = base + wit
        self.lines.insert(0, '{"hash":"%s","size":%d,"virtual_size":%d,"version":%d,"lock_time":0,%s],"outputs":[%s],'
                          '"input_count":0,"output_count":%d,"input_value":0,"output_value":%d,"fee":0%s'
                          % (txid, size, (4 * base + wit + 3) // 4, 2 if rng.random() < 0.7 else 1, self.blk_cb_mid,
                             ",".join(oparts), len(outs), total, self.blk_tail))
        self.txids.insert(0, txid)
        self.base_sum += base
        self.size_sum += size
        return script.hex()

    def direct_outputs(self, p: _Pool, total: int) -> list:
        rng = self.rng
        n = len(p.miners)
        inc = [i for i in range(n) if rng.random() < p.incl[i]]
        if len(inc) > DIRECT_MAX_OUTPUTS:
            inc = sorted(rng.sample(inc, DIRECT_MAX_OUTPUTS))
        if len(inc) < DIRECT_MIN_OUTPUTS:
            taken = set(inc)
            rest = [i for i in range(n) if i not in taken]
            inc = sorted(inc + rng.sample(rest, DIRECT_MIN_OUTPUTS - len(inc)))
        fee_out = int(total * p.settings["fee"])
        to_miners = total - fee_out
        w = [p.weights[i] for i in inc]
        wsum = sum(w)
        vals = [max(1000, int(to_miners * wi / wsum)) for wi in w]
        top = max(range(len(vals)), key=lambda k: (vals[k], -k))
        vals[top] += to_miners - sum(vals)
        outs = [(p.miners[i].addr, v) for i, v in zip(inc, vals)]
        if fee_out:
            outs.append((p.payout_addrs[0], fee_out))
        return outs

    def merkle_root(self) -> str:
        level = [bytes.fromhex(t)[::-1] for t in self.txids]
        while len(level) > 1:
            if len(level) % 2:
                level.append(level[-1])
            level = [sha256d(level[k] + level[k + 1]) for k in range(0, len(level), 2)]
        return level[0][::-1].hex()


# ---------------------------------------------------------------- files
class _AtomicGzip:
    """A gzip file written under a temporary name and renamed into place on close."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        self.raw = open(self.tmp, "wb")
        # Fixed header (no name, mtime 0): same arguments give byte-identical files.
        self.gz = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=3)
        self.buf = io.TextIOWrapper(self.gz, encoding="utf-8", newline="\n")

    def write_lines(self, lines: list[str]):
        if lines:
            self.buf.write("\n".join(lines))
            self.buf.write("\n")

    def commit(self):
        self.buf.close()
        self.raw.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        for f in (self.buf, self.raw):
            try:
                f.close()
            except Exception:   # closing after a failure must not hide the failure
                pass
        self.tmp.unlink(missing_ok=True)


def _write_text_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


_BITS_BY_HALVING_ERA = ("1d00ffff", "181bc330", "17148edf", "17034219", "1702f128", "17020000")


def _bits(height: int) -> str:
    # Compact difficulty: fixed per 2016-block retarget period, plausible for its era.
    era = _BITS_BY_HALVING_ERA[min(height // 210000, len(_BITS_BY_HALVING_ERA) - 1)]
    if era == "1d00ffff":
        return era
    mant = int(era[2:], 16)
    period = height // 2016
    mant = max(0x010000, min(0x7FFFFF, mant + ((period * 2654435761) % 0x8000) - 0x4000))
    return era[:2] + "%06x" % mant


class _DayPlan:
    """What one day holds before any transaction is made: block times and miners, and which
    rhythmic service transactions and how many organic ones go into each block."""

    def __init__(self, chain: _Chain, services: list, d: int, n_blocks: int, tx_per_day: int):
        rng = chain.rng
        self.times = sorted(rng.sample(range(SECONDS_PER_DAY), n_blocks))
        # Exact per-day quotas, shuffled: every day shows the same hash-share skew.
        self.slots = []
        for k, q in enumerate(_largest_remainder(n_blocks, chain.pool_shares)):
            self.slots.extend([k] * q)
        rng.shuffle(self.slots)
        t0, t1 = d * SECONDS_PER_DAY, (d + 1) * SECONDS_PER_DAY
        events = []
        for k, (handler, interval, phase) in enumerate(services):
            j = max(0, int((t0 - phase) // interval))
            while phase + j * interval < t1:
                if phase + j * interval >= t0:
                    events.append((phase + j * interval - t0, k, handler))
                j += 1
        events.sort(key=lambda e: (e[0], e[1]))
        budget = tx_per_day - n_blocks
        events = events[:budget]
        self.events = [[] for _ in range(n_blocks)]
        for t, _, handler in events:    # an event goes into the first block found after it
            self.events[min(bisect.bisect_left(self.times, t), n_blocks - 1)].append(handler)
        organic = budget - len(events)
        # The longer since the previous block, the more transactions waited for this one.
        gaps = [self.times[0] + 300] + [max(1, self.times[k] - self.times[k - 1]) for k in range(1, n_blocks)]
        self.organic = _largest_remainder(organic, gaps)
        self.flags = {}
        for i in rng.sample(range(organic), min(organic, max(3, organic // OP_RETURN_EVERY))):
            self.flags[i] = "op_return"
        for i in rng.sample(range(organic), min(organic, max(2, organic // MULTISIG_EVERY))):
            self.flags.setdefault(i, "multisig")


def _write_day(chain: _Chain, plan: _DayPlan, day: datetime.date, height: int, day_dir: Path,
               blocks_per_pool: dict, pool_names: list) -> tuple[int, dict]:
    """Make and write one day's blocks; returns (transactions written, coinbase outputs per (pool, address))."""
    rng = chain.rng
    day_dir.mkdir(parents=True, exist_ok=True)
    fb = _AtomicGzip(day_dir / "blocks.ndjson.gz")
    ft = _AtomicGzip(day_dir / "transactions.ndjson.gz")
    day_counts: dict = {}
    month = day.replace(day=1).isoformat()
    organic_index = 0
    n_tx = 0
    try:
        for b, sec in enumerate(plan.times):
            ts = "%s %02d:%02d:%02d UTC" % (day.isoformat(), sec // 3600, sec // 60 % 60, sec % 60)
            block_hash = "0000000000000000000%045x" % rng.getrandbits(178)
            chain.begin_block(height, block_hash, ts, month)
            todo = plan.events[b] + [None] * plan.organic[b]
            rng.shuffle(todo)
            for handler in todo:
                if handler is None:
                    chain.organic(plan.flags.get(organic_index))
                    organic_index += 1
                else:
                    handler()
            coinbase_param = chain.coinbase(plan.slots[b], day_counts)
            blocks_per_pool[pool_names[plan.slots[b]]] += 1
            ntx = len(chain.txids)
            stripped = 80 + _varint_len(ntx) + chain.base_sum
            size = 80 + _varint_len(ntx) + chain.size_sum
            # Half the blocks roll version bits (overt ASICBoost), as on mainnet.
            version = 0x20000000 if rng.random() < 0.5 else 0x20000000 | (rng.getrandbits(16) << 13)
            ft.write_lines(chain.lines)
            fb.write_lines(['{"hash":"%s","size":%d,"stripped_size":%d,"weight":%d,"number":%d,"version":%d,'
                            '"merkle_root":"%s","timestamp":"%s","nonce":"%x","bits":"%s","coinbase_param":"%s",'
                            '"transaction_count":%d,"timestamp_month":"%s"}'
                            % (block_hash, size, stripped, 3 * stripped + size, height, version,
                               chain.merkle_root(), ts, rng.getrandbits(32), _bits(height), coinbase_param,
                               ntx, month)])
            n_tx += ntx
            height += 1
        fb.commit()
        ft.commit()
    except BaseException:
        fb.abort()
        ft.abort()
        raise
    return n_tx, day_counts


def _write_ground_truth(chain: _Chain, path: Path) -> list[tuple[str, str, str]]:
    truth = [(a.s, a.owner.role, a.owner.name) for a in chain.addrs if a.used] + chain.extra_truth
    truth.sort()
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("address", "role", "actor"))
    w.writerows(truth)
    _write_text_atomic(path, buf.getvalue())
    return truth


def generate(out_dir, start_date: datetime.date, days: int, tx_per_day: int, seed: int = 7,
             pools_path=None) -> dict:
    """Write `days` days of blocks and transactions from `start_date` under `out_dir`; returns a summary."""
    if isinstance(start_date, str):
        start_date = datetime.date.fromisoformat(start_date)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if tx_per_day < 150:
        raise ValueError(f"tx_per_day must be >= 150 (one coinbase for each of up to 150 blocks a day), "
                         f"got {tx_per_day}")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    pools_data = load_pools(pools_path or DEFAULT_POOLS_PATH)
    block_counts = [144 + rng.randint(-6, 6) for _ in range(days)]
    first_height = height = start_height(start_date, block_counts)
    chain = _Chain(rng, pools_data, tx_per_day)
    services = chain.schedule()
    pool_names = [p.name for p in chain.pools] + [SOLO]
    blocks_per_pool = {name: 0 for name in pool_names}
    per_day_20 = []
    run_counts: dict = {}
    n_tx_total = 0
    for d in range(days):
        day = start_date + datetime.timedelta(days=d)
        chain.day_feerate = rng.uniform(5, 40)
        plan = _DayPlan(chain, services, d, block_counts[d], tx_per_day)
        n_tx, day_counts = _write_day(chain, plan, day, height, out_dir / day.isoformat(), blocks_per_pool,
                                      pool_names)
        height += block_counts[d]
        n_tx_total += n_tx
        per_day_20.append(sum(1 for c in day_counts.values() if c >= 20))
        for key, c in day_counts.items():
            run_counts[key] = run_counts.get(key, 0) + c
    truth = _write_ground_truth(chain, out_dir / "ground_truth" / "address_roles.csv")
    roles = {r: 0 for r in ROLES}
    for _, role, _ in truth:
        roles[role] += 1
    idx_to_name = {p.idx: p.name for p in chain.pools}
    per_pool_20 = {p.name: 0 for p in chain.pools}
    for (idx, _), c in run_counts.items():
        if c >= 20:
            per_pool_20[idx_to_name[idx]] += 1
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "start_date": start_date.isoformat(),
        "days": days,
        "blocks": sum(block_counts),
        "first_block": first_height,
        "last_block": height - 1,
        "transactions": n_tx_total,
        "blocks_per_pool": blocks_per_pool,
        "pool_payout_style": {p.name: p.style for p in chain.pools},
        "addresses_per_role": roles,
        "addresses": len(truth),
        "coinbase_20plus_addresses": {
            "rule": "distinct addresses paid >= 20 coinbase outputs by blocks tagged with one pool's tag",
            "total": sum(per_pool_20.values()),
            "per_pool": per_pool_20,
            "per_day": per_day_20,
        },
    }


def main(argv: list[str] | None = None) -> int:
    # Named as before the package split: argparse would otherwise say "__main__.py".
    parser = argparse.ArgumentParser(prog="synthetic_chain.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per day)")
    parser.add_argument("--start", required=True, type=datetime.date.fromisoformat, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--tx-per-day", type=int, default=20000, help="transactions a day, coinbases included")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pools", type=Path, default=None, help=f"pools-v2.json (default: {DEFAULT_POOLS_PATH})")
    args = parser.parse_args(argv)
    summary = generate(args.out, args.start, args.days, args.tx_per_day, args.seed, args.pools)
    print(json.dumps(summary, indent=2))
    return 0

