"""Mining pools and miners: the pools set up from the pools list, wallet pools' batch payouts, miners
selling their coins."""
from __future__ import annotations

from .actors import Actor, Addr, _make_addr, _Pool, _usable_tags
from .consensus import subsidy
from .encoding import b58check_decode, segwit_decode
from .sampling import _cumulative, _pick, _weighted_sample
from .settings import (
    COINBASE_SPLIT,
    DUST,
    N_SOLO_MINERS,
    P2PKH,
    P2SH,
    P2WPKH,
    POOL_PLAN,
    SERVICE_KINDS,
    SOLO_SHARE,
    USER_KINDS,
)

_SPLIT_CUM = _cumulative(COINBASE_SPLIT)


class PoolTransactions:
    """Mixin of _Chain: what pools and miners send, except coinbases."""

    def _setup_pools(self, pools_data):
        usable = _usable_tags(pools_data)
        self.all_tags = [(i, t.encode("utf-8").lower()) for i, p in enumerate(pools_data) for t in p["tags"] if t]
        self.pools: list[_Pool] = []
        for i, style, share, settings in _plan_pools(pools_data, usable):
            p = self._new_pool(pools_data[i], i, style, share, usable[i], settings)
            self.all_miners.extend(p.miners)
            self.pools.append(p)
        self.solo_miners = [self.fixed_actor("solo_miner", "solo-%02d" % (k + 1), USER_KINDS, self.miner_pool)
                            for k in range(N_SOLO_MINERS)]
        self.all_miners.extend(self.solo_miners)
        self.pool_shares = [p.share for p in self.pools] + [SOLO_SHARE]

    def _new_pool(self, data: dict, i: int, style: str, share: int, tags: list[str], settings: dict) -> _Pool:
        """One pool of the plan: its wallet, payout addresses (its real ones when decodable) and miners."""
        rng = self.rng
        p = _Pool(i, data["name"], style, share, tags, settings)
        p.wallet = Actor("pool_wallet", p.name, SERVICE_KINDS)
        real = []
        for text in data["addresses"]:
            a = self._decode_real(text, p.wallet)
            if a is not None:
                real.append(a)
        if style == "wallet":
            if len(real) > 5:   # a handful to rotate among, not all 37 of AntPool's
                real = [real[j] for j in sorted(rng.sample(range(len(real)), 5))]
            # Its coinbase addresses: the real ones first, then its own new ones.
            p.payout_addrs = real + [self.new_addr(p.wallet)
                                     for _ in range(max(1, settings["coinbase_addresses"] - len(real)))]
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
        return p

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

    def wallet_coinbase_outputs(self, p: _Pool, total: int) -> list:
        """A wallet pool's coinbase: the next 1–4 of its coinbase addresses in rotation, the reward
        split among them at random."""
        rng = self.rng
        k = _pick(rng, _SPLIT_CUM) + 1
        addrs = [p.payout_addrs[(p.cb_paid + j) % len(p.payout_addrs)] for j in range(k)]
        p.cb_paid += k
        weights = [rng.uniform(0.5, 1.5) for _ in addrs]
        values = [int(total * w / sum(weights)) for w in weights]
        values[0] += total - sum(values)
        return list(zip(addrs, values))

    def earlier_coinbase(self, p: _Pool) -> tuple | None:
        """A coinbase a wallet pool's address received in the rotation's previous round (before
        the window): the one at the next address the rotation has paid since the last payout, or
        None when every such address has been spent from. A pool spends its oldest coins, and the
        addresses it pays now are those it paid a round ago."""
        if p.cb_spent >= p.cb_paid:
            return None
        a = p.payout_addrs[p.cb_spent % len(p.payout_addrs)]
        p.cb_spent += 1
        return self.prehistory(a, int((subsidy(self.height) + 2e7) * self.rng.uniform(0.25, 0.75)))

    def pool_payout(self, p: _Pool):
        rng = self.rng
        n_m = len(p.miners)
        k = n_m if n_m <= 100 else rng.randint(100, min(300, n_m))
        chosen = _weighted_sample(rng, n_m, p.weights, k)
        interval = p.payout_seconds
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

        def short() -> bool:
            return len(ins) < 50 and have < amount + int((out_vsize + 150 * (len(ins) + 1)) * fr) + DUST

        # Oldest first: the previous round's coinbases at the addresses paid since the last
        # payout, then matured coinbases of the window and earlier change.
        while short():
            coin = self.earlier_coinbase(p)
            if coin is None:
                break
            ins.append(coin)
            have += coin[2]
        while utxos and short():
            ins.append(utxos.pop(0))
            have += ins[-1][2]
        fee = int((self.est_vsize(ins, outs) + 34) * fr) + 1
        if have < amount + fee + DUST:
            ins.append(self.prehistory(p.payout_addrs[0], amount + fee + int(amount * rng.uniform(0.2, 2.0))))
            fee = int((self.est_vsize(ins, outs) + 34) * fr) + 1
        outs.append((p.payout_addrs[0], sum(u[2] for u in ins) - amount - fee))
        self.emit(ins, outs)

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


def _plan_pools(pools_data: list[dict], usable: list[list[str]]) -> list[tuple]:
    """POOL_PLAN as (index in the pools list, style, share, settings), one distinct pool each."""
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
    return plan
