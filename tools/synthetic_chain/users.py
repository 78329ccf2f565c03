"""Users' transactions, the organic traffic: payments, exchange deposits, bets, invoices, consolidations."""
from __future__ import annotations

import hashlib

from .actors import Actor, Addr, _nonstandard_address, _special_addr
from .encoding import _push, _ripemd160, b58check_encode
from .sampling import _pick
from .settings import _ORGANIC, DUST, P_PREHISTORY


class UserTransactions:
    """Mixin of _Chain: what users send."""

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

    def exchange_deposit_addr(self, payer: Actor) -> Addr:
        rng = self.rng
        if payer.dep is not None and rng.random() < 0.5:
            return payer.dep
        ex = self.exchanges[_pick(rng, self.ex_cum)]
        payer.dep = self.new_addr(ex["deposits"])
        return payer.dep

    def user_spend(self, kind: str, flag=None):
        rng = self.rng
        payer, ins = self.user_inputs((1, 1, 1, 1, 2, 2, 3)[int(rng.random() * 7)])
        fr = self.feerate()
        change_addr = self.recv_addr(payer)
        recs, cap = self._recipients(kind, payer, ins)
        extra = self._flagged_outputs(flag, payer)
        n_out = len(recs) + 1 + len(extra)
        fee = int(self.est_vsize(ins, [(a, 0) for a in recs] + [(change_addr, 0)] + extra) * fr) + 1
        need = fee + (n_out + 2) * DUST + sum(v for _, v in extra) + (cap or 0)
        if len(ins) >= 3 and sum(u[2] for u in ins) < need:
            # Users spend 1-3 coins: put the smallest back before adding a bigger one.
            ins.sort(key=lambda u: (u[2], u[0], u[1]))
            self._deliver(ins.pop(0))
        self.top_up(payer, ins, need)
        avail = sum(u[2] for u in ins) - fee - sum(v for _, v in extra)
        pay = self._payment(kind, cap, avail, len(recs))
        change = avail - pay
        outs = self._split(pay, recs)
        if change >= DUST:
            outs.append((change_addr, change))
        outs.extend(extra)
        rng.shuffle(outs)
        self.emit(ins, outs)

    def _recipients(self, kind: str, payer: Actor, ins: list) -> tuple[list[Addr], int | None]:
        """Whom a spend of `kind` pays, and at most how much (None: a share of what the coins hold)."""
        rng = self.rng
        if kind == "pay":
            return self._payees(payer), None
        if kind == "deposit":
            return [self.exchange_deposit_addr(payer)], None
        if kind == "bet":
            g = self.gambling[_pick(rng, self.gm_cum)]
            bets = g["bets"]
            recs = [bets.addrs[rng.randrange(len(bets.addrs))]]
            bettors = g["bettors"]
            bettors.append(ins[0][3])      # sites pay wins back to the address the bet came from
            if len(bettors) > 2000:
                del bettors[:1000]
            return recs, int(10 ** rng.uniform(4.0, 6.5))
        # invoice
        pp = self.processors[_pick(rng, self.pp_cum)]
        recs = [self.new_addr(pp["invoices"])]
        return recs, int(10 ** rng.uniform(4.3, 7.0))

    def _payees(self, payer: Actor) -> list[Addr]:
        rng = self.rng
        n_rec = 1
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
        return recs

    def _flagged_outputs(self, flag, payer: Actor) -> list:
        """The extra output the day plan asked of this spend, if any: an OP_RETURN or a bare multisig."""
        rng = self.rng
        extra = []
        if flag == "op_return":
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(8, 80)))
            script = b"\x6a" + _push(data)
            extra.append((_special_addr(script, "OP_RETURN " + data.hex(), "nonstandard",
                                        [_nonstandard_address(script)], None), 0))
        elif flag == "multisig":
            extra.append((self.bare_multisig(payer), rng.randint(1000, 8000)))
        return extra

    def _payment(self, kind: str, cap: int | None, avail: int, n_rec: int) -> int:
        """What the recipients get out of `avail`; the rest is change."""
        rng = self.rng
        if cap is not None:
            pay = min(cap, avail - DUST)
        elif kind == "deposit" and rng.random() < 0.3:
            pay = avail       # "send all" to the exchange: no change
        else:
            pay = int(avail * rng.uniform(0.05, 0.95))
        return max(pay, DUST * n_rec)

    def _split(self, pay: int, recs: list[Addr]) -> list:
        rng = self.rng
        outs = []
        left = pay
        for k, a in enumerate(recs):
            v = left if k == len(recs) - 1 else max(DUST, int(pay * rng.uniform(0.1, 0.6) / len(recs)))
            left -= v
            outs.append((a, v))
        return outs

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
