"""Benchmark of the feature contributions in the scoring batch (not a test): the same rows scored
with and without them, in one run, per model kind; appends to bench/contributions_results.md.

    PYTHONPATH=plugins:. .venv/bin/python bench/bench_contributions.py

Data: the model tests' generated day (tests/model/features_day.py) at BENCH_ROWS addresses (1 %
pools; default 101,000), in a throw-away bucket. Models: the two candidates of training.py as
they are (200 trees each), each trained alone by `train_model`. Measured: `score_in_process`
(read, score, profiles, anomalies, and the contributions) with `top_k` = 0 (no contributions:
the batch as it was) and 5 (the default), alternated, the best of BENCH_REPEAT runs each; and the
contributions alone (`Explainer.contributions`) against the model's own predict_proba.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "plugins", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
os.environ.setdefault("TZ", "UTC")

RESULTS = ROOT / "bench" / "contributions_results.md"
ROWS = int(os.environ.get("BENCH_ROWS", "101000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SPARK = os.environ.get("BENCH_SPARK", "1") != "0"  # also the Spark job's scoring (local[2])
DS = "2024-03-02"


def _best(fn) -> float:
    best = None
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        best = min(best or 1e9, time.perf_counter() - t)
    return best


def bench_kind(kind: str, folder: Path) -> dict:
    from pool_classifier import targets
    from pool_classifier.model import registry, training
    from pool_classifier.model.profiles import ProfileConfig
    from pool_classifier.steps import score_addresses, train_model
    from tests.model.features_day import write_day

    os.environ[targets.TARGET_ENV] = "local"
    os.environ[targets.local.DATA_DIR_ENV] = str(folder / kind)
    target = targets.current_target()
    pools = max(ROWS // 101, 10)
    frame = write_day(target, DS, n_pools=pools, n_others=ROWS - pools)
    candidate = {"rf": training.BASELINE, "hgb": training.CHALLENGER}[kind]
    t = time.perf_counter()
    version = train_model.train_model(target, DS, training.TrainConfig(
        candidates=(candidate,), profiles=ProfileConfig(k_max=3), importance_repeats=1))["version"]
    trained = time.perf_counter() - t
    loaded = registry.load_version(target, version)
    x = training.features_matrix(frame, loaded.features)
    t = time.perf_counter()
    explainer = loaded.explainer
    build = time.perf_counter() - t

    without = with_ = None
    for _ in range(REPEAT):  # alternated, so both see the same load
        t = time.perf_counter()
        score_addresses.score_in_process(target, DS, top_k=0)
        without = min(without or 1e9, time.perf_counter() - t)
        t = time.perf_counter()
        scored = score_addresses.score_in_process(target, DS, top_k=5)
        with_ = min(with_ or 1e9, time.perf_counter() - t)
    predict = _best(lambda: training.predict_scores(loaded.model, x))
    contributions = _best(lambda: explainer.explain(x))
    raw, phi = explainer.explain(x)
    model_raw = explainer.raw_output(x)
    worst = float(abs(explainer.bias + phi.sum(axis=1) - model_raw).max())
    same = bool((raw == model_raw).all())
    spark = bench_spark(target, version) if SPARK else None
    return {"kind": kind, "version": version, "rows": len(scored), "train_s": trained, "build_s": build,
            "spark": spark,
            "without_s": without, "with_s": with_, "predict_s": predict, "contributions_s": contributions,
            "worst_sum_error": worst, "raw_equal": same, "leaves": sum(len(t) for t in explainer._rows)}


def bench_spark(target, version: str) -> dict:
    """The Spark job's scoring (read, the model broadcast, mapInPandas, materialised without
    writing) on local[2], with top_k 0 and 5 alternated; best of REPEAT each."""
    from pyspark.sql import SparkSession

    from pool_classifier import datasets
    from pool_classifier.io import spark_runner
    from pool_classifier.model import scoring
    from spark_jobs import score_addresses as job

    env = spark_runner.spark_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(ROOT)])
    os.environ.update({k: env[k] for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH", "SPARK_LOCAL_IP")})
    spark = (SparkSession.builder.master("local[2]").appName("bench contributions")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(job.ARROW_BATCH_ROWS))
    best = {0: None, 5: None}
    try:
        model = job.load_model(spark, target, version)
        broadcast = spark.sparkContext.broadcast(model)
        for _ in range(REPEAT):
            for k in best:
                t = time.perf_counter()
                feats = spark.read.parquet(datasets.features_dir(target, "address_features", DS))
                labels = spark.read.parquet(datasets.features_dir(target, "address_labels", DS))
                scored = job.score(job.with_known_pool(feats, labels), broadcast, scoring.model_inputs(model[3]), DS, k)
                scored.write.format("noop").mode("overwrite").save()
                best[k] = min(best[k] or 1e9, time.perf_counter() - t)
    finally:
        spark.stop()
    return {"without_s": best[0], "with_s": best[5]}


def render(figures: list[dict], load: tuple[str, str]) -> str:
    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: contributions in the scoring batch",
        "",
        f"{figures[0]['rows']:,} addresses (tests/model/features_day.py), best of {REPEAT}; "
        f"load average before / after: {load[0]} / {load[1]}.",
        "",
        "| model | scoring in process, no contributions | with the top 5 | ratio | contributions alone "
        "vs predict_proba | worst \\|bias + Σ − raw\\| | raw output = the model's, bit for bit | tables built |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for f in figures:
        lines.append(
            f"| `{f['version']}` | {f['without_s']:.2f} s ({f['rows'] / f['without_s']:,.0f} rows/s) | "
            f"{f['with_s']:.2f} s ({f['rows'] / f['with_s']:,.0f} rows/s) | {f['with_s'] / f['without_s']:.2f} × | "
            f"{f['contributions_s']:.2f} s vs {f['predict_s']:.2f} s | {f['worst_sum_error']:.1e} | "
            f"{'yes' if f['raw_equal'] else 'NO'} | "
            f"{f['build_s']:.2f} s ({f['leaves']:,} nodes) |")
    spark = [f for f in figures if f["spark"]]
    if spark:
        lines += ["", "| model | Spark local[2] scoring, no contributions | with the top 5 | ratio |", "|---|---:|---:|---:|"]
        lines += [f"| `{f['version']}` | {f['spark']['without_s']:.2f} s | {f['spark']['with_s']:.2f} s | "
                  f"{f['spark']['with_s'] / f['spark']['without_s']:.2f} × |" for f in spark]
    return "\n".join(lines + [""])


def main() -> int:
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        figures = [bench_kind(kind, Path(tmp)) for kind in ("hgb", "rf")]
    text = render(figures, (load_before, " ".join(f"{x:.1f}" for x in os.getloadavg())))
    print(text)
    with RESULTS.open("a") as out:
        out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
