"""Atomic, deterministic outputs of the Spark jobs, through Hadoop's file system (a local
folder or `gs://` alike): written beside the final folder, then swapped into place, so a
reader sees the old day or the new one, never half of one; files named part-00000.parquet,
part-00001.parquet, … in partition order, so a re-run writes the same files.

Shared by `spark_jobs/build_features.py` and `spark_jobs/score_addresses.py` (on Dataproc
the package ships in the code zip).
"""
from __future__ import annotations

import uuid

from pyspark.sql import DataFrame, SparkSession


def file_system(spark: SparkSession, path: str):
    """(Hadoop Path, its FileSystem) for a path or URI."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _tmp_beside(spark: SparkSession, final: str):
    """A fresh hidden folder beside `final` (same file system: the swap is a rename)."""
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    final_path, fs = file_system(spark, final)
    fs.mkdirs(final_path.getParent())
    fs.setWriteChecksum(False)  # no .crc side files on a local disk (a no-op on GCS)
    return Path(final_path.getParent(), f".{final_path.getName()}.tmp-{uuid.uuid4().hex[:12]}"), fs


def _swap_into_place(spark: SparkSession, tmp, final: str) -> None:
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    final_path, fs = file_system(spark, final)
    old = None
    if fs.exists(final_path):
        old = Path(final_path.getParent(), f".{final_path.getName()}.old-{uuid.uuid4().hex[:12]}")
        fs.rename(final_path, old)
    fs.rename(tmp, final_path)
    if old is not None:
        fs.delete(old, True)


def write_parquet(spark: SparkSession, df: DataFrame, final: str, sort_by: list[str], parts: int) -> None:
    """`df` as `parts` sorted Parquet files (rows hash-partitioned on the first sort column)."""
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    tmp, fs = _tmp_beside(spark, final)
    if parts <= 1:
        df.repartition(1).sortWithinPartitions(*sort_by).write.parquet(tmp.toString())
    else:
        df.repartition(parts, sort_by[0]).sortWithinPartitions(*sort_by).write.parquet(tmp.toString())
    # Spark names its files part-<task partition>-<uuid>…: in partition order, renamed 0, 1, …
    written = sorted(
        (status.getPath() for status in fs.listStatus(tmp) if status.getPath().getName().startswith("part-")),
        key=lambda path: path.getName(),
    )
    kept = set()
    for i, path in enumerate(written):
        name = f"part-{i:05d}.parquet"
        fs.rename(path, Path(tmp, name))
        kept.add(name)
    for status in fs.listStatus(tmp):  # _SUCCESS and checksum files are not data
        if status.getPath().getName() not in kept:
            fs.delete(status.getPath(), False)
    _swap_into_place(spark, tmp, final)


def write_text_files(spark: SparkSession, final: str, files: dict[str, str]) -> None:
    """Small text files (name → content) as the folder `final`."""
    Path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    tmp, fs = _tmp_beside(spark, final)
    fs.mkdirs(tmp)
    for name, text in sorted(files.items()):
        out = fs.create(Path(tmp, name), True)
        out.write(bytearray(text.encode("utf-8")))
        out.close()
    _swap_into_place(spark, tmp, final)
