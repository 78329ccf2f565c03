"""The tasks of the `gcp` target: Google provider operators (deferrable) and one Composer
worker task, one builder per kind of step, called by `dag_steps` for `target.name == "gcp"`.

    extract_day            3 BigQuery jobs: EXPORT DATA of include/sql/extract_*.sql to
                           extracts/<table>/dt=<ds>/ (dry run first, refused above the cap)
    build_features         Dataproc Serverless batch of spark_jobs/build_features.py
    train_model            Dataproc Serverless batch of spark_jobs/train_model.py: the local
                           training step on a copy, the registry written back to models/
    score_addresses        Dataproc Serverless batch of spark_jobs/score_addresses.py
    publish_predictions    2 BigQuery load jobs: address_scores and block_pools, one day
                           partition each, WRITE_TRUNCATE
    record_run_cost        teardown: the run's cost table, records.jsonl, BigQuery run_costs

Wiring, in this order: chain(extract_day, build_features, train_model, score_addresses,
publish_predictions, record_run_cost).

Request bodies come from `gcp_jobs` (pure); settings from `gcp_config` (the Airflow
Variable, read when a task runs: templates see it as `{{ gcp.<name> }}`). Nothing here
builds a Google client while the DAG is parsed. Every job and batch records its cost
(`run_cost`); `record_run_cost` adds them up.
"""
from __future__ import annotations

import logging

from airflow.exceptions import AirflowFailException
from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.operators.dataproc import DataprocCreateBatchOperator
from airflow.sdk import TaskGroup, get_current_context, task

from pool_classifier import datasets
from pool_classifier.targets import gcp as gcp_config
from pool_classifier.targets import gcp_requests as gcp_jobs
from pool_classifier.targets.gcp import template
from pool_classifier.orchestration.runbook import CLEAR_TO_RERUN, task_doc
from pool_classifier.targets import Target

log = logging.getLogger(__name__)

FEATURES_JOB_FILE = "build_features.py"
TRAIN_JOB_FILE = "train_model.py"
SCORE_JOB_FILE = "score_addresses.py"

# Each doc is a template: `{table}`, `{runtime}` and `{source}` are filled where the task is built.
EXTRACT_DOC = task_doc(
    "extract_day.export_{table}",
    """BigQuery job: `EXPORT DATA` of `include/sql/extract_{table}.sql` for `ds`, filtered on
    the partition column. A dry run comes first; the job itself also carries the cap
    (`maximumBytesBilled`). Its bytes billed and cost are logged and recorded.""",
    reads="`bigquery-public-data.crypto_bitcoin.{table}` (the blocks or the transactions) for `<ds>`.",
    writes="`extracts/{table}/dt=<ds>/*.parquet`, the day's old files removed first.",
    takes="10–60 s (one BigQuery job; docs/gcp.md: about 5.8 GB scanned on an average day).",
    rerun=CLEAR_TO_RERUN,
    failures="""`the dry run estimates … above the cap`: BigQuery's estimate is above
    `max_bytes_billed` (Variable `pool_classifier_gcp`); nothing was run or billed — check the
    SQL's partition filter before raising the cap. `not run, … partition filter`: the SQL lost
    its filter on the partition column (refused before any call to Google). A day with no
    blocks fails `check_extract` (`blocks_present`).""",
)

FEATURES_DOC = task_doc(
    "build_features",
    """Dataproc Serverless batch (runtime {runtime}) of `spark_jobs/build_features.py` for
    `ds`. A new batch id each try (`features-<ds>-<8 hex>`): a retry never re-attaches to a
    failed batch. The batch's DCU and shuffle usage and cost are recorded.""",
    reads="`extracts/*/dt=<ds>/`, `state/*/dt=<ds-1>/` and the pools list in the jobs bucket.",
    writes="`state/*/dt=<ds>/` and `features/*/dt=<ds>/`, each replacing the day.",
    takes="~3 min for a real day (about 1 min of it the batch's start).",
    rerun="""clear it; re-running an old day removes the states of later days: re-run those
    days after it, in date order.""",
    failures="""`no state for <day>` in the driver log: run the days it names first, in date
    order. Quota or permission errors: docs/gcp.md lists the roles of the service account.""",
)

TRAIN_DOC = task_doc(
    "train_model",
    """Dataproc Serverless batch of `spark_jobs/train_model.py` for `ds`: the local training
    step on the driver. It runs on the runtime that scores, because a model loads only under
    the library versions that pickled it.""",
    reads="a copy of `features/training_features/dt=<ds>/` and the registry's champion.",
    writes="the new version and its report under `models/`, and `models/champion.json` on a promotion.",
    takes="~3 min (about 1 min of it the batch's start).",
    rerun=CLEAR_TO_RERUN,
    failures="`TrainingDataError` in the driver log: too few labelled pool addresses that day.",
)

SCORE_DOC = task_doc(
    "score_addresses",
    """Dataproc Serverless batch of `spark_jobs/score_addresses.py` for `ds`: scores the
    active addresses with the champion in force. New batch id each try; usage and cost
    recorded.""",
    reads="`features/address_features/dt=<ds>/`, the day's labels and the champion in `models/`.",
    writes="`predictions/address_scores/dt=<ds>/`, the profiles beside it and the drift report.",
    takes="~3 min (about 1 min of it the batch's start).",
    rerun=CLEAR_TO_RERUN,
    failures="""`DriftError` or `ModelMismatchError` in the driver log: see the local task's
    doc (retrain with `retrain=always`, or deploy the champion's library versions).""",
)

PUBLISH_DOC = task_doc(
    "publish_predictions.load_{table}",
    "BigQuery load job into the table users query.",
    reads="`{source}/*.parquet`.",
    writes="`<dataset>.{table}$<YYYYMMDD of ds>` with WRITE_TRUNCATE: the day's partition is replaced.",
    takes="< 30 s.",
    rerun="clear it: a re-run changes nothing.",
    failures="`Not found: Table`: the table must exist — run `make deploy-composer`, which creates it.",
)

COST_DOC = task_doc(
    "record_run_cost",
    """Runs last, whatever failed (a teardown: it does not change the run's state). Adds up
    every cost record of the run and logs the cost table.""",
    reads="`run_costs/dt=<ds>/run=<run_id>/` (one record per BigQuery job and batch).",
    writes="""`summary.json` beside them, `run_costs/dt=<ds>/records.jsonl` (all runs of the
    day), loaded into the BigQuery table `run_costs` (day partition, WRITE_TRUNCATE).""",
    takes="< 30 s.",
    rerun="clear it; each run keeps its own records.",
    failures="`cost record without <fields>` names a malformed record.",
)


# ---------------------------------------------------------------- shared helpers


def _run_info(context, target: Target):
    from pool_classifier.io.cost_records import RunInfo

    return RunInfo.from_context(context, target)


def _save_cost_record(target: Target, record, gcp_conn_id: str = "google_cloud_default") -> None:
    """Log the record's line and write it beside the run's others. A failure to write is
    logged, never raised: the work it describes is done (or failed) already."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from pool_classifier.io import cost_records as run_cost

    log.info("cost: %s", run_cost.describe(record))
    run = run_cost.RunInfo(record.dag_id, record.run_id, record.logical_date, record.task_id,
                           record.try_number, record.target)
    uri = run_cost.record_path(target, run)
    try:
        bucket, name = gcp_config.split_gcs_uri(uri)
        GCSHook(gcp_conn_id=gcp_conn_id).upload(bucket, name, data=record.to_json() + "\n",
                                                mime_type="application/json")
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("cost record NOT written to %s; it was: %s", uri, record.to_json())


class _GcpSettingsInTemplates:
    """Loads the settings when the task runs and shows them to its templates as `gcp`."""

    gcp_settings: gcp_config.GcpSettings | None = None

    def render_template_fields(self, context, jinja_env=None) -> None:
        self.gcp_settings = gcp_config.load_settings()
        super().render_template_fields({**context, "gcp": self.gcp_settings.as_template_context()}, jinja_env)


class CostRecordingBigQueryJobOperator(_GcpSettingsInTemplates, BigQueryInsertJobOperator):
    """A deferrable BigQuery job whose bytes billed and cost are logged and recorded.

    With `estimate_sql` (a query job), first: the SQL's partition filters are checked and
    a dry run estimates its bytes; above the cap the task fails without retry, naming the
    estimate and the cap. With `replace_prefix`, the objects under that folder are removed
    before the job, so an export leaves no file of an earlier run.
    """

    template_fields = (*BigQueryInsertJobOperator.template_fields, "estimate_sql", "replace_prefix")
    template_fields_renderers = {**BigQueryInsertJobOperator.template_fields_renderers, "estimate_sql": "sql"}

    def __init__(self, *, target: Target, estimate_sql: str | None = None, replace_prefix: str | None = None,
                 **kwargs) -> None:
        kwargs.setdefault("project_id", template("project"))
        super().__init__(location=gcp_config.BIGQUERY_LOCATION, deferrable=True, **kwargs)
        self.target = target
        self.estimate_sql = estimate_sql
        self.replace_prefix = replace_prefix

    def execute(self, context):
        if self.estimate_sql:
            self._refuse_if_unpruned_or_over_cap()
        if self.replace_prefix:
            self._remove_objects_under(self.replace_prefix)
        try:
            job_id = super().execute(context)  # defers (TaskDeferred) while the job runs
        except Exception:
            self._record_cost(context, self.job_id)
            raise
        self._record_cost(context, job_id)
        return job_id

    def execute_complete(self, context, event):
        try:
            return super().execute_complete(context, event)
        finally:
            self._record_cost(context, (event or {}).get("job_id"))

    def _refuse_if_unpruned_or_over_cap(self) -> None:
        from google.cloud import bigquery

        from pool_classifier.io import sql_checks
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        problems = sql_checks.partition_filter_problems(self.estimate_sql)
        if problems:
            raise AirflowFailException(f"{self.task_id}: not run, " + " ".join(problems))
        client = BigQueryHook(
            gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain, use_legacy_sql=False,
        ).get_client(project_id=self.project_id, location=self.location)
        dry_run = client.query(
            self.estimate_sql,
            job_config=bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, use_legacy_sql=False),
            location=self.location,
        )
        estimate, cap = int(dry_run.total_bytes_processed or 0), int(self.gcp_settings.max_bytes_billed)
        self.log.info("dry run: %s bytes (%.3f GiB) estimated, cap %s bytes", f"{estimate:,}",
                      estimate / gcp_config.GIB, f"{cap:,}")
        try:
            gcp_jobs.check_bytes_cap(estimate, cap, self.task_id)
        except gcp_jobs.BytesCapExceeded as exc:
            raise AirflowFailException(str(exc)) from exc

    def _remove_objects_under(self, folder_uri: str) -> None:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        bucket, prefix = gcp_config.split_gcs_uri(folder_uri.rstrip("/") + "/")
        hook = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        names = hook.list(bucket, prefix=prefix)
        for name in names:
            hook.delete(bucket, name)
        if names:
            self.log.info("removed %d object(s) of an earlier run under %s", len(names), folder_uri)

    def _record_cost(self, context, job_id: str | None) -> None:
        if not job_id:
            return
        from pool_classifier.io import cost_records as run_cost
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        try:
            hook = BigQueryHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain,
                                use_legacy_sql=False)
            job = hook.get_job(job_id=job_id, project_id=self.project_id, location=self.location)
            record = run_cost.bigquery_job_record(job, _run_info(context, self.target), run_cost.Prices.load())
        except Exception:  # noqa: BLE001 - the job's own outcome must not be masked
            self.log.exception("could not read the usage of BigQuery job %s: its cost is not recorded", job_id)
            return
        _save_cost_record(self.target, record, self.gcp_conn_id)


class CostRecordingDataprocBatchOperator(_GcpSettingsInTemplates, DataprocCreateBatchOperator):
    """A deferrable Dataproc Serverless batch, a new id each try, whose usage and cost are recorded.

    `batch_id_prefix` (not `batch_id`): the provider appends 8 random hex characters per
    attempt, so a retry submits a new batch instead of re-attaching to the failed one.
    """

    # Dataproc fills approximate_usage when the batch ends; give it a moment if it lags.
    USAGE_POLLS, USAGE_POLL_SECONDS = 6, 10

    def __init__(self, *, target: Target, **kwargs) -> None:
        super().__init__(
            project_id=template("project"), region=template("region"), deferrable=True, **kwargs
        )
        self.target = target

    def execute(self, context):
        result = super().execute(context)  # defers while the batch runs
        if isinstance(result, dict) and result.get("name"):
            self._record_cost(context, result["name"].rsplit("/", 1)[-1])
        return result

    def execute_complete(self, context, event=None):
        try:
            return super().execute_complete(context, event)
        finally:
            if event and event.get("batch_id"):
                self._record_cost(context, event["batch_id"])

    def _record_cost(self, context, batch_id: str) -> None:
        import time

        from google.cloud.dataproc_v1 import Batch

        from pool_classifier.io import cost_records as run_cost

        try:
            for poll in range(self.USAGE_POLLS):
                batch = Batch.to_dict(self.hook.get_batch(batch_id=batch_id, region=self.region,
                                                          project_id=self.project_id))
                if (batch.get("runtime_info") or {}).get("approximate_usage"):
                    break
                if poll + 1 < self.USAGE_POLLS:
                    time.sleep(self.USAGE_POLL_SECONDS)
            record = run_cost.dataproc_batch_record(batch, _run_info(context, self.target), run_cost.Prices.load())
        except Exception:  # noqa: BLE001 - the batch's own outcome must not be masked
            self.log.exception("could not read the usage of batch %s: its cost is not recorded", batch_id)
            return
        if record.cost_usd is None:
            self.log.warning("Dataproc reported no usage for batch %s: its cost is unknown", batch_id)
        _save_cost_record(self.target, record, self.gcp_conn_id)


# ---------------------------------------------------------------- the builders


def extract_day_gcp(target: Target) -> TaskGroup:
    """`extract_day`: one capped EXPORT DATA job per extract table, in parallel."""
    with TaskGroup(group_id="extract_day", tooltip="BigQuery EXPORT DATA of one day") as group:
        for table in datasets.EXTRACT_TABLES:
            select = gcp_jobs.extract_select(table)
            export_dir = datasets.extract_dir(target, table, "{{ ds }}")
            CostRecordingBigQueryJobOperator(
                task_id=f"export_{table}",
                target=target,
                configuration=gcp_jobs.export_query_configuration(
                    gcp_jobs.export_statement(select, export_dir),
                    template("max_bytes_billed"),
                    gcp_jobs.labels(f"extract_{table}", "{{ ds }}"),
                ),
                estimate_sql=select,
                replace_prefix=export_dir,
                doc_md=EXTRACT_DOC.format(table=table),
            )
    return group


def estimate_extract_bytes(ds: str) -> str:
    """BigQuery's dry-run estimate of the day's three extract queries (nothing billed)."""
    from google.cloud import bigquery

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    from pool_classifier.steps.extract_day import render_sql

    settings = gcp_config.load_settings()
    client = BigQueryHook(use_legacy_sql=False).get_client(
        project_id=settings.project, location=gcp_config.BIGQUERY_LOCATION)
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, use_legacy_sql=False)
    total = sum(
        int(client.query(render_sql(table, ds), job_config=config).total_bytes_processed or 0)
        for table in datasets.EXTRACT_TABLES
    )
    return f"{total:,} bytes ({total / gcp_config.GIB:.2f} GiB) estimated by BigQuery's dry run"


def _batch(target: Target, task_id: str, step: str, job_file: str, args: list[str], doc: str):
    jobs_bucket = template("jobs_bucket")
    return CostRecordingDataprocBatchOperator(
        task_id=task_id,
        target=target,
        batch_id_prefix=f"{step}-{{{{ ds_nodash }}}}",
        batch=gcp_jobs.spark_batch(
            main_python_file_uri=gcp_config.spark_job_uri(jobs_bucket, job_file),
            args=args,
            code_zip_uri=gcp_config.code_zip_uri(jobs_bucket),
            properties=target.spark_conf,
            service_account=template("service_account"),
            subnetwork=template("subnetwork"),
            batch_labels=gcp_jobs.labels(task_id, "{{ ds }}"),
        ),
        doc_md=doc,
    )


def features_batch_args(target: Target, ds: str, jobs_bucket: str) -> list[str]:
    """build_features' arguments on gcp: the same as local, the pools list from the jobs bucket."""
    from pool_classifier.io import spark_runner as spark_submit
    from pool_classifier.steps.build_features import SETTINGS

    return spark_submit.features_job_args(target, ds, gcp_config.pools_uri(jobs_bucket), SETTINGS)


def score_batch_args(target: Target, ds: str) -> list[str]:
    """score_addresses' arguments: it writes <predictions>/address_scores/dt=<ds>/."""
    return [
        "--ds", ds,
        "--features", datasets.features_root(target),
        "--registry", datasets.models_root(target),
        "--predictions", datasets.predictions_root(target),
    ]


def build_features_gcp(target: Target):
    return _batch(
        target, "build_features", "features", FEATURES_JOB_FILE,
        features_batch_args(target, "{{ ds }}", template("jobs_bucket")),
        FEATURES_DOC.format(runtime=gcp_config.DATAPROC_RUNTIME_VERSION),
    )


def score_addresses_gcp(target: Target, model=None):
    """The scoring batch; `model` (the train task's output) only orders it after training."""
    batch = _batch(target, "score_addresses", "score", SCORE_JOB_FILE,
                   score_batch_args(target, "{{ ds }}"), SCORE_DOC)
    if model is not None:
        model >> batch
    return batch


def publish_predictions_gcp(target: Target) -> TaskGroup:
    """`publish_predictions`: the day's predictions and block pools, one partition each."""
    sources = {
        "address_scores": datasets.predictions_dir(target, "{{ ds }}"),
        "block_pools": datasets.features_dir(target, "block_pools", "{{ ds }}"),
    }
    with TaskGroup(group_id="publish_predictions", tooltip="BigQuery loads, one day partition") as group:
        for table, source in sources.items():
            CostRecordingBigQueryJobOperator(
                task_id=f"load_{table}",
                target=target,
                configuration=gcp_jobs.load_configuration(
                    template("project"), template("dataset"), table, "{{ ds_nodash }}",
                    [f"{source}/*.parquet"], "PARQUET", gcp_jobs.labels(f"load_{table}", "{{ ds }}"),
                ),
                doc_md=PUBLISH_DOC.format(table=table, source=source.replace("{{ ds }}", "<ds>")),
            )
    return group


def train_batch_args(target: Target, ds: str) -> list[str]:
    """train_model's arguments: the bucket whose features/ and models/ it reads and writes."""
    return ["--ds", ds, "--bucket", target.bucket]


def train_model_gcp(target: Target):
    """`train_model`: a batch on the runtime that scores (a model is loaded only under the
    library versions that pickled it)."""
    return _batch(target, "train_model", "train", TRAIN_JOB_FILE, train_batch_args(target, "{{ ds }}"), TRAIN_DOC)


def record_run_cost_gcp(target: Target):
    """`record_run_cost`, a teardown: after everything, whatever failed."""

    @task(task_id="record_run_cost", doc_md=COST_DOC)
    def record_run_cost_task() -> dict:
        import json

        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        from pool_classifier.io import cost_records as run_cost

        context = get_current_context()
        ds, run_id = context["ds"], context["run_id"]
        settings = gcp_config.load_settings()
        gcs = GCSHook()
        bucket, prefix = gcp_config.split_gcs_uri(run_cost.day_dir(target, ds) + "/")
        records = [
            run_cost.CostRecord.from_mapping(json.loads(gcs.download(bucket, name)))
            for name in sorted(gcs.list(bucket, prefix=prefix)) if run_cost.is_record_name(name)
        ]
        summary = run_cost.summarize(r for r in records if r.run_id == run_id)
        log.info("%s", run_cost.format_summary(summary, f"cost of {run_id} ({ds}, target gcp)"))
        _, summary_name = gcp_config.split_gcs_uri(run_cost.summary_path(target, ds, run_id))
        gcs.upload(bucket, summary_name, data=json.dumps(summary, indent=2, sort_keys=True) + "\n",
                   mime_type="application/json")
        day_uri = run_cost.day_records_path(target, ds)
        gcs.upload(bucket, gcp_config.split_gcs_uri(day_uri)[1], data=run_cost.to_jsonl(records),
                   mime_type="application/x-ndjson")
        configuration = gcp_jobs.load_configuration(
            settings.project, settings.dataset, "run_costs", ds.replace("-", ""), [day_uri],
            "NEWLINE_DELIMITED_JSON", gcp_jobs.labels("record_run_cost", ds),
        )
        BigQueryHook(location=gcp_config.BIGQUERY_LOCATION, use_legacy_sql=False).insert_job(
            configuration=configuration, project_id=settings.project, location=gcp_config.BIGQUERY_LOCATION,
        )
        return summary

    return record_run_cost_task().as_teardown()
