"""Coinbases: scripts that carry exactly one pool's tag, wallet pools' and direct (PPLNS) payouts,
the witness commitment."""
from __future__ import annotations

from .actors import _nonstandard_address, _Pool, _special_addr
from .bq_json import _render_output
from .consensus import subsidy
from .encoding import _push, _varint_len, bip34_height_push
from .settings import COINBASE_MATURITY, DIRECT_MAX_OUTPUTS, DIRECT_MIN_OUTPUTS

# Coinbase filler bytes: no ASCII letters and nothing >= 0x80, so random bytes can neither spell
# a pool tag nor join letters across bytes that an ASCII decoder drops.
_FILLER = bytes(b for b in range(128) if not (65 <= b <= 90 or 97 <= b <= 122))


class Coinbases:
    """Mixin of _Chain: each block's coinbase transaction."""

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
        """Put the block's coinbase first; returns its script in hex (the block's coinbase_param)."""
        rng = self.rng
        total = subsidy(self.height) + self.fees
        if slot < len(self.pools):
            p = self.pools[slot]
            script, outs = self._pool_coinbase(p, total)
        else:
            p = None
            script = self.coinbase_script(None, None)
            outs = [(self.solo_miners[rng.randrange(len(self.solo_miners))].addr, total)]
        commitment = b"\x6a\x24\xaa\x21\xa9\xed" + rng.getrandbits(256).to_bytes(32, "big")
        outs.append((_special_addr(commitment, "OP_RETURN " + commitment[2:].hex(), "nonstandard",
                                   [_nonstandard_address(commitment)], None), 0))
        txid = "%064x" % rng.getrandbits(256)
        oparts, base = self._mature_outputs(txid, outs, p, day_counts)
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

    def _pool_coinbase(self, p: _Pool, total: int) -> tuple[bytes, list]:
        """A pool's block: a script with one of its tags, and outputs to its wallet or to its miners."""
        rng = self.rng
        ascii_tags = [t for t in p.tags if t.isascii()]
        tags = ascii_tags if ascii_tags and rng.random() < 0.85 else p.tags
        tag = tags[rng.randrange(len(tags))]
        script = self.coinbase_script(p.idx, tag)
        if p.style == "wallet":
            outs = self.wallet_coinbase_outputs(p, total)
        else:
            outs = self.direct_outputs(p, total)
        return script, outs

    def _mature_outputs(self, txid: str, outs: list, p: _Pool | None, day_counts: dict) -> tuple[list[str], int]:
        """The outputs' JSON and size; each becomes its owner's coin only after COINBASE_MATURITY blocks,
        and counts for (pool, address) when the block carries a pool's tag."""
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
        return oparts, base

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
