"""The one place that decides where the pipeline runs: `local` (default) or `gcp`.

A `Target` says where the data lives (a folder, or a Cloud Storage bucket), where
`crypto_bitcoin` is read from, how its Spark jobs are sized, and which module of
`pool_classifier.orchestration` builds its tasks. Everything else asks the target; nothing
branches on its name. The local target: `targets/local.py`; the gcp target and its
settings: `targets/gcp.py`.

Selected by the environment variable `POOL_CLASSIFIER_TARGET` (read at parse time: an
environment variable costs nothing, unlike an Airflow Variable).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

TARGET_ENV = "POOL_CLASSIFIER_TARGET"


@dataclass(frozen=True)
class Target:
    """Everything that differs between running on one machine and on Google Cloud."""

    name: str
    # Root of the "bucket": every dataset path is built under it by `datasets.py`.
    bucket: str
    # Where `crypto_bitcoin.blocks` / `.transactions` are read from by the extract SQL: a
    # DuckDB file standing in for `bigquery-public-data`, or the BigQuery dataset itself.
    warehouse: str
    # The module of pool_classifier.orchestration whose `Tasks` builds this target's tasks.
    tasks: str
    # Spark properties of every job (the local master, or the Dataproc Serverless sizing).
    spark_conf: dict = field(default_factory=dict)
    # How publish_serving writes the documents the API's lookups read: "mmap", a memory-mapped
    # file read on the same disk (io/doc_index.py), or "sharded", shards on the object store, one
    # ranged GET a lookup (io/sharded_index.py; docs/gcp.md, "Serving the API").
    serving_index: str = "mmap"


def current_target() -> Target:
    """The target named by POOL_CLASSIFIER_TARGET (default `local`)."""
    name = os.environ.get(TARGET_ENV, "local")
    targets = {"local": local.target, "gcp": gcp.target}
    if name not in targets:
        raise ValueError(
            f"{TARGET_ENV}={name!r} is not a known target; use one of {sorted(targets)}."
        )
    return targets[name]()


# The targets themselves (each module builds its Target; imported last: they use Target).
from pool_classifier.targets import gcp, local  # noqa: E402
