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

from pool_classifier.io import versioned


def file_system(spark: SparkSession, path: str):
    """(Hadoop Path, its FileSystem) for a path or URI."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


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


def write_parquet(spark: SparkSession, df: DataFrame, location: str, sort_by: list[str], parts: int,
                  meta: dict | None = None) -> None:
    """`df` as `parts` sorted Parquet files (rows hash-partitioned on the first sort column),
    published as the new version of `location`."""
    fs = hadoop_fs(spark)
    with versioned.publish(fs, location, meta) as folder:
        if parts <= 1:
            out = df.repartition(1).sortWithinPartitions(*sort_by)
        else:
            out = df.repartition(parts, sort_by[0]).sortWithinPartitions(*sort_by)
        out.write.mode("overwrite").parquet(folder)
        _rename_parts(spark, folder)


def write_text_files(spark: SparkSession, location: str, files: dict[str, str]) -> None:
    """Small text files (name → content) as the new version of `location`."""
    versioned.publish_files(hadoop_fs(spark), location, files)


def remove(spark: SparkSession, location: str) -> None:
    """Make `location` absent (its pointer first, then its versions)."""
    versioned.remove(hadoop_fs(spark), location)
