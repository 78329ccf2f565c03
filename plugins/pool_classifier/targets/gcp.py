"""The `gcp` target: Cloud Storage for the data, BigQuery for crypto_bitcoin, Dataproc
Serverless for Spark; its settings (project, region, buckets, dataset, the bytes cap) and
the Dataproc runtime and sizing, with the reason for each value. Its tasks:
`orchestration/gcp.py`.

Fixed facts (where the data is, which runtime matches the pinned pyspark, the sizing) are
constants here. What differs per installation lives in one Airflow Variable,
`pool_classifier_gcp` (JSON), that `make deploy-composer` sets; the orchestration reads it
at run time only (`orchestration.gcp.load_settings`), never while the DAG is parsed. Tasks
see it in their templates as `{{ gcp.<name> }}`. The data bucket itself is
`POOL_CLASSIFIER_BUCKET`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from pool_classifier.targets import Target

BUCKET_ENV = "POOL_CLASSIFIER_BUCKET"

# The Airflow Variable that holds the settings below, as one JSON object.
SETTINGS_VARIABLE = "pool_classifier_gcp"

# `bigquery-public-data.crypto_bitcoin` is stored in the US multi-region; a query runs
# where its data is, and the output dataset is kept there too so loads need no copy.
BIGQUERY_LOCATION = "US"
SOURCE_DATASET = "bigquery-public-data.crypto_bitcoin"
SOURCE_TABLES = {
    "blocks": "bigquery-public-data.crypto_bitcoin.blocks",
    "transactions": "bigquery-public-data.crypto_bitcoin.transactions",
}

# Serverless for Apache Spark runtime 3.0 is Spark 4.0 on Python 3.12: the Spark of the
# pinned pyspark==4.0.2 (requirements.txt), so the jobs run there as they run locally.
DATAPROC_RUNTIME_VERSION = "3.0"
DATAPROC_RUNTIME_SPARK = {"3.0": "4.0"}

# Sizing of every Dataproc Serverless batch, in one place. A real day (~0.5 M
# transactions, ~3 M flows, a few hundred MB of Parquet) runs in about a minute on the
# 2 local cores with 2 GiB (bench/results.md), so the smallest shape the service allows
# is already generous. Price is per DCU-second: 0.6 DCU per vCPU + 0.1 DCU per GB of
# memory (below 8 GB per vCPU).
DATAPROC_SPARK_PROPERTIES = {
    # The smallest driver allowed (4, 8 or 16 cores). It only plans and counts: 4 GiB
    # (+10 % overhead) is the least memory allowed for 4 cores. ~2.8 DCU (default 4).
    "spark.driver.cores": "4",
    "spark.driver.memory": "4g",
    # The smallest executors allowed; 2 GiB per core, as the local run needs. ~3.3 DCU
    # each (default 4).
    "spark.executor.cores": "4",
    "spark.executor.memory": "8g",
    # Two executors is the minimum; dynamic allocation may add two more, never the
    # default 1,000: a bad day cannot scale the bill. Worst case ~16 DCU.
    "spark.executor.instances": "2",
    "spark.dynamicAllocation.maxExecutors": "4",
    # Shuffle storage is billed per GB-second of disk: the 250 GB minimum instead of the
    # default 100 GB per core (400 GB a machine).
    "spark.dataproc.driver.disk.size": "250g",
    "spark.dataproc.executor.disk.size": "250g",
    # Standard, not premium, compute: the price in include/config/prices.json.
    "spark.dataproc.driver.compute.tier": "standard",
    "spark.dataproc.executor.compute.tier": "standard",
    # 16 executor cores at most: a few tasks each, not 200 tiny ones.
    "spark.sql.shuffle.partitions": "32",
    "spark.sql.session.timeZone": "UTC",
    # block_pools is loaded into BigQuery: standard Parquet timestamps, not legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
# A batch still running after this is stopped by Dataproc: a day takes minutes, so a
# runaway batch bills at most 2 h × ~16 DCU ≈ $2 instead of running until cancelled.
DATAPROC_BATCH_TTL_SECONDS = 2 * 3600

# Where the deploy puts include/ on Composer (it maps only dags/, plugins/ and data/).
COMPOSER_INCLUDE_DIR = "/home/airflow/gcs/plugins/include"

# The output tables (dataset `settings.dataset`): each is loaded one day-partition at a
# time with WRITE_TRUNCATE, so a re-run replaces the day. Schemas: include/schemas/.
BIGQUERY_TABLES = {
    "address_scores": {"partition_field": "logical_date", "clustering": ["address"]},
    "block_pools": {"partition_field": "block_timestamp", "clustering": ["pool_name"]},
    "run_costs": {"partition_field": "logical_date", "clustering": ["task_id"]},
}

GIB = 2**30
_BUCKET = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.iam\.gserviceaccount\.com$")


class GcpSettingsError(ValueError):
    """The settings of the gcp target are missing or wrong; the message says which and how."""


@dataclass(frozen=True)
class GcpSettings:
    """What differs per installation (the Airflow Variable `pool_classifier_gcp`)."""

    # The project that runs (and pays for) the BigQuery jobs and Dataproc batches.
    project: str
    # The one service account of the pipeline: Composer runs as it, batches run as it.
    service_account: str
    # Where `make deploy-composer` puts spark_jobs/, the code zip and the pools list.
    jobs_bucket: str
    # Region of the Dataproc batches (and of the buckets and Composer, to avoid egress).
    region: str = "us-central1"
    # The region's subnetwork the batches run in (Private Google Access on).
    subnetwork: str = "default"
    # The BigQuery dataset (location US) of address_scores, block_pools and run_costs.
    dataset: str = "pool_classifier"
    # No query may bill more: the dry run must estimate less, and the job itself stops
    # there (maximumBytesBilled). The larger extract reads ~6.5 GB on a month's last day
    # (docs/gcp.md); 20 GiB leaves room for busier months and bills at most $0.12.
    max_bytes_billed: int = 20 * GIB

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], source: str = SETTINGS_VARIABLE,
        fix: str = "Set them with `make deploy-composer` (docs/gcp.md, 'Settings')",
    ) -> "GcpSettings":
        """Settings from a JSON object; every problem is named, with how to fix it."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [n for n in required if not values.get(n)]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)} (known: {', '.join(fields)})")
        if not problems:
            settings = cls(**{k: v for k, v in values.items() if k in fields})
            problems = settings.problems()
        if problems:
            raise GcpSettingsError(f"{source}: {'; '.join(problems)}. {fix}.")
        return settings

    def problems(self) -> list[str]:
        checks = [
            (_PROJECT.match(self.project), f"project={self.project!r} is not a project id"),
            (_EMAIL.match(self.service_account),
             f"service_account={self.service_account!r} is not a service account e-mail"),
            (_BUCKET.match(self.jobs_bucket), f"jobs_bucket={self.jobs_bucket!r} is not gs://<bucket>"),
            (re.match(r"^[a-z]+-[a-z]+\d$", self.region), f"region={self.region!r} is not a region"),
            (_DATASET.match(self.dataset), f"dataset={self.dataset!r} is not a dataset id"),
            (bool(self.subnetwork), "subnetwork is empty"),
            (isinstance(self.max_bytes_billed, int) and self.max_bytes_billed > 0,
             f"max_bytes_billed={self.max_bytes_billed!r} is not a positive number of bytes"),
        ]
        return [message for ok, message in checks if not ok]

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def as_template_context(self) -> dict:
        return dataclasses.asdict(self)


def template(name: str) -> str:
    """The Jinja reference to one setting, rendered at run time: `{{ gcp.<name> }}`."""
    if name not in {f.name for f in dataclasses.fields(GcpSettings)}:
        raise KeyError(f"no gcp setting {name!r}")
    return "{{ gcp.%s }}" % name


def settings_from_variable(raw) -> GcpSettings:
    """The settings from the Variable's value (JSON text or a mapping; None when unset)."""
    if raw is None:
        raise GcpSettingsError(
            f"the Airflow Variable {SETTINGS_VARIABLE!r} is not set: the gcp target needs its "
            "project, service account and jobs bucket. Run `make deploy-composer` (docs/gcp.md)."
        )
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise GcpSettingsError(f"{SETTINGS_VARIABLE} is not a JSON object: {exc}") from exc
    if not isinstance(values, dict):
        raise GcpSettingsError(f"{SETTINGS_VARIABLE} is not a JSON object but {type(values).__name__}")
    return GcpSettings.from_mapping(values)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/a/b → ("bucket", "a/b")."""
    if not uri.startswith("gs://"):
        raise ValueError(f"{uri!r} is not a gs:// URI")
    bucket, _, path = uri[len("gs://"):].partition("/")
    return bucket, path


def target_for_bucket(bucket: str) -> Target:
    """The gcp target over the data bucket `gs://…` (what a batch is given)."""
    return Target(
        name="gcp",
        bucket=bucket.rstrip("/"),
        warehouse=SOURCE_DATASET,
        tasks="gcp",
        # Dataproc Serverless sizing, with the reason for each value: above.
        spark_conf=dict(DATAPROC_SPARK_PROPERTIES),
        # The API on Cloud Run reads each lookup's document by one ranged GET of the bucket,
        # nothing copied first (docs/gcp.md, "Serving the API": the cheapest store that answers
        # in tens of milliseconds at 1 B addresses).
        serving_index="sharded",
    )


def target() -> Target:
    """The gcp target of this deployment (its data bucket from POOL_CLASSIFIER_BUCKET)."""
    bucket = os.environ.get(BUCKET_ENV, "")
    if not bucket:
        raise RuntimeError(
            f"POOL_CLASSIFIER_TARGET=gcp needs {BUCKET_ENV}=gs://<bucket> "
            "(the bucket that holds extracts, features, models and predictions)."
        )
    return target_for_bucket(bucket)

# The hourly DAG's query (include/sql/hourly_blocks.sql) reads the window's month of `blocks`:
# ~4,400 rows × ~300 B ≈ 1.3 MB, billed BigQuery's 10 MB minimum. The whole table (~0.9 M
# blocks) is ~0.27 GB: a cap of 100 MiB refuses a query that lost its partition filter.
HOURLY_MAX_BYTES_BILLED = 100 * 2**20
