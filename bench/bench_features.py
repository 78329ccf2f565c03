"""Benchmark of the feature batch (not a test): prints figures, appends them to bench/results.md.

    make bench            # or: PYTHONPATH=plugins:. .venv/bin/python bench/bench_features.py

On one real-size synthetic day (500,000 transactions; the generator makes ~1.7 M inputs and
outputs of them, fewer than the ~2.5 M of a real day), kept under bench/data/ and generated
once (reused when present):

1. generate → load into a bench warehouse → extract into a bench bucket;
2. the feature batch, `spark_jobs/build_features.py`'s `run`, each run in a fresh Python
   process with its own local[2] SparkSession (the local target's properties, as the local
   tasks run it), the session's start-up timed apart; Spark's event log gives the time per
   phase of the job (`bench/spark_profile.py`), kept in the report;
3. the same aggregation in DuckDB (include/sql/address_features.sql, transpiled), materialised;
4. the daily batch at 1, 10 and 30 days of history: day N runs on a synthetic state of N − 1
   earlier days (see `build_state`) laid out as the job leaves it after a compaction (a base
   snapshot; the manifest of the day before names it), and the compaction of day 30's state;
5. the peak memory (RSS) of each run's process tree (the Python driver and its JVM).

Settings (environment): BENCH_REPEAT (runs per Spark figure, the best is kept; default 1),
BENCH_HISTORY (default "1,10,30").
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "plugins", ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TZ", "UTC")

import spark_profile  # noqa: E402

from pool_classifier import datasets, targets  # noqa: E402
from pool_classifier.io import atomic, spark_runner, sql, versioned, warehouse  # noqa: E402
from pool_classifier.steps import extract_day  # noqa: E402
from tools import synthetic_chain  # noqa: E402

BENCH = ROOT / "bench"
DATA = BENCH / "data"
CHAIN = DATA / "chain"
WAREHOUSE = DATA / "warehouse" / "bigquery-public-data.duckdb"
BUCKET = DATA / "bucket"
STATES = DATA / "synthetic_states"
RUNS = DATA / "runs"
RESULTS = BENCH / "results.md"

DAY = dt.date(2024, 3, 1)
DS = DAY.isoformat()
DAY_BEFORE = (DAY - dt.timedelta(days=1)).isoformat()
TX_PER_DAY = 500_000
SEED = 1
SHARED_SHARE = 0.30  # share of a day's addresses that are also active on the other days
RATIO_TARGET = 4.0
GROWTH_TARGET = 1.3
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
HISTORY = [int(x) for x in os.environ.get("BENCH_HISTORY", "1,10,30").split(",")]


def bench_target() -> targets.Target:
    return dataclasses.replace(targets.current_target(), bucket=str(BUCKET), warehouse=str(WAREHOUSE))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- data


def prepare(target: targets.Target) -> dict:
    """Generate, load and extract the day once; later runs reuse bench/data/."""
    if not (CHAIN / ".generated").exists():
        log(f"generating {TX_PER_DAY} transactions of {DS} (seed {SEED}) ...")
        shutil.rmtree(CHAIN, ignore_errors=True)
        t = time.perf_counter()
        synthetic_chain.generate(CHAIN, DAY, days=1, tx_per_day=TX_PER_DAY, seed=SEED)
        (CHAIN / ".generated").write_text(f"{time.perf_counter() - t:.1f} s\n")
    if not (WAREHOUSE.parent / ".loaded").exists():
        log("loading the exports into the bench warehouse ...")
        WAREHOUSE.unlink(missing_ok=True)
        WAREHOUSE.parent.mkdir(parents=True, exist_ok=True)
        warehouse.load_exports(CHAIN, WAREHOUSE)
        (WAREHOUSE.parent / ".loaded").write_text("ok\n")
    if not all(atomic.exists(datasets.extract_dir(target, t, DS)) for t in datasets.EXTRACT_TABLES):
        log("extracting the day into the bench bucket ...")
        extract_day.extract_day(target, DS)
    import duckdb

    return {t: duckdb.connect().execute(f"SELECT count(*) FROM {atomic.duckdb_source(datasets.extract_dir(target, t, DS))}")
            .fetchone()[0] for t in datasets.EXTRACT_TABLES}


# ---------------------------------------------------------------- measuring


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeRSS:
    """Polls the summed RSS of a process and all its descendants every 0.1 s."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            seen, todo, total = set(), [self.pid], 0
            while todo:
                pid = todo.pop()
                if pid not in seen:
                    seen.add(pid)
                    total += _rss_kb(pid)
                    todo += _children(pid)
            self.peak_kb = max(self.peak_kb, total)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_batch(target: targets.Target, compact: bool = False) -> dict:
    """One feature batch in a fresh process (`--run`): its session start-up, its run, the
    phases of Spark's event log, and the peak RSS of the process tree."""
    events = Path(tempfile.mkdtemp(prefix="events-", dir=DATA))
    out = Path(tempfile.mkstemp(prefix="run-", suffix=".json", dir=DATA)[1])
    command = [sys.executable, __file__, "--run", str(events), str(out), "compact" if compact else "day"]
    process = subprocess.Popen(command, env={**os.environ, **spark_runner.spark_env()})
    with TreeRSS(process.pid) as rss:
        process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"the bench run failed (exit {process.returncode})")
    result = json.loads(out.read_text())
    result["peak_rss_mb"] = rss.peak_kb / 1024
    result["profile"] = spark_profile.profile(events)
    shutil.rmtree(events, ignore_errors=True)
    out.unlink()
    return result


def _run_here(events: str, out: str, what: str) -> None:
    """The measured process: a SparkSession of the local target's properties with the event log,
    then the day's batch (or day 30's compaction) of spark_jobs/build_features.py."""
    from pool_classifier.io import spark_io
    from spark_jobs import build_features as job

    target = bench_target()
    conf = {**target.spark_conf, **spark_profile.event_log_conf(events)}
    t0 = time.perf_counter()
    spark = spark_io.session(conf)
    t1 = time.perf_counter()
    args = job.parse_args(["--ds", DS, "--bucket", target.bucket, "--pools", str(datasets.POOLS_FILE),
                           "--compact-every-days", "1000"])
    if what == "compact":
        _, n_layers, meta = job.state_layers(spark, target, DS)
        job.compact_state(spark, target, DS, meta)
        line = f"compacted the state of {DS} ({n_layers} layers): {meta['addresses']} addresses"
    else:
        line = job.run(spark, args)
    t2 = time.perf_counter()
    spark.stop()
    Path(out).write_text(json.dumps({"startup": t1 - t0, "batch": t2 - t1, "line": line,
                                     "driver_phases": spark_io.PHASE_SECONDS}))


def duckdb_day(target: targets.Target) -> dict:
    query = sql.to_duckdb(sql.render("address_features", first_day=DS, ds=DS))
    best, rows = None, 0
    for _ in range(max(REPEAT, 2)):  # the first run also warms the OS caches
        con = extract_day.connect_warehouse(target.warehouse)
        try:
            t = time.perf_counter()
            con.execute(f"CREATE TEMP TABLE bench_features AS {query}")
            seconds = time.perf_counter() - t
            rows = con.execute("SELECT count(*) FROM bench_features").fetchone()[0]
            threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        finally:
            con.close()
        best = seconds if best is None else min(best, seconds)
    return {"seconds": best, "rows": rows, "threads": threads}


# ---------------------------------------------------------------- synthetic history


def build_state(target: targets.Target, days_before: int) -> Path:
    """The state after the `days_before` days that precede DS, laid out as a compaction leaves
    it (a base snapshot, in the job's schema), with the coinbase receipts of those days.

    Each earlier day k (1 = the day before DS) is a copy of DS's own partials (the job's
    `day_partials(ordinary_flows(...))`) with block times shifted back k whole days and the
    months set to the month of DS − k. 70 % of the addresses (chosen by a hash of the
    address) are renamed per copy (suffix `~k`), so they are new every day; 30 % keep their
    name and are active on every day. The copies are combined exactly as folding `merge_state`
    over them in date order: counts and sums add, min/max of months and times, OR of the month
    bits, and the gap between one day's last time and the next active day's first time is
    added to gap_sumsq (the "bridge" of `merge_state`). Receipts: the day's, copied and renamed
    the same way, summed per (address, pool). Written once under bench/data/synthetic_states/.
    """
    out = STATES / f"{days_before}"
    if (out / ".done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from pool_classifier.io import spark_io
    from spark_jobs import build_features as job

    spark = spark_io.session({**target.spark_conf, "spark.sql.shuffle.partitions": "8"})
    outputs = job.read_extract(spark, target, "outputs", DS)
    inputs = job.read_extract(spark, target, "inputs", DS)
    blocks = job.read_extract(spark, target, "blocks", DS)
    pools = job.load_pools(spark, str(datasets.POOLS_FILE))
    day_path = STATES / "day_partials"
    if not day_path.exists():
        job.day_partials(job.ordinary_flows(outputs, inputs)).write.parquet(str(day_path))
    day = spark.read.parquet(str(day_path))
    coinbase = outputs.where("is_coinbase")
    coinbase_outputs = coinbase.select("block_hash", "address")
    receipts_day = job.coinbase_receipts(job.attribute_blocks(blocks, coinbase_outputs, pools),
                                         job.coinbase_payouts(coinbase))
    shared = (F.abs(F.xxhash64("address", F.lit(7))) % 1000) < int(SHARED_SHARE * 1000)

    def renamed(k: int):
        return F.when(shared, F.col("address")).otherwise(F.concat(F.col("address"), F.lit(f"~{k}")))

    copies = []
    for k in range(1, days_before + 1):
        month = (DAY - dt.timedelta(days=k)).replace(day=1)
        index = (month.year - job.FIRST_YEAR) * 12 + month.month - 1
        cols = [renamed(k).alias("address"), F.lit(k).alias("k")]
        for p in job.SIDE_PREFIX.values():
            present = F.col(f"{p}_n").isNotNull()
            for name in job.PARTIALS:
                c = F.col(f"{p}_{name}")
                if name in ("month_min", "month_max"):
                    c = F.when(present, F.lit(month.isoformat()).cast("date"))
                elif name in job.MONTH_BITS:
                    word = job.MONTH_BITS.index(name)
                    bit = (1 << (index - 64 * word)) if 64 * word <= index < 64 * (word + 1) else 0
                    c = F.when(present, F.lit(bit - (1 << 64) if bit >= 1 << 63 else bit).cast("long"))
                elif name in ("first_time", "last_time"):
                    c = c - F.lit(k * 86400)
                cols.append(c.alias(f"{p}_{name}"))
        copies.append(day.select(*cols))
    union = copies[0]
    for c in copies[1:]:
        union = union.unionByName(c)
    bridges = []
    for p in job.SIDE_PREFIX.values():
        # Days of one address in date order (k descending); the previous active day of this
        # side gives the bridge, as merge_state adds it.
        w = Window.partitionBy("address").orderBy(F.desc("k"))
        prev_last = F.last(F.col(f"{p}_last_time"), ignorenulls=True).over(w.rowsBetween(Window.unboundedPreceding, -1))
        bridges.append(F.when(F.col(f"{p}_n").isNotNull(), F.col(f"{p}_first_time") - prev_last).alias(f"{p}_bridge"))
    with_bridges = union.select("*", *bridges)
    aggs = []
    for p in job.SIDE_PREFIX.values():
        def col(name):
            return F.col(f"{p}_{name}")

        aggs += [
            F.sum(col("n")).alias(f"{p}_n"),
            F.sum(col("value_sum")).alias(f"{p}_value_sum"),
            F.sum(col("value_sumsq")).alias(f"{p}_value_sumsq"),
            F.sum(col("tx")).alias(f"{p}_tx"),
            F.min(col("month_min")).alias(f"{p}_month_min"),
            F.max(col("month_max")).alias(f"{p}_month_max"),
            *[F.bit_or(col(name)).alias(f"{p}_{name}") for name in job.MONTH_BITS],
            F.min(col("first_time")).alias(f"{p}_first_time"),
            F.max(col("last_time")).alias(f"{p}_last_time"),
            F.sum(col("times")).alias(f"{p}_times"),
            (F.sum(col("gap_sumsq")) + F.coalesce(F.sum(col("bridge") * col("bridge")), F.lit(0))).alias(f"{p}_gap_sumsq"),
        ]
    state = with_bridges.groupBy("address").agg(*aggs).select(
        "address",
        *[F.col(f"{p}_{n}").cast(t).alias(f"{p}_{n}") for p in job.SIDE_PREFIX.values() for n, t in job.PARTIALS.items()],
    )
    assert state.schema == job.empty_state(spark).schema, (state.schema, job.empty_state(spark).schema)
    rows = job.write_table(spark, state, str(out / "base"), ["address"], job.state_files(30 * 10**6))
    # A pool's own row (address NULL) stays NULL; its tallies add up over the copies like any other.
    receipts = receipts_day.select(renamed(1).alias("address"), "pool_id", "pool_name", *job.RECEIPT_TALLIES)
    for k in range(2, days_before + 1):
        receipts = receipts.unionByName(
            receipts_day.select(renamed(k).alias("address"), "pool_id", "pool_name", *job.RECEIPT_TALLIES))
    receipts = receipts.groupBy("address", "pool_id", "pool_name").agg(
        *[F.sum(c).alias(c) for c in job.RECEIPT_TALLIES])
    job.write_table(spark, receipts, str(out / "coinbase_receipts"), ["address", "pool_id"])
    spark.stop()
    (out / ".done").write_text(json.dumps({"addresses": rows}) + "\n")
    return out


def install_state(target: targets.Target, src: Path | None) -> int:
    """Empty state/ and features/, then put `src` in place as the state after the day before
    DS (a base snapshot and its manifest, and the receipts). Returns the state's addresses."""
    for kind in ("state", "features"):
        shutil.rmtree(f"{target.bucket}/{kind}", ignore_errors=True)
    if src is None:
        return 0
    addresses = json.loads((src / ".done").read_text())["addresses"]
    base = Path(datasets.state_base_dir(target, DAY_BEFORE))
    base.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "base", base)
    receipts = Path(datasets.state_dir(target, "coinbase_receipts", DAY_BEFORE))
    receipts.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "coinbase_receipts", receipts)
    manifest = datasets.state_dir(target, "address_state", DAY_BEFORE)
    fs = versioned.LocalFS()
    versioned.switch(fs, manifest, [versioned.relative_to(manifest, versioned.resolve(fs, str(base))[0])],
                     {"addresses": addresses, "base": DAY_BEFORE, "deltas": [], "delta_rows": 0})
    return addresses


def state_in_subprocess(days_before: int) -> Path:
    """`build_state` in its own Python: its JVM ends with it and counts in no measured run."""
    out = STATES / f"{days_before}"
    if not (out / ".done").exists():
        log(f"building the synthetic state of {days_before} earlier days ...")
        subprocess.run([sys.executable, __file__, "--build-state", str(days_before)], check=True,
                       env={**os.environ, **spark_runner.spark_env()})
    return out


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    import duckdb
    import pyspark

    return {"nproc": os.cpu_count(), "memory": f"{mem_kb / 1024 / 1024:.1f} GiB", "cpu": cpu,
            "python": platform.python_version(), "java": java, "pyspark": pyspark.__version__,
            "duckdb": duckdb.__version__, "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def best_of(fn, repeat: int = REPEAT) -> dict:
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r["batch"])


def main() -> int:
    target = bench_target()
    started = time.perf_counter()
    fig = {"machine": machine(), "rows": prepare(target), "history": {}}
    rows = fig["rows"]
    log(f"day {DS}: {rows['blocks']} blocks, {rows['outputs']} outputs, {rows['inputs']} inputs")
    for n in sorted(HISTORY):
        src = None if n == 1 else state_in_subprocess(n - 1)

        def one():
            addresses = install_state(target, src)
            r = run_batch(target)
            r["state_before"] = addresses
            return r

        log(f"feature batch, day {n} of history ...")
        r = best_of(one)
        fig["history"][n] = r
        log(f"day {n}: start-up {r['startup']:.1f} s, batch {r['batch']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB; "
            f"{r['line']}")
    last = max(HISTORY)
    if last > 1:  # the last run left the state after day `last`: its base and the day's delta
        log(f"compaction of the state after day {last} (its base and its delta) ...")
        fig["compaction"] = run_batch(target, compact=True)
        log(f"compaction {fig['compaction']['batch']:.1f} s")
    log("DuckDB: address_features.sql for the day, materialised ...")
    fig["duck"] = duckdb_day(target)
    log(f"DuckDB {fig['duck']['seconds']:.2f} s, {fig['duck']['rows']} rows")
    report = render(fig)
    print()
    print(report)
    with RESULTS.open("a") as f:
        f.write("\n" + report + "\n")
    log(f"appended to {RESULTS.relative_to(ROOT)}; bench done in {time.perf_counter() - started:.0f} s")
    return 0


def _verdict(value: float, target: float) -> str:
    return f"met (≤ {target:g})" if value <= target else f"MISSED ({value / target:.2f}× the target {target:g})"


def _phase_table(r: dict) -> str:
    lines = ["| phase | driver wall s |", "|---|---|"]
    lines += [f"| {name.split(': ', 1)[-1]} | {seconds:.2f} |" for name, seconds in r["driver_phases"].items()]
    return "\n".join(lines) + "\n\n" + spark_profile.markdown(r["profile"])


def render(fig: dict) -> str:
    m, rows, hist, duck = fig["machine"], fig["rows"], fig["history"], fig["duck"]
    lines = [
        f"## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']} RAM; Python {m['python']}, {m['java']}, "
        f"pyspark {m['pyspark']}, duckdb {m['duckdb']}. Load average (1, 5, 15 min) at the start: {m['load']}. "
        f"Spark `local[2]` with the local target's properties; DuckDB with {duck['threads']} threads.",
        "",
        f"Data: synthetic day {DS} (`synthetic_chain.generate(..., tx_per_day={TX_PER_DAY}, seed={SEED})`): "
        f"{rows['blocks']} blocks, {rows['outputs']:,} outputs, {rows['inputs']:,} inputs "
        f"({rows['outputs'] + rows['inputs']:,} flows).",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for n, r in hist.items():
        lines.append(f"| day {n} of history: session start-up / batch | {r['startup']:.1f} s / **{r['batch']:.1f} s** |")
        lines.append(f"| day {n}: addresses in the state before; peak RSS (driver + JVM) | "
                     f"{r['state_before']:,}; {r['peak_rss_mb']:.0f} MB |")
    if "compaction" in fig:
        lines.append(f"| compaction of the state after day {max(hist)} (base + the day's delta → base) | "
                     f"{fig['compaction']['batch']:.1f} s |")
    lines.append(f"| DuckDB address_features.sql, 1 day, materialised | {duck['seconds']:.2f} s ({duck['rows']:,} rows) |")
    verdicts = []
    if 1 in hist:
        ratio = hist[1]["batch"] / duck["seconds"]
        lines.append(f"| Spark batch / DuckDB (1 day) | **{ratio:.1f}×** |")
        verdicts.append(f"- Spark batch / DuckDB ≤ {RATIO_TARGET:g}×: {_verdict(ratio, RATIO_TARGET)}.")
        last = max(hist)
        if last != 1:
            growth = hist[last]["batch"] / hist[1]["batch"]
            lines.append(f"| batch day {last} / day 1 | **{growth:.2f}** |")
            verdicts.append(f"- day {last} / day 1 ≤ {GROWTH_TARGET:g}: {_verdict(growth, GROWTH_TARGET)}.")
    lines += ["", "Targets:", *verdicts, ""]
    for n, r in hist.items():
        lines += [f"Time per phase, day {n} (the driver's wall time per phase; then Spark's event log: "
                  "executor times summed over tasks):", "", _phase_table(r)]
    lines += [
        "Method: each Spark figure is one run (best of "
        f"{REPEAT}) of `spark_jobs/build_features.py`'s `run` in a fresh Python process with a local[2] "
        "SparkSession of the local target's properties (as the local tasks run it in their process); "
        "the session's start-up is timed apart. Day 1 starts from an empty `state/` and `features/`. "
        "Day N > 1 runs the same day on a synthetic state of N − 1 earlier days, installed as a base "
        "snapshot with its manifest (what a compaction leaves): copies of the day's own partials, times "
        "shifted back k days and months set to the month of day − k; "
        f"{100 - SHARED_SHARE * 100:.0f} % of the addresses renamed per copy (`address~k`), "
        f"{SHARED_SHARE * 100:.0f} % shared by every day, folded exactly as `merge_state` folds them. "
        "DuckDB: include/sql/address_features.sql with first_day = ds = the day, `sql.to_duckdb`, "
        "`CREATE TEMP TABLE … AS` over the bench warehouse, best of 2. Peak RSS: the highest sum of "
        "VmRSS over the run's process and its descendants (the JVM), polled every 0.1 s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build-state"]:
        build_state(bench_target(), int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:2] == ["--run"]:
        _run_here(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main())
