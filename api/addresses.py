"""What a string given as an address is: a mainnet address the dataset can hold, or, said by name,
what else it is (a testnet address, a private key, a transaction id, a malformed string).

An address key of `crypto_bitcoin` is the comma-joined `addresses` of one output or input: one
address, several (bare multisig), or the dataset's `nonstandard<40 hex>` form for a script with no
address. Each part is checked: base58check with a mainnet version byte (P2PKH 0x00, P2SH 0x05),
or segwit bech32 (witness v0, BIP 173) / bech32m (v1+, taproot, BIP 350) with the `bc` prefix.
Checksums and encodings come from embit; no network is asked.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from embit import base58, bech32

MAX_LENGTH = 2_000  # the longest key the dataset has is a 20-of-20 bare multisig (~700 chars)
_NONSTANDARD = re.compile(r"nonstandard[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")

_BASE58_VERSIONS = {
    0x00: ("mainnet", "P2PKH address"),
    0x05: ("mainnet", "P2SH address"),
    0x6F: ("testnet", "testnet P2PKH address"),
    0xC4: ("testnet", "testnet P2SH address"),
}
_EXTENDED_KEYS = {
    bytes.fromhex("0488b21e"): "an extended public key (xpub), not an address",
    bytes.fromhex("0488ade4"): "an extended private key (xprv), not an address: keep it secret",
    bytes.fromhex("049d7cb2"): "an extended public key (ypub), not an address",
    bytes.fromhex("04b24746"): "an extended public key (zpub), not an address",
    bytes.fromhex("043587cf"): "a testnet extended public key (tpub), not an address",
    bytes.fromhex("04358394"): "a testnet extended private key (tprv), not an address: keep it secret",
}
_TESTNET_HRPS = {"tb": "testnet", "bcrt": "regtest", "sb": "signet"}


class AddressError(ValueError):
    """A string that is not a mainnet address; `kind` says what it is instead."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Address:
    """A checked address key: its text as the dataset spells it (bech32 in lower case) and the
    kind of each part."""

    text: str
    kinds: tuple[str, ...]


def _base58(part: str) -> str:
    """The kind of a base58check mainnet address; AddressError otherwise."""
    if len(part) < 26:
        raise AddressError("malformed", f"{part!r} is too short for an address ({len(part)} characters; a "
                           "base58 address has 26 to 35, a bech32 one starts with bc1)")
    try:
        payload = base58.decode_check(part)
    except (ValueError, IndexError, KeyError):
        raise AddressError("malformed", f"{part!r} looks like base58 but its checksum does not match "
                           "(a typo, or a truncated copy): check the address") from None
    if len(payload) == 78 and payload[:4] in _EXTENDED_KEYS:
        raise AddressError("extended_key", f"{part[:8]}… is {_EXTENDED_KEYS[payload[:4]]}")
    if payload[:1] in (b"\x80", b"\xef") and len(payload) in (33, 34):
        net = "mainnet" if payload[0] == 0x80 else "testnet"
        raise AddressError("private_key", f"{part[:4]}… is a {net} WIF private key, not an address: "
                           "do not share it; look up the address it pays to instead")
    if len(payload) != 21 or payload[0] not in _BASE58_VERSIONS:
        raise AddressError("malformed", f"{part!r} is valid base58check but not an address "
                           f"(version byte 0x{payload[0]:02x}, {len(payload)} bytes; an address has "
                           "0x00 or 0x05 and 21 bytes)")
    net, kind = _BASE58_VERSIONS[payload[0]]
    if net != "mainnet":
        raise AddressError("testnet", f"{part!r} is a {kind}; this service knows mainnet addresses only")
    return kind


def _bech32(part: str) -> str:
    """The kind of a segwit mainnet address; AddressError otherwise."""
    if part != part.lower() and part != part.upper():
        raise AddressError("malformed", f"{part!r} mixes upper and lower case, which bech32 forbids")
    lowered = part.lower()
    if lowered.startswith(("lnbc", "lntb")):
        raise AddressError("lightning_invoice", f"{part[:10]}… is a Lightning invoice, not an on-chain address")
    encoding, hrp, data = bech32.bech32_decode(lowered)
    if encoding is None:
        raise AddressError("malformed", f"{part!r} is not valid bech32/bech32m (bad checksum, character or "
                           "length): check the address")
    if hrp in _TESTNET_HRPS:
        raise AddressError("testnet", f"{part!r} is a {_TESTNET_HRPS[hrp]} segwit address; this service "
                           "knows mainnet addresses (bc1…) only")
    if hrp != "bc":
        raise AddressError("malformed", f"{part!r} has the bech32 prefix {hrp!r}; a mainnet address starts with bc1")
    version, program = bech32.decode("bc", lowered)
    if version is None:
        raise AddressError("malformed", f"{part!r} is bech32 but not a valid segwit program "
                           "(wrong length or padding)")
    wants = bech32.Encoding.BECH32 if version == 0 else bech32.Encoding.BECH32M
    if encoding != wants:
        raise AddressError("malformed", f"{part!r} is a witness v{version} address encoded with the wrong "
                           f"checksum ({'bech32m' if version == 0 else 'bech32'}; BIP 350 wants "
                           f"{'bech32' if version == 0 else 'bech32m'})")
    if version == 0:
        return "P2WPKH address" if len(program) == 20 else "P2WSH address"
    return "P2TR address" if version == 1 and len(program) == 32 else f"witness v{version} address"


def _part(part: str) -> str:
    if _NONSTANDARD.fullmatch(part):
        return "nonstandard script"
    if _HEX64.fullmatch(part):
        raise AddressError("transaction_id", f"{part[:12]}… is 64 hex digits: a transaction id or a block "
                           "hash, not an address")
    if part.lower().startswith("nonstandard"):
        raise AddressError("malformed", f"{part!r} starts like the dataset's nonstandard form but is not "
                           "'nonstandard' followed by 40 lower-case hex digits")
    if part.lower().startswith(("bc1", "tb1", "bcrt1", "sb1", "lnbc", "lntb")):
        return _bech32(part)
    if _BASE58.fullmatch(part):
        return _base58(part)
    bad = sorted({c for c in part if not c.isalnum()})
    why = f"characters {''.join(bad)!r} no address has" if bad else "neither base58check nor bech32/bech32m"
    raise AddressError("malformed", f"{part[:40]!r} is not an address: {why}")


def kinds_of_known(text: str) -> tuple[str, ...]:
    """The kinds of a key found in the data (so valid already), from its prefix and length: what the
    checksums would say, without paying for them on every lookup (~40 µs a part in pure Python)."""
    kinds = []
    for part in text.split(","):
        if part.startswith("1"):
            kinds.append("P2PKH address")
        elif part.startswith("3"):
            kinds.append("P2SH address")
        elif part.startswith("bc1q"):
            kinds.append("P2WPKH address" if len(part) == 42 else "P2WSH address")
        elif part.startswith("bc1p") and len(part) == 62:
            kinds.append("P2TR address")
        elif part.startswith("nonstandard"):
            kinds.append("nonstandard script")
        else:
            kinds.append(_part(part))
    return tuple(kinds)


def printable(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters and safe to echo in JSON or CSV (no lone surrogates)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def parse(text: str) -> Address:
    """Check an address key; AddressError (with `kind`: malformed, testnet, private_key,
    transaction_id, extended_key, lightning_invoice) saying what it is otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise AddressError("malformed", "the address is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AddressError("malformed", "the address holds a lone surrogate (\\ud800-\\udfff), not valid "
                           "Unicode text") from None
    if len(text) > MAX_LENGTH:
        raise AddressError("malformed", f"the address is {len(text)} characters long; the longest key is "
                           f"under {MAX_LENGTH}")
    if text != text.strip():
        raise AddressError("malformed", "the address has leading or trailing spaces: remove them")
    parts = text.split(",")
    if any(not p for p in parts):
        raise AddressError("malformed", f"{text[:60]!r} has an empty part between commas "
                           "(a multisig key is addresses joined by single commas)")
    kinds = tuple(_part(p) for p in parts)
    spelled = ",".join(p.lower() if k.endswith("address") and p.lower().startswith("bc1") else p
                       for p, k in zip(parts, kinds))
    return Address(spelled, kinds)
