"""The Spark jobs' I/O, through Hadoop's file systems (a local folder or `gs://` alike), and the
one module of the package that imports pyspark.

Outputs are published as a new immutable version with a pointer written last
(`io/versioned.py`): a reader sees the old day or the new one, never half of one, on a local
disk and on Cloud Storage. Files are named part-00000.parquet, part-00001.parquet, … in
partition order, so a re-run writes the same files. Readers resolve the pointer
(`read_parquet`). Shared by `spark_jobs/build_features.py` and `spark_jobs/score_addresses.py`
(on Dataproc the package ships in the code zip).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pool_classifier.io import versioned


def file_system(spark: SparkSession, path: str):
    """(Hadoop Path, its FileSystem) for a path or URI."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """One small file's bytes (a local path or gs://), read in the driver; FileNotFoundError naming it."""
    hadoop_path, fs = file_system(spark, path)
    if not fs.exists(hadoop_path):
        raise FileNotFoundError(path)
    stream = fs.open(hadoop_path)
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def hadoop_fs(spark: SparkSession) -> versioned.HadoopFS:
    return versioned.HadoopFS(spark)


def exists(spark: SparkSession, location: str) -> bool:
    """True when `location` has a version in force."""
    return versioned.exists(hadoop_fs(spark), location)


def data_files(spark: SparkSession, location: str) -> list[str]:
    return versioned.data_files(hadoop_fs(spark), location)


def read_parquet(spark: SparkSession, location: str) -> DataFrame:
    """The version in force at `location` (FileNotFoundError naming it when it is absent)."""
    files = data_files(spark, location)
    if not files:
        raise FileNotFoundError(f"no version in force at {location}: run the step that writes it first")
    return spark.read.parquet(*files)


def _rename_parts(spark: SparkSession, folder: str) -> int:
    """Spark names its files part-<task partition>-<uuid>…: renamed part-00000.parquet, … in
    partition order (inside the unpublished version: invisible to readers); the rest
    (_SUCCESS, checksums) removed. Returns the number of data files."""
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    folder_path, fs = file_system(spark, folder)
    statuses = list(fs.listStatus(folder_path))
    written = sorted((s.getPath() for s in statuses if s.getPath().getName().startswith("part-")),
                     key=lambda path: path.getName())
    kept = set()
    for i, path in enumerate(written):
        name = f"part-{i:05d}.parquet"
        fs.rename(path, Path(folder_path, name))
        kept.add(name)
    for status in fs.listStatus(folder_path):
        if status.getPath().getName() not in kept:
            fs.delete(status.getPath(), True)
    return len(written)


def write_parquet(spark: SparkSession, df: DataFrame, location: str, sort_by: list[str], parts: int | None,
                  meta: dict | None = None, observe: dict | None = None) -> int:
    """`df` as `parts` sorted Parquet files (rows hash-partitioned on the first sort column),
    published as the new version of `location`. `parts=None`: `df` is already hash-partitioned
    on the first sort column (by an explicit repartition: deterministic), one file per partition,
    no second shuffle. Returns the rows written, counted by the write itself (an observed
    metric: no second pass), also kept in the pointer's meta (`rows`), with the other metrics
    `observe` asks for (name → aggregate column)."""
    from pyspark.sql import Observation

    fs = hadoop_fs(spark)
    meta = {} if meta is None else meta
    observed = Observation()
    with versioned.publish(fs, location, meta) as folder:
        if parts is None:
            out = df.sortWithinPartitions(*sort_by)
        elif parts <= 1:
            out = df.repartition(1).sortWithinPartitions(*sort_by)
        else:
            out = df.repartition(parts, sort_by[0]).sortWithinPartitions(*sort_by)
        metrics = [F.count(F.lit(1)).alias("rows"), *(c.alias(n) for n, c in (observe or {}).items())]
        out.observe(observed, *metrics).write.mode("overwrite").parquet(folder)
        _rename_parts(spark, folder)
        meta.update({k: int(v) for k, v in observed.get.items()})
    return meta["rows"]


def write_per_file(spark: SparkSession, source: str, transform, location: str, meta: dict | None = None) -> int:
    """`transform(rows of one file)` for each file in force at `source`, written as the file of
    the same name of a new version of `location`: a row-wise function of sorted files keeps
    their order and partitioning with no shuffle and no sort. The files are done side by side
    (one Spark job each, from threads: one core each). Returns the rows written."""
    from concurrent.futures import ThreadPoolExecutor

    from pyspark.sql import Observation

    files = data_files(spark, source)
    fs = hadoop_fs(spark)
    meta = {} if meta is None else meta
    description = spark.sparkContext.getLocalProperty("spark.job.description")
    with versioned.publish(fs, location, meta) as folder:
        def one(file: str) -> int:
            spark.sparkContext.setJobDescription(description)  # per thread
            observed = Observation()
            out_dir = f"{folder}/.{file.rsplit('/', 1)[-1]}"
            transform(spark.read.parquet(file)).coalesce(1).observe(observed, F.count(F.lit(1)).alias("rows")) \
                .write.mode("overwrite").parquet(out_dir)
            _rename_parts(spark, out_dir)
            Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
            out_path, out_fs = file_system(spark, out_dir)
            out_fs.rename(Path(out_dir, "part-00000.parquet"), Path(folder, file.rsplit("/", 1)[-1]))
            out_fs.delete(out_path, True)
            return int(observed.get["rows"])

        with ThreadPoolExecutor(max_workers=max(1, min(len(files), spark.sparkContext.defaultParallelism))) as pool:
            meta["rows"] = sum(pool.map(one, files))
    return meta["rows"]


def write_text_files(spark: SparkSession, location: str, files: dict[str, str]) -> None:
    """Small text files (name → content) as the new version of `location`."""
    versioned.publish_files(hadoop_fs(spark), location, files)


def remove(spark: SparkSession, location: str) -> None:
    """Make `location` absent (its pointer first, then its versions)."""
    versioned.remove(hadoop_fs(spark), location)


# The driver's wall time per phase of this process (name → seconds), in order.
PHASE_SECONDS: dict[str, float] = {}


class phase:
    """Names the Spark jobs run inside it (their description in the UI and the event log):
    `with phase(spark, "build_features: write state"): ...`, and records the phase's wall time
    in PHASE_SECONDS. bench/spark_profile.py reads both."""

    def __init__(self, spark: SparkSession, name: str):
        self.spark, self.name = spark, name

    def __enter__(self):
        import time

        self.started = time.perf_counter()
        self.spark.sparkContext.setJobDescription(self.name)
        return self

    def __exit__(self, *exc) -> None:
        import time

        self.spark.sparkContext.setJobDescription(None)
        PHASE_SECONDS[self.name] = PHASE_SECONDS.get(self.name, 0.0) + time.perf_counter() - self.started


def session(conf: dict[str, str]) -> SparkSession:
    """The process's SparkSession with these properties (created once, then reused by the next
    job of the same process: one JVM start per Airflow task process, not one per job)."""
    builder = SparkSession.builder.appName("pool_classifier")
    for key, value in sorted(conf.items()):
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


class job_settings:
    """Runtime properties for one job, restored after it (the session outlives the job)."""

    def __init__(self, spark: SparkSession, settings: dict[str, str]):
        self.spark, self.settings, self.before = spark, settings, {}

    def __enter__(self):
        for key, value in self.settings.items():
            self.before[key] = self.spark.conf.get(key, None)
            self.spark.conf.set(key, value)
        return self

    def __exit__(self, *exc) -> None:
        for key, value in self.before.items():
            if value is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, value)
