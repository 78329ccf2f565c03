"""Byte-level Bitcoin: double SHA-256, base58check and bech32 addresses, RIPEMD-160, script pushes and
the BIP34 height push."""
from __future__ import annotations

import hashlib

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


# RIPEMD-160's message word order (R), rotations (S) and constants (K), left and right lines.
_RMD_R1 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5,
           2, 14, 11, 8, 3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12, 1, 9, 11, 10, 0, 8, 12, 4,
           13, 3, 7, 15, 14, 5, 6, 2, 4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13)
_RMD_R2 = (5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12, 6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12,
           4, 9, 1, 2, 15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13, 8, 6, 4, 1, 3, 11, 15, 0,
           5, 12, 2, 13, 9, 7, 10, 14, 12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11)
_RMD_S1 = (11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8, 7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9,
           11, 7, 13, 12, 11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5, 11, 12, 14, 15, 14,
           15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12, 9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6)
_RMD_S2 = (8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6, 9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7,
           6, 15, 13, 11, 9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5, 15, 5, 8, 11, 14, 14,
           6, 14, 6, 9, 12, 9, 12, 5, 15, 8, 8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11)
_RMD_K1 = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_RMD_K2 = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)


def _rol(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def _rmd_f(j, x, y, z):
    if j < 16:
        return x ^ y ^ z
    if j < 32:
        return (x & y) | (~x & z)
    if j < 48:
        return (x | ~y) ^ z
    if j < 64:
        return (x & z) | (y & ~z)
    return x ^ (y | ~z)


def _ripemd160(data: bytes) -> bytes:
    """Pure-Python RIPEMD-160: hashlib's depends on the OpenSSL build, output must not."""
    # Local names: the 80-round loop below runs for every key of every bare multisig output.
    r1, r2, s1, s2, k1, k2 = _RMD_R1, _RMD_R2, _RMD_S1, _RMD_S2, _RMD_K1, _RMD_K2
    rol, f = _rol, _rmd_f
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
