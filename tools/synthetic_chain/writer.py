"""The files: the atomic gzip writer, each day's plan, writing a day's blocks and transactions, the
ground truth, and `generate`, which runs it all."""
from __future__ import annotations

import bisect
import csv
import datetime
import gzip
import io
import os
import random
from pathlib import Path

from .actors import DEFAULT_POOLS_PATH, load_pools
from .chain import _Chain
from .consensus import _bits, start_height
from .encoding import _varint_len
from .sampling import _largest_remainder
from .settings import MULTISIG_EVERY, OP_RETURN_EVERY, ROLES, SECONDS_PER_DAY, SOLO


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
            organic_index = _make_transactions(chain, plan, b, organic_index)
            coinbase_param = chain.coinbase(plan.slots[b], day_counts)
            blocks_per_pool[pool_names[plan.slots[b]]] += 1
            ft.write_lines(chain.lines)
            fb.write_lines([_block_row(chain, height, block_hash, ts, month, coinbase_param)])
            n_tx += len(chain.txids)
            height += 1
        fb.commit()
        ft.commit()
    except BaseException:
        fb.abort()
        ft.abort()
        raise
    return n_tx, day_counts


def _make_transactions(chain: _Chain, plan: _DayPlan, b: int, organic_index: int) -> int:
    """Block b's planned service transactions and organic ones, mixed; returns the next organic index."""
    todo = plan.events[b] + [None] * plan.organic[b]
    chain.rng.shuffle(todo)
    for handler in todo:
        if handler is None:
            chain.organic(plan.flags.get(organic_index))
            organic_index += 1
        else:
            handler()
    return organic_index


def _block_row(chain: _Chain, height: int, block_hash: str, ts: str, month: str, coinbase_param: str) -> str:
    """The block's row, once its transactions are made."""
    rng = chain.rng
    ntx = len(chain.txids)
    stripped = 80 + _varint_len(ntx) + chain.base_sum
    size = 80 + _varint_len(ntx) + chain.size_sum
    # Half the blocks roll version bits (overt ASICBoost), as on mainnet.
    version = 0x20000000 if rng.random() < 0.5 else 0x20000000 | (rng.getrandbits(16) << 13)
    return ('{"hash":"%s","size":%d,"stripped_size":%d,"weight":%d,"number":%d,"version":%d,'
            '"merkle_root":"%s","timestamp":"%s","nonce":"%x","bits":"%s","coinbase_param":"%s",'
            '"transaction_count":%d,"timestamp_month":"%s"}'
            % (block_hash, size, stripped, 3 * stripped + size, height, version,
               chain.merkle_root(), ts, rng.getrandbits(32), _bits(height), coinbase_param,
               ntx, month))


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
    first_height = start_height(start_date, block_counts)
    chain = _Chain(rng, pools_data, tx_per_day)
    n_tx_total, blocks_per_pool, per_day_20, run_counts = _write_days(chain, out_dir, start_date, block_counts,
                                                                      first_height, tx_per_day)
    truth = _write_ground_truth(chain, out_dir / "ground_truth" / "address_roles.csv")
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "start_date": start_date.isoformat(),
        "days": days,
        "blocks": sum(block_counts),
        "first_block": first_height,
        "last_block": first_height + sum(block_counts) - 1,
        "transactions": n_tx_total,
        "blocks_per_pool": blocks_per_pool,
        "pool_payout_style": {p.name: p.style for p in chain.pools},
        "addresses_per_role": _addresses_per_role(truth),
        "addresses": len(truth),
        "coinbase_20plus_addresses": _coinbase_20plus(chain, per_day_20, run_counts),
        "coinbase_payees": _coinbase_payees(chain, run_counts),
    }


def _write_days(chain: _Chain, out_dir: Path, start_date: datetime.date, block_counts: list[int], height: int,
                tx_per_day: int) -> tuple[int, dict, list[int], dict]:
    """Write every day's folder; returns (transactions, blocks per pool, addresses paid >= 20 coinbase
    outputs of one pool per day, coinbase outputs per (pool, address) over the run)."""
    rng = chain.rng
    services = chain.schedule()
    pool_names = [p.name for p in chain.pools] + [SOLO]
    blocks_per_pool = {name: 0 for name in pool_names}
    per_day_20 = []
    run_counts: dict = {}
    n_tx_total = 0
    for d in range(len(block_counts)):
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
    return n_tx_total, blocks_per_pool, per_day_20, run_counts


def _addresses_per_role(truth: list[tuple[str, str, str]]) -> dict:
    roles = {r: 0 for r in ROLES}
    for _, role, _ in truth:
        roles[role] += 1
    return roles


def _coinbase_20plus(chain: _Chain, per_day_20: list[int], run_counts: dict) -> dict:
    idx_to_name = {p.idx: p.name for p in chain.pools}
    per_pool_20 = {p.name: 0 for p in chain.pools}
    for (idx, _), c in run_counts.items():
        if c >= 20:
            per_pool_20[idx_to_name[idx]] += 1
    return {
        "rule": "distinct addresses paid >= 20 coinbase outputs by blocks tagged with one pool's tag",
        "total": sum(per_pool_20.values()),
        "per_pool": per_pool_20,
        "per_day": per_day_20,
    }


def _coinbase_payees(chain: _Chain, run_counts: dict) -> dict:
    """Per pool, what its coinbases paid over the run: its payout style, the distinct addresses
    paid, and those paid by at least 20 of its coinbase outputs (the labels' raw material: a
    wallet pool's payees are its own wallets, a direct pool's its miners)."""
    out = {p.name: {"style": p.style, "addresses": 0, "addresses_20plus": 0} for p in chain.pools}
    names = {p.idx: p.name for p in chain.pools}
    for (idx, _), c in run_counts.items():
        out[names[idx]]["addresses"] += 1
        out[names[idx]]["addresses_20plus"] += c >= 20
    return out
