"""Benchmark of training and scoring (not a test): prints figures, appends them to bench/model_results.md.

    PYTHONPATH=plugins:. .venv/bin/python bench/bench_model.py

On the real-size synthetic day of bench/bench_features.py (500,000 transactions, ~1 M
addresses active; generated, loaded, extracted and featured once under bench/data/):

1. training on ~1 M addresses: every address active on the day, labelled from the day's pool
   labels, as the training set of `train.train_model` (the whole step: both candidates, the
   champion comparison, permutation importance, profiles, report), in its own bucket
   bench/data/model_bucket/ (target: ≤ 120 s on 2 cores);
2. scoring the same ~1 M rows with the model trained: in process (`score.score_in_process`:
   read, score, profiles, anomalies; one thread) against Spark local[2] (read, the model
   broadcast, `mapInPandas`, materialised without writing), rows per second each, and their
   ratio (target: Spark ≥ 0.5 × in process); then the whole job through spark-submit
   (`score.score_addresses`: JVM start-up, drift check, writes) for reference.

Settings (environment): BENCH_REPEAT (runs per scoring figure, the best is kept; default 2).
The machine's load average is recorded: on shared cores every wall time moves with it; the
training's CPU time does not.
"""
from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "plugins", ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TZ", "UTC")

import bench_features  # noqa: E402  (the bench day: generated, loaded and extracted once)

from pool_classifier import datasets, targets  # noqa: E402
from pool_classifier.io import spark_runner
from pool_classifier.model import scoring
from pool_classifier.steps import build_features as features
from pool_classifier.steps import score_addresses as score
from pool_classifier.steps import train_model as train

DS = bench_features.DS
MODEL_BUCKET = bench_features.DATA / "model_bucket"
RESULTS = bench_features.BENCH / "model_results.md"
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))
TRAIN_TARGET_S = 120.0
SCORE_RATIO_TARGET = 0.5

log = bench_features.log


def model_target() -> targets.Target:
    return dataclasses.replace(targets.current_target(), bucket=str(MODEL_BUCKET))


def prepare() -> int:
    """The day's features (built once), and a training set of every active address."""
    import pandas as pd

    day = bench_features.bench_target()
    bench_features.prepare(day)
    if not Path(datasets.features_dir(day, "address_features", DS)).exists():
        log("building the day's features (Spark, once) ...")
        features.build_features(day, DS)
    target = model_target()
    training = Path(datasets.features_dir(target, "training_features", DS))
    if not training.exists():
        log("writing the ~1 M-address training set ...")
        for table in ("address_features", "address_labels"):
            dst = Path(datasets.features_dir(target, table, DS))
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(datasets.features_dir(day, table, DS), dst, dirs_exist_ok=True)
        rows = pd.read_parquet(datasets.features_dir(day, "address_features", DS))
        labels = pd.read_parquet(datasets.features_dir(day, "address_labels", DS))
        rows = rows.merge(labels[["address", "pool_id", "pool_name", "label_source"]], on="address", how="left")
        rows["label"] = rows["pool_id"].notna().astype("int32")
        training.mkdir(parents=True)
        rows.to_parquet(training / "part-00000.parquet", index=False)
    import pyarrow.dataset as pads

    return pads.dataset(str(training), format="parquet").count_rows()


def _cpu_seconds() -> float:
    """CPU time of this process so far (all its threads): what the work costs, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_training(target: targets.Target) -> dict:
    shutil.rmtree(datasets.models_root(target), ignore_errors=True)  # no champion: a first training
    t, cpu = time.perf_counter(), _cpu_seconds()
    result = train.train_model(target, DS)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu, "fit_seconds": result["fit_seconds"],
            "version": result["version"], "candidates": {k: v["pr_auc"] for k, v in result["candidates"].items()}}


def bench_in_process(target: targets.Target) -> dict:
    best, rows = None, 0
    for _ in range(REPEAT):
        t = time.perf_counter()
        rows = len(score.score_in_process(target, DS))
        best = min(best or 1e9, time.perf_counter() - t)
    return {"rows": rows, "seconds": best, "rows_per_s": rows / best}


def bench_spark(target: targets.Target) -> dict:
    from pyspark.sql import SparkSession

    from spark_jobs import score_addresses as job

    # The executors' Python: this venv, the project's package (as spark-submit is given them).
    env = spark_runner.spark_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
    os.environ.update({k: env[k] for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH", "SPARK_LOCAL_IP")})
    builder = SparkSession.builder.master(target.spark_conf["spark.master"]).appName("bench scoring")
    for key, value in target.spark_conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(job.ARROW_BATCH_ROWS))
    try:
        model = job.load_model(spark, target, job.resolve_version(spark, target, DS, None))
        broadcast = spark.sparkContext.broadcast(model)
        runs = []
        for _ in range(REPEAT):
            t = time.perf_counter()
            feats = spark.read.parquet(datasets.features_dir(target, "address_features", DS))
            labels = spark.read.parquet(datasets.features_dir(target, "address_labels", DS))
            scored = job.score(job.with_known_pool(feats, labels), broadcast, scoring.model_inputs(model[3]), DS)
            scored.write.format("noop").mode("overwrite").save()
            runs.append(time.perf_counter() - t)
        rows = spark.read.parquet(datasets.features_dir(target, "address_features", DS)).count()
        partitions = spark.read.parquet(datasets.features_dir(target, "address_features", DS)).rdd.getNumPartitions()
    finally:
        spark.stop()
    return {"rows": rows, "seconds": min(runs), "first_run_s": runs[0], "rows_per_s": rows / min(runs),
            "partitions": partitions}


def bench_job(target: targets.Target) -> dict:
    t = time.perf_counter()
    result = score.score_addresses(target, DS)
    return {"seconds": time.perf_counter() - t, "rows": result["rows"], "drift": result["drift"]["status"]}


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def render(fig: dict) -> str:
    tr, ip, sp, jb = fig["training"], fig["in_process"], fig["spark"], fig["job"]
    ratio = sp["rows_per_s"] / ip["rows_per_s"]
    m = fig["machine"]
    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: model training and scoring",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}, pyspark {m['pyspark']}; "
        f"load average before / after: {fig['load_before']} / {fig['load_after']}.",
        "",
        "| figure | value | target |",
        "|---|---:|---|",
        f"| training set | {fig['training_rows']:,} addresses | ~1 M |",
        f"| train_model (whole step) | {tr['seconds']:.1f} s | ≤ {TRAIN_TARGET_S:.0f} s: {_verdict(tr['seconds'] <= TRAIN_TARGET_S)} |",
        f"| … its CPU time (÷ 2 = the wall time on 2 idle cores at best) | {tr['cpu_seconds']:.1f} s "
        f"(÷ 2 = {tr['cpu_seconds'] / 2:.1f} s) | |",
    ]
    lines += [f"| … fit of `{name}` | {s:.1f} s | |" for name, s in tr["fit_seconds"].items()]
    lines += [
        f"| scoring in process (read + score + profiles) | {ip['rows']:,} rows in {ip['seconds']:.1f} s = "
        f"{ip['rows_per_s']:,.0f} rows/s | |",
        f"| scoring in Spark local[2] (read + mapInPandas, materialised) | {sp['rows']:,} rows in {sp['seconds']:.1f} s = "
        f"{sp['rows_per_s']:,.0f} rows/s (first run {sp['first_run_s']:.1f} s, {sp['partitions']} partitions) | |",
        f"| Spark / in process | {ratio:.2f} × | ≥ {SCORE_RATIO_TARGET} ×: {_verdict(ratio >= SCORE_RATIO_TARGET)} |",
        f"| the scoring job through spark-submit (start-up, drift check, writes) | {jb['seconds']:.1f} s | |",
        "",
        f"Model `{tr['version']}`; PR-AUC on the evaluation rows: "
        + ", ".join(f"{k} {v:.4f}" for k, v in tr["candidates"].items()) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    fig = {"machine": bench_features.machine(), "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    fig["training_rows"] = prepare()
    target = model_target()
    log(f"training on {fig['training_rows']:,} addresses ...")
    fig["training"] = bench_training(target)
    log(f"trained in {fig['training']['seconds']:.1f} s; scoring in process ...")
    fig["in_process"] = bench_in_process(target)
    log("scoring in Spark ...")
    fig["spark"] = bench_spark(target)
    log("the scoring job through spark-submit ...")
    fig["job"] = bench_job(target)
    fig["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    text = render(fig)
    print(text)
    with RESULTS.open("a") as out:
        out.write(text + "\n")
    log(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
