"""The one place that decides where the pipeline runs: `local` (default) or `gcp`.

A `Target` says where every dataset lives (a directory or a Cloud Storage bucket),
which warehouse the extract SQL reads, and how SQL and Spark jobs are run. DAG
files, SQL files and Spark jobs never branch on the target: they ask it.

Selected by the environment variable `POOL_CLASSIFIER_TARGET` (read at parse
time: an environment variable costs nothing, unlike an Airflow Variable).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Composer maps only the dags/, plugins/ and data/ folders of its bucket onto the Airflow
# machines, so the deploy puts include/ under plugins/ and names it with this variable.
INCLUDE_DIR_ENV = "POOL_CLASSIFIER_INCLUDE_DIR"
INCLUDE_DIR = Path(os.environ.get(INCLUDE_DIR_ENV) or PROJECT_ROOT / "include")
SQL_DIR = INCLUDE_DIR / "sql"
SCHEMA_DIR = INCLUDE_DIR / "schemas"
POOLS_FILE = INCLUDE_DIR / "pools" / "pools-v2.json"
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"

TARGET_ENV = "POOL_CLASSIFIER_TARGET"
DATA_DIR_ENV = "POOL_CLASSIFIER_DATA_DIR"


@dataclass(frozen=True)
class Target:
    """Everything that differs between running on one machine and on Google Cloud."""

    name: str
    # Root of the "bucket": every dataset path is built under it by `datasets.py`.
    bucket: str
    # Where `crypto_bitcoin.blocks` / `.transactions` are read from by the extract SQL.
    warehouse: str
    # "duckdb": sqlglot transpiles the BigQuery SQL and DuckDB runs it; "bigquery": as is.
    sql_engine: str
    # "local": spark-submit --master local[N]; "dataproc": Dataproc Serverless batches.
    spark_runner: str
    spark_master: str = "local[2]"
    spark_conf: dict = field(default_factory=dict)


def _local() -> Target:
    data_dir = Path(os.environ.get(DATA_DIR_ENV, PROJECT_ROOT / "data")).resolve()
    return Target(
        name="local",
        bucket=str(data_dir / "bucket"),
        warehouse=str(data_dir / "warehouse" / "bigquery-public-data.duckdb"),
        sql_engine="duckdb",
        spark_runner="local",
        spark_master="local[2]",
        spark_conf={
            # Small defaults: a day of features fits in a few hundred MB; the default
            # 200 shuffle partitions only add scheduling overhead on 2 cores.
            "spark.sql.shuffle.partitions": "8",
            "spark.driver.memory": "2g",
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
        },
    )


def _gcp() -> Target:
    from pool_classifier.targets.gcp import DATAPROC_SPARK_PROPERTIES

    bucket = os.environ.get("POOL_CLASSIFIER_BUCKET", "")
    if not bucket:
        raise RuntimeError(
            "POOL_CLASSIFIER_TARGET=gcp needs POOL_CLASSIFIER_BUCKET=gs://<bucket> "
            "(the bucket that holds extracts, features, models and predictions)."
        )
    return Target(
        name="gcp",
        bucket=bucket.rstrip("/"),
        warehouse="bigquery-public-data.crypto_bitcoin",
        sql_engine="bigquery",
        spark_runner="dataproc",
        # Dataproc Serverless sizing, with the reason for each value: gcp_config.py.
        spark_conf=dict(DATAPROC_SPARK_PROPERTIES),
    )


TARGETS = {"local": _local, "gcp": _gcp}


def current_target() -> Target:
    """The target named by POOL_CLASSIFIER_TARGET (default `local`)."""
    name = os.environ.get(TARGET_ENV, "local")
    if name not in TARGETS:
        raise ValueError(
            f"{TARGET_ENV}={name!r} is not a known target; use one of {sorted(TARGETS)}."
        )
    return TARGETS[name]()
