"""The request bodies the gcp target sends: BigQuery job configurations and Dataproc
Serverless batches, built by pure functions (no Airflow, no Google client).

Every argument may be a value or a Jinja template that Airflow renders at run time
(`{{ ds }}`, `{{ gcp.project }}`…): `orchestration/gcp.py` passes templates, the tests pass both.
The bodies use the API's own field names: BigQuery's REST `JobConfiguration` (camelCase,
parsed by `google.cloud.bigquery.*JobConfig.from_api_repr`) and Dataproc's `Batch`
(snake_case, parsed by `google.cloud.dataproc_v1.Batch`).
"""
from __future__ import annotations

from pool_classifier.datasets import sql_file
from pool_classifier.targets import gcp

PIPELINE_LABEL = "mining-pool-classifier"


class BytesCapExceeded(RuntimeError):
    """A query's dry-run estimate is above the configured cap: it is not run."""


def extract_select(table: str) -> str:
    """The extract SQL file of `table` as written (Jinja `{{ ds }}` left for Airflow)."""
    return sql_file(f"extract_{table}").read_text()


# Where an export writes: a new version folder of the day (`v=<id>`), the id filled in when
# the job is submitted (orchestration/gcp_operators.py); the pointer is written after the job.
VERSION_MARK = "__version__"


def export_uri(location: str, version: str = VERSION_MARK) -> str:
    """The `EXPORT DATA` destination of one version of a day's dataset."""
    return f"{location}/v={version}/*.parquet"


def export_statement(select_sql: str, location: str) -> str:
    """`EXPORT DATA` of the SELECT into a new version folder of `location` (see VERSION_MARK).

    Nothing of the day in force is touched: the version is switched to only once the job has
    succeeded, by writing the day's pointer (io/versioned.py); readers never see a half export.
    """
    return (
        f"EXPORT DATA OPTIONS (uri = '{export_uri(location)}', format = 'PARQUET', overwrite = true) AS\n"
        f"{select_sql.strip()}\n"
    )


def with_version(configuration: dict, version: str) -> dict:
    """The export job's configuration with its version folder's id filled in."""
    query = dict(configuration["query"], query=configuration["query"]["query"].replace(VERSION_MARK, version))
    return {**configuration, "query": query}


def publish_export(fs, location: str, version: str, meta: dict | None = None) -> dict:
    """After a successful export into `v=<version>`: the day's pointer names it (the switch),
    older versions are removed. Returns the pointer."""
    from pool_classifier.io import versioned

    return versioned.switch(fs, location, [f"{versioned.VERSION_PREFIX}{version}"], meta)


def load_sources(fs, locations: list[str]) -> list[str]:
    """The files in force of the days a load job reads (its sourceUris); a day with none is an error."""
    from pool_classifier.io import versioned

    uris = []
    for location in locations:
        files = versioned.data_files(fs, location)
        if not files:
            raise FileNotFoundError(f"nothing in force at {location}: the step that writes it has not run for the day")
        uris += files
    return uris


def labels(step: str, ds: str) -> dict[str, str]:
    """Labels on every job and batch: billing reports can then group cost by step and day."""
    return {"pipeline": PIPELINE_LABEL, "step": step.replace("_", "-"), "logical-date": ds}


def export_query_configuration(statement: str, max_bytes_billed, job_labels: dict) -> dict:
    """A query job running `statement`, never billing more than `max_bytes_billed`."""
    return {
        "query": {
            "query": statement,
            "useLegacySql": False,
            "maximumBytesBilled": str(max_bytes_billed),
        },
        "labels": dict(job_labels),
    }


def check_bytes_cap(estimate: int, cap: int, what: str) -> None:
    """Refuse a query whose dry run estimates more bytes than the cap, saying both."""
    if estimate > cap:
        raise BytesCapExceeded(
            f"{what}: the dry run estimates {estimate:,} bytes ({estimate / gcp.GIB:.2f} GiB), "
            f"above the cap of {cap:,} bytes ({cap / gcp.GIB:.2f} GiB, setting max_bytes_billed "
            f"of the Variable {gcp.SETTINGS_VARIABLE}). Nothing was run or billed. Check the "
            "query's partition filter; raise the cap only if the data really grew."
        )


def load_configuration(
    project: str, dataset: str, table: str, ds_nodash: str, source_uris: list[str], source_format: str,
    job_labels: dict,
) -> dict:
    """Load one day into its partition (`table$YYYYMMDD`), replacing it: a re-run is a no-op.

    The table must exist (`make deploy-composer` creates it from include/schemas/): a load
    never creates a table with a guessed schema.
    """
    spec = gcp.BIGQUERY_TABLES[table]
    # Parquet lists (Spark writes a list as list → element) load as REPEATED fields, as the
    # table's schema declares them (address_scores.top_contributions: REPEATED RECORD), not as a
    # record of a repeated `list` of `element` records.
    formats = {"PARQUET": {"parquetOptions": {"enableListInference": True}}}
    return {
        "load": {
            "sourceUris": list(source_uris),
            "sourceFormat": source_format,
            **formats.get(source_format, {}),
            "destinationTable": {"projectId": project, "datasetId": dataset, "tableId": f"{table}${ds_nodash}"},
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_NEVER",
            "timePartitioning": {"type": "DAY", "field": spec["partition_field"]},
            "clustering": {"fields": list(spec["clustering"])},
        },
        "labels": dict(job_labels),
    }


def spark_batch(
    *, main_python_file_uri: str, args: list[str], code_zip_uri: str, properties: dict,
    service_account: str, subnetwork: str, batch_labels: dict,
) -> dict:
    """A Dataproc Serverless PySpark batch on the pinned runtime, running as the pipeline's account."""
    return {
        "pyspark_batch": {
            "main_python_file_uri": main_python_file_uri,
            "args": list(args),
            # The pool_classifier package (feature_spec…), importable by the job.
            "python_file_uris": [code_zip_uri],
        },
        "runtime_config": {
            "version": gcp.DATAPROC_RUNTIME_VERSION,
            "properties": dict(properties),
        },
        "environment_config": {
            "execution_config": {
                "service_account": service_account,
                "subnetwork_uri": subnetwork,
                # Runtime 3.0 runs as the submitter by default: run as the pipeline's
                # account, whose roles are the ones docs/gcp.md lists.
                "authentication_config": {"user_workload_authentication_type": "SERVICE_ACCOUNT"},
                "ttl": {"seconds": gcp.DATAPROC_BATCH_TTL_SECONDS},
            },
        },
        "labels": dict(batch_labels),
    }
