"""Benchmark of the feature batch (not a test): prints figures, appends them to bench/results.md.

    make bench            # or: PYTHONPATH=plugins:. .venv/bin/python bench/bench_features.py

On one real-size synthetic day (500,000 transactions; the generator makes ~1.7 M inputs and
outputs of them, fewer than the ~2.5 M of a real day), kept under
bench/data/ and generated once (reused when present):

1. generate → load into a bench warehouse → extract into a bench bucket;
2. the Spark feature batch through the real job (`features.build_features`, spark-submit,
   local[2], the target's spark_conf), from an empty state, minus the start-up of a
   spark-submit that only creates and stops a SparkSession;
3. the same aggregation in DuckDB (include/sql/address_features.sql, transpiled), materialised;
4. the daily batch at 1, 10 and 30 days of history, on synthetic states (see `build_state`);
5. the peak memory (RSS) of the spark-submit process tree (JVM + Python driver).

Settings (environment): BENCH_REPEAT (runs per Spark figure, the best is kept; default 1),
BENCH_HISTORY (default "1,10,30").
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "plugins", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TZ", "UTC")

from pool_classifier import datasets, targets  # noqa: E402
from pool_classifier.io import spark_runner, sql, warehouse
from pool_classifier.steps import build_features as features
from pool_classifier.steps import extract_day as extract
from tools import synthetic_chain

BENCH = ROOT / "bench"
DATA = BENCH / "data"
CHAIN = DATA / "chain"
WAREHOUSE = DATA / "warehouse" / "bigquery-public-data.duckdb"
BUCKET = DATA / "bucket"
STATES = DATA / "synthetic_states"
RESULTS = BENCH / "results.md"

DAY = dt.date(2024, 3, 1)
DS = DAY.isoformat()
TX_PER_DAY = 500_000
SEED = 1
SHARED_SHARE = 0.30  # share of a day's addresses that are also active on the other days
RATIO_TARGET = 5.0
GROWTH_TARGET = 1.5
REPEAT = int(os.environ.get("BENCH_REPEAT", "1"))
HISTORY = [int(x) for x in os.environ.get("BENCH_HISTORY", "1,10,30").split(",")]

NOOP_JOB = '''
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("bench start-up").getOrCreate()
spark.stop()
print("started and stopped")
'''


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
    marker = BUCKET / "extracts" / ".extracted"
    if not marker.exists():
        log("extracting the day into the bench bucket ...")
        extract.extract_day(target, DS)
        marker.write_text("ok\n")
    import duckdb

    rows = {}
    for table in ("blocks", "outputs", "inputs"):
        path = f"{BUCKET}/extracts/{table}/dt={DS}/*.parquet"
        rows[table] = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    return rows


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
    """Polls the summed RSS of every descendant of this process (spark-submit's JVM and the
    job's Python driver) every 0.1 s; `peak_mb` is the highest sum seen."""

    def __init__(self):
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            seen, todo, total = set(), _children(me), 0
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
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

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


def timed_spark(fn, repeat: int = REPEAT) -> dict:
    """Best wall time of `fn()` over `repeat` runs, with the peak RSS of its process tree."""
    best, peak, out = None, 0.0, None
    for _ in range(repeat):
        with TreeRSS() as rss:
            t = time.perf_counter()
            out = fn()
            seconds = time.perf_counter() - t
        peak = max(peak, rss.peak_mb)
        best = seconds if best is None else min(best, seconds)
    return {"seconds": best, "peak_rss_mb": peak, "last_line": out}


def startup(target: targets.Target) -> dict:
    """A spark-submit (same master, conf, log config) of a script that only creates and stops
    a SparkSession: the fixed cost of every batch (JVM, Python driver, session)."""
    script = DATA / "noop_spark.py"
    script.write_text(NOOP_JOB)
    timed_spark(lambda: spark_runner.run_local(target, script, []), repeat=1)  # warm the OS caches
    return timed_spark(lambda: spark_runner.run_local(target, script, []), repeat=max(REPEAT, 2))


def clear_outputs(target: targets.Target) -> None:
    for kind in ("state", "features"):
        shutil.rmtree(f"{target.bucket}/{kind}", ignore_errors=True)


def spark_day(target: targets.Target) -> dict:
    return timed_spark(lambda: features.build_features(target, DS), repeat=1)


def duckdb_day(target: targets.Target) -> dict:
    query = sql.to_duckdb(sql.render("address_features", first_day=DS, ds=DS))
    best, rows = None, 0
    for _ in range(max(REPEAT, 2)):  # the first run also warms the OS caches
        con = extract.connect_warehouse(target.warehouse)
        try:
            t = time.perf_counter()
            con.execute(f"CREATE TEMP TABLE bench_features AS {query}")
            seconds = time.perf_counter() - t
            rows = con.execute("SELECT count(*) FROM bench_features").fetchone()[0]
        finally:
            con.close()
        best = seconds if best is None else min(best, seconds)
    return {"seconds": best, "rows": rows, "threads": _duckdb_threads()}


def _duckdb_threads() -> int:
    import duckdb

    return duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]


def parquet_rows(folder: str) -> int:
    import duckdb

    return duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchone()[0]


# ---------------------------------------------------------------- synthetic history


def build_state(target: targets.Target, days_before: int) -> Path:
    """The state after `days_before` days that precede DS, in the job's layout and schema.

    Each earlier day k (1 = the day before DS) is a copy of DS's own partials (the job's
    `day_partials(ordinary_flows(...))`) with block times shifted back k whole days and the
    month fields set to the month of DS - k. 70 % of the addresses (chosen by a hash of the
    address) are renamed per copy (suffix `~k`), so they are new every day; 30 % keep their
    name and are active on every day. The copies are combined exactly as folding
    `merge_state` over them in date order: counts and sums add, min/max of months and
    times, union of month sets, and the gap between one day's last time and the next active
    day's first time is added to gap_sum/gap_sumsq (the "bridge" of `merge_state`).
    Coinbase receipts: the day's receipts (`coinbase_receipts(attribute_blocks(...))`),
    copied and renamed the same way, summed per (address, pool) like `merge_receipts`.
    Written once under bench/data/synthetic_states/<n>/ and reused.
    """
    out = STATES / f"{days_before}"
    if (out / ".done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    from spark_jobs import build_features as job

    os.environ.update(spark_runner.spark_env())
    builder = SparkSession.builder.master(target.spark_conf["spark.master"]).appName("bench synthetic state")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in target.spark_conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        outputs = job.read_extract(spark, target, "outputs", DS)
        inputs = job.read_extract(spark, target, "inputs", DS)
        blocks = job.read_extract(spark, target, "blocks", DS)
        pools = spark.read.option("multiLine", True).json(str(datasets.POOLS_FILE))
        day = job.day_partials(job.ordinary_flows(outputs, inputs))
        day_path = str(STATES / "day_partials")
        if not Path(day_path).exists():
            day.write.parquet(day_path)
        day = spark.read.parquet(day_path)
        coinbase_outputs = outputs.where("is_coinbase").select("block_number", "address")
        receipts_day = job.coinbase_receipts(job.attribute_blocks(blocks, coinbase_outputs, pools), coinbase_outputs)

        shared = (F.abs(F.xxhash64("address", F.lit(7))) % 1000) < int(SHARED_SHARE * 1000)

        def renamed(k: int) -> F.Column:
            return F.when(shared, F.col("address")).otherwise(F.concat(F.col("address"), F.lit(f"~{k}")))

        copies = []
        for k in range(1, days_before + 1):
            month = (DAY - dt.timedelta(days=k)).replace(day=1).isoformat()
            cols = [renamed(k).alias("address"), F.lit(k).alias("k")]
            for p in job.SIDE_PREFIX.values():
                present = F.col(f"{p}_n").isNotNull()
                m = F.when(present, F.lit(month).cast("date"))
                for name in job.PARTIALS:
                    c = F.col(f"{p}_{name}")
                    if name in ("month_min", "month_max"):
                        c = m
                    elif name == "months":
                        c = F.when(present, F.array(F.lit(month).cast("date")))
                    elif name in ("first_time", "last_time"):
                        c = c - F.lit(k * 86400)
                    cols.append(c.alias(f"{p}_{name}"))
            copies.append(day.select(*cols))
        union = copies[0]
        for c in copies[1:]:
            union = union.unionByName(c)

        aggs = []
        bridges = []
        for p in job.SIDE_PREFIX.values():
            # Days of one address in date order (k descending); the previous active day of
            # this side gives the bridge, as merge_state adds it.
            w = Window.partitionBy("address").orderBy(F.desc("k"))
            prev_last = F.last(F.col(f"{p}_last_time"), ignorenulls=True).over(
                w.rowsBetween(Window.unboundedPreceding, -1)
            )
            bridge = F.when(F.col(f"{p}_n").isNotNull(), (F.col(f"{p}_first_time") - prev_last).cast(job.SATOSHI_SUM))
            bridges.append(bridge.alias(f"{p}_bridge"))
        with_bridges = union.select("*", *bridges)
        for p in job.SIDE_PREFIX.values():
            def col(name):
                return F.col(f"{p}_{name}")

            any_side = F.count(col("n")) > 0
            bridge = col("bridge")
            aggs += [
                F.sum(col("n")).alias(f"{p}_n"),
                F.sum(col("value_sum")).alias(f"{p}_value_sum"),
                F.sum(col("value_sumsq")).alias(f"{p}_value_sumsq"),
                F.sum(col("tx")).alias(f"{p}_tx"),
                F.min(col("month_min")).alias(f"{p}_month_min"),
                F.max(col("month_max")).alias(f"{p}_month_max"),
                F.when(any_side, F.array_sort(F.array_distinct(F.flatten(F.collect_list(col("months"))))))
                .alias(f"{p}_months"),
                F.min(col("first_time")).alias(f"{p}_first_time"),
                F.max(col("last_time")).alias(f"{p}_last_time"),
                F.sum(col("times")).alias(f"{p}_times"),
                (F.sum(col("gap_sum")) + F.coalesce(F.sum(bridge), F.lit(0))).alias(f"{p}_gap_sum"),
                (F.sum(col("gap_sumsq")) + F.coalesce(F.sum(bridge * bridge), F.lit(0))).alias(f"{p}_gap_sumsq"),
            ]
        state = with_bridges.groupBy("address").agg(*aggs)
        state = state.select(
            "address",
            *[F.col(f"{p}_{n}").cast(t).alias(f"{p}_{n}") for p in job.SIDE_PREFIX.values() for n, t in job.PARTIALS.items()],
        )
        assert state.schema == job.empty_state(spark).schema, (state.schema, job.empty_state(spark).schema)
        state.write.parquet(str(out / "address_state"))

        rcopies = [
            receipts_day.select(renamed(k).alias("address"), "pool_id", "pool_name", "coinbase_outputs")
            for k in range(1, days_before + 1)
        ]
        receipts = rcopies[0]
        for c in rcopies[1:]:
            receipts = receipts.unionByName(c)
        receipts = receipts.groupBy("address", "pool_id", "pool_name").agg(
            F.sum("coinbase_outputs").alias("coinbase_outputs")
        )
        receipts.write.parquet(str(out / "coinbase_receipts"))
    finally:
        spark.stop()
    (out / ".done").write_text("ok\n")
    return out


def state_in_subprocess(days_before: int) -> Path:
    """`build_state` in its own Python: its SparkSession's JVM ends with it, so it neither
    holds memory nor counts in the peak RSS of the measured runs."""
    out = STATES / f"{days_before}"
    if not (out / ".done").exists():
        log(f"building the synthetic state of {days_before} earlier days ...")
        subprocess.run([sys.executable, __file__, "--build-state", str(days_before)], check=True)
    return out


def install_state(target: targets.Target, src: Path | None) -> None:
    """Empty state/ and features/, then put `src` in place as the state of the day before DS."""
    clear_outputs(target)
    if src is None:
        return
    day_before = (DAY - dt.timedelta(days=1)).isoformat()
    for table in ("address_state", "coinbase_receipts"):
        dest = Path(target.bucket) / "state" / table / f"dt={day_before}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src / table, dest)


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    import duckdb
    import pyspark

    return {
        "nproc": os.cpu_count(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "java": java,
        "pyspark": pyspark.__version__,
        "duckdb": duckdb.__version__,
    }


def main() -> int:
    target = bench_target()
    started = time.perf_counter()
    rows = prepare(target)
    log(f"day {DS}: {rows['blocks']} blocks, {rows['outputs']} outputs, {rows['inputs']} inputs "
        f"({rows['outputs'] + rows['inputs']} flows)")

    log("spark-submit start-up (a job that only creates and stops a SparkSession) ...")
    start = startup(target)
    log(f"start-up {start['seconds']:.1f} s")

    history = {}
    for n in HISTORY:
        src = None if n == 1 else state_in_subprocess(n - 1)
        state_in = 0 if src is None else parquet_rows(str(src / "address_state"))
        log(f"feature batch, day {n} of history ({state_in} state rows before) ...")
        r = None
        for _ in range(REPEAT):
            install_state(target, src)  # the batch starts from the same state every time
            one_run = spark_day(target)
            if r is None or one_run["seconds"] < r["seconds"]:
                r = {**one_run, "peak_rss_mb": max(one_run["peak_rss_mb"], r["peak_rss_mb"] if r else 0)}
        r["state_rows_before"] = state_in
        r["state_rows_after"] = parquet_rows(f"{target.bucket}/state/address_state/dt={DS}")
        r["batch"] = r["seconds"] - start["seconds"]
        history[n] = r
        log(f"day {n}: total {r['seconds']:.1f} s, batch {r['batch']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB; "
            f"{r['last_line']}")
    one = history.get(1)
    featured = parquet_rows(f"{target.bucket}/features/address_features/dt={DS}") if one else None

    log("DuckDB: address_features.sql for the day, materialised ...")
    duck = duckdb_day(target)
    log(f"DuckDB {duck['seconds']:.2f} s, {duck['rows']} rows")

    fig = {"rows": rows, "start": start, "history": history, "duck": duck, "machine": machine()}
    report = render(fig, featured)
    print()
    print(report)
    with RESULTS.open("a") as f:
        if RESULTS.stat().st_size == 0:
            f.write("# Feature batch benchmark\n\nAppended by `make bench` (bench/bench_features.py); "
                    "newest section last.\n")
        f.write("\n" + report + "\n")
    log(f"appended to {RESULTS.relative_to(ROOT)}; bench done in {time.perf_counter() - started:.0f} s")
    return 0


def _verdict(value: float, target: float) -> str:
    if value <= target:
        return f"met (≤ {target:g})"
    return f"MISSED by {value - target:.2f} ({value / target:.2f}× the target {target:g})"


def render(fig: dict, featured: int | None) -> str:
    m, rows, start, hist, duck = fig["machine"], fig["rows"], fig["start"], fig["history"], fig["duck"]
    lines = [
        f"## {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']} RAM; Python {m['python']}, "
        f"{m['java']}, pyspark {m['pyspark']}, duckdb {m['duckdb']}. Spark `local[2]` with the local "
        f"target's spark_conf; DuckDB with {duck['threads']} threads. Load average (1 min) when "
        f"the report was written: {os.getloadavg()[0]:.1f} (other work on the machine slows every figure).",
        "",
        f"Data: synthetic day {DS} (`synthetic_chain.generate(..., tx_per_day={TX_PER_DAY}, seed={SEED})`): "
        f"{rows['blocks']} blocks, {rows['outputs']:,} outputs, {rows['inputs']:,} inputs "
        f"({rows['outputs'] + rows['inputs']:,} flows)" + (f"; {featured:,} addresses featured." if featured else "."),
        "",
        "| figure | value |",
        "|---|---|",
        f"| spark-submit start-up (create + stop a SparkSession) | {start['seconds']:.1f} s |",
    ]
    for n, r in hist.items():
        lines.append(
            f"| day {n} of history: spark-submit total / batch (total − start-up) | "
            f"{r['seconds']:.1f} s / **{r['batch']:.1f} s** |"
        )
        lines.append(f"| day {n}: state rows before → after | {r['state_rows_before']:,} → {r['state_rows_after']:,} |")
        lines.append(f"| day {n}: peak RSS, JVM + Python driver | {r['peak_rss_mb']:.0f} MB |")
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
    peak = max(r["peak_rss_mb"] for r in hist.values())
    lines.append(f"| peak RSS of the runs (max), JVM + Python driver summed | {peak:.0f} MB |")
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines.append(f"| largest single child process (ru_maxrss of RUSAGE_CHILDREN: the JVM) | {largest:.0f} MB |")
    lines += [
        "",
        "Targets:",
        *verdicts,
        "",
        "Method: each Spark figure is `pool_classifier.steps.build_features.build_features(target, ds)` (spark-submit "
        f"of spark_jobs/build_features.py), best of {REPEAT}; the batch is that wall time minus the "
        f"start-up, measured as the best of {max(REPEAT, 2)} (after one warm-up) spark-submits, with the "
        "same master, conf and log config, of a script that only creates and stops a SparkSession. "
        "Day 1 starts from an empty `state/` and `features/`. Day N > 1 runs the same day on a synthetic "
        "state of N − 1 earlier days written as `state/{address_state,coinbase_receipts}/dt=<day before>`: "
        "copies of the day's own partials (the job's `day_partials(ordinary_flows(...))` and "
        "`coinbase_receipts(attribute_blocks(...))`), times shifted back k whole days and month fields "
        f"set to the month of day − k; {100 - SHARED_SHARE * 100:.0f} % of the addresses are renamed per "
        f"copy (`address~k`), {SHARED_SHARE * 100:.0f} % are shared by every day; the copies are combined "
        "exactly as folding `merge_state` (sums, min/max, month-set union, the bridge gap between "
        "consecutive active days). DuckDB: include/sql/address_features.sql rendered with "
        "first_day = ds = the day, `sql.to_duckdb`, `CREATE TEMP TABLE … AS` over the bench warehouse, "
        "best of 2. Peak RSS: the highest sum of VmRSS over every descendant process of the bench "
        "(spark-submit's JVM and the job's Python driver), polled from /proc every 0.1 s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build-state"]:
        build_state(bench_target(), int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
