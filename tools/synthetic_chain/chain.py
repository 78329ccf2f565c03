"""The chain's state and core mechanics: addresses and wallets, coin picking, emitting a transaction,
fees, the services' schedule, blocks. The transaction kinds come from the mixins it combines."""
from __future__ import annotations

import random
from collections import deque

from .actors import Actor, Addr, _make_addr
from .bq_json import _IN_P2PKH_JSON, _IN_P2SH_JSON, _IN_P2WPKH_JSON, _OUT_JSON
from .coinbase import Coinbases
from .encoding import _varint_len, sha256d
from .pools import PoolTransactions
from .services import ServiceTransactions
from .settings import MAX_SCHEDULED_SHARE, P2PKH, P2SH, SECONDS_PER_DAY, USER_KINDS
from .users import UserTransactions

_IN_VBYTES = (148, 91, 68)          # fee estimates only; exact sizes are computed on emission
_SEQUENCES = (4294967295,) * 8 + (4294967293,) * 9 + (4294967294,) * 3


class _Chain(UserTransactions, ServiceTransactions, PoolTransactions, Coinbases):
    """The chain being made: every wallet and its coins, and the block under construction (one at a time)."""

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

    def random_user(self) -> Actor:
        rng = self.rng
        if self.users and rng.random() < 0.55:
            return self.users[int(rng.random() * len(self.users))]
        return self.new_user()

    # --- the services' rhythm
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
        for p in self.pools:   # a stretched payout interval pays what the pool earned in it
            p.payout_seconds = p.settings.get("payout_hours", 0) * 3600 * stretch
        return services

    # --- blocks and emission
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
        txid = "%064x" % rng.getrandbits(256)
        seq = _SEQUENCES[int(rng.random() * 20)]
        parts, in_total, in_base, wit, n_legacy = self._spend_inputs(ins, seq)
        oparts, out_total, out_base = self._credit_outputs(txid, outs)
        fee = in_total - out_total
        if fee <= 0 or not ins:
            raise AssertionError(f"generator bug: fee {fee} for {len(ins)} inputs")
        nin, nout = len(ins), len(outs)
        base = in_base + out_base + 8 + _varint_len(nin) + _varint_len(nout)
        if wit:
            wit += 2 + n_legacy
        size = base + wit
        vsize = (4 * base + wit + 3) // 4
        lock = self._lock_time()
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

    def _spend_inputs(self, ins: list, seq: int) -> tuple[list[str], int, int, int, int]:
        """The inputs' JSON, value, base and witness sizes, and how many are legacy (P2PKH)."""
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
                der, dlen = self._der_signature()
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
        return parts, in_total, base, wit, n_legacy

    def _der_signature(self) -> tuple[str, int]:
        """A P2PKH input's signature, hex, and its length in bytes."""
        gr = self.rng.getrandbits
        # Strict DER (BIP66): no leading zero byte, and a 00 byte before a high bit
        # because DER integers are signed; s is low-S (BIP62).
        r = gr(256) | (1 << 248)
        rh = "%064x" % r
        rlen = 32
        if r >> 255:
            rh = "00" + rh
            rlen = 33
        der = "30%02x02%02x%s0220%064x" % (rlen + 36, rlen, rh, gr(254) | (1 << 248))
        return der, rlen + 38

    def _credit_outputs(self, txid: str, outs: list) -> tuple[list[str], int, int]:
        """The outputs' JSON, value and size; each output becomes a coin of its owner at once."""
        oparts = []
        out_total = 0
        base = 0
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
        return oparts, out_total, base

    def _lock_time(self) -> int:
        rng = self.rng
        if rng.random() < 0.55:    # Core's anti-fee-sniping: lock_time = tip height, sometimes a bit less
            return self.height - (rng.randrange(3) if rng.random() < 0.1 else 0)
        return 0

    def feerate(self) -> float:
        return self.day_feerate * (0.4 + 1.2 * self.rng.random())

    @staticmethod
    def est_vsize(ins, outs) -> int:
        return 11 + sum(_IN_VBYTES[u[3].kind] for u in ins) + sum(a.out_size for a, _ in outs)

    def merkle_root(self) -> str:
        level = [bytes.fromhex(t)[::-1] for t in self.txids]
        while len(level) > 1:
            if len(level) % 2:
                level.append(level[-1])
            level = [sha256d(level[k] + level[k + 1]) for k in range(0, len(level), 2)]
        return level[0][::-1].hex()

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

    def top_up(self, actor: Actor, ins: list, need: int, lo=5.0, hi=7.0):
        """Adds one pre-window coin of the same owner when the picked ones cannot pay `need`."""
        if sum(u[2] for u in ins) < need:
            ins.append(self.prehistory(self.recv_addr(actor), need + int(10 ** self.rng.uniform(lo, hi))))
