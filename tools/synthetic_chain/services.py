"""Services' transactions: exchanges, gambling sites, faucets and payment processors, set up once and
then run on their rhythms."""
from __future__ import annotations

from .actors import Actor
from .sampling import _cumulative, _weighted_sample
from .settings import DUST, EXCHANGES, FAUCETS, GAMBLING, P2PKH, P2SH, P2WPKH, PROCESSORS, SERVICE_KINDS


class ServiceTransactions:
    """Mixin of _Chain: what the services send."""

    def _setup_services(self):
        self._setup_exchanges()
        self._setup_gambling()
        self._setup_faucets()
        self._setup_processors()

    def _setup_exchanges(self):
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

    def _setup_gambling(self):
        self.gambling = []
        for k, (share, pay_int) in enumerate(GAMBLING):
            name = "gambling-%02d" % (k + 1)
            bets = Actor("gambling", name, (P2PKH, P2SH, P2WPKH))
            bets.addrs = [self.new_addr(bets) for _ in range(3)]
            self.gambling.append({"name": name, "share": share, "bets": bets, "bettors": [],
                                  "hot": self.fixed_actor("gambling", name, SERVICE_KINDS), "pay_int": pay_int})
        self.gm_cum = _cumulative(g["share"] for g in self.gambling)

    def _setup_faucets(self):
        self.faucets = []
        for k, (n_claimers, pay_int) in enumerate(FAUCETS):
            name = "faucet-%02d" % (k + 1)
            claimers = [self.new_user(fixed=True) for _ in range(n_claimers)]
            self.faucets.append({"name": name, "wallet": self.fixed_actor("faucet", name, (P2PKH, P2WPKH)),
                                 "claimers": claimers,
                                 "weights": [1.0 / (j + 1) ** 0.7 for j in range(n_claimers)],
                                 "pay_int": pay_int})

    def _setup_processors(self):
        rng = self.rng
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
