"""The gcp target's tasks: Google provider operators (deferrable), and Python tasks on the
Composer worker that run a step on a copy of the Cloud Storage folders it reads.

    extract_day            3 BigQuery jobs: EXPORT DATA of include/sql/extract_*.sql to
                           extracts/<table>/dt=<ds>/ (dry run first, refused above the cap)
    check_*                the gate on a copy of the folders it reads (io/bucket_mirror.py)
    build_features         Dataproc Serverless batch of spark_jobs/build_features.py
    should_train           the cadence, from a copy of models/champion.json
    train_model            Dataproc Serverless batch of spark_jobs/train_model.py: the local
                           training step on a copy, the registry written back to models/
    score_addresses        Dataproc Serverless batch of spark_jobs/score_addresses.py
    publish_predictions    2 BigQuery load jobs: address_scores and block_pools, one day
                           partition each, WRITE_TRUNCATE
    record_run_cost        teardown: the run's cost table, records.jsonl, BigQuery run_costs

Request bodies come from `targets/gcp_requests.py` (pure); settings from the Airflow Variable
(`gcp_operators.load_settings`, read when a task runs: templates see it as `{{ gcp.<name> }}`).
Nothing here builds a Google client while the DAG is parsed. Every job and batch records its
cost; `record_run_cost` adds them up.
"""
from __future__ import annotations

import logging

from airflow.sdk import TaskGroup, get_current_context, task

from pool_classifier import datasets
from pool_classifier.orchestration.gcp_operators import (
    CostRecordingBigQueryJobOperator,
    CostRecordingDataprocBatchOperator,
    load_settings,
)
from pool_classifier.orchestration.runbook import CLEAR_TO_RERUN
from pool_classifier.orchestration.tasks import PipelineTasks
from pool_classifier.steps import build_features, score_addresses
from pool_classifier.targets import Target, gcp, gcp_requests
from pool_classifier.targets.gcp import template

log = logging.getLogger(__name__)

EXTRACT_SUMMARY = """BigQuery job: `EXPORT DATA` of `include/sql/extract_{table}.sql` for `ds`,
filtered on the partition column, into a new version folder of the day; once the job
succeeded the day's pointer switches to it (readers never see half an export). A dry run comes
first; the job itself also carries the cap (`maximumBytesBilled`). Its bytes billed and cost
are logged and recorded."""
EXTRACT_FAILURES = """`the dry run estimates … above the cap`: BigQuery's estimate is above
`max_bytes_billed` (Variable `pool_classifier_gcp`); nothing was run or billed — check the SQL's
partition filter before raising the cap. `not run, … partition filter`: the SQL lost its filter
on the partition column (refused before any call to Google). A day with no blocks fails
`check_extract` (`blocks_present`)."""
FEATURES_SUMMARY = """Dataproc Serverless batch (runtime {runtime}) of `spark_jobs/build_features.py`
for `ds`. A new batch id each try (`features-<ds>-<8 hex>`): a retry never re-attaches to a failed
batch. The batch's DCU and shuffle usage and cost are recorded."""
TRAIN_SUMMARY = """Dataproc Serverless batch of `spark_jobs/train_model.py` for `ds`: the local
training step on the driver, on a copy of what it reads. It runs on the runtime that scores,
because a model loads only under the library versions that pickled it."""
SCORE_SUMMARY = """Dataproc Serverless batch of `spark_jobs/score_addresses.py` for `ds`: scores the
active addresses with the champion in force, each with the top 5 feature contributions that
explain its score. New batch id each try; usage and cost recorded."""
PUBLISH_SUMMARY = """BigQuery load job of the files in force of `{source}` (its pointer, read when the task
runs) into `<dataset>.{table}$<YYYYMMDD of ds>` with WRITE_TRUNCATE: the day's partition is replaced.
Not yet on this target: the API's serving snapshot (`serving/`), which the local target publishes here;
on gcp it is written by `python -m pool_classifier.steps.publish_serving` for now (docs/gcp.md,
"Serving the API")."""
COST_SUMMARY = """Runs last, whatever failed (a teardown: it does not change the run's state). Adds up
every cost record of the run (one per BigQuery job and batch), logs the cost table, writes
`summary.json` beside them and `run_costs/dt=<ds>/records.jsonl` (all runs of the day), loaded
into the BigQuery table `run_costs` (day partition, WRITE_TRUNCATE)."""
BATCH_START = "(about 1 min of it the batch's start)"


class Tasks(PipelineTasks):
    """The gcp target's builders."""

    # ------------------------------------------------------------ what the base class asks

    def dry_run_estimate(self, day: str) -> str:
        """BigQuery's dry-run estimate of the day's three extract queries (nothing billed)."""
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
        from google.cloud import bigquery

        from pool_classifier.steps.extract_day import render_sql

        settings = load_settings()
        client = BigQueryHook(use_legacy_sql=False).get_client(
            project_id=settings.project, location=gcp.BIGQUERY_LOCATION)
        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, use_legacy_sql=False)
        total = sum(
            int(client.query(render_sql(table, day), job_config=config).total_bytes_processed or 0)
            for table in datasets.EXTRACT_TABLES
        )
        return f"{total:,} bytes ({total / gcp.GIB:.2f} GiB) estimated by BigQuery's dry run"

    def run_gate(self, gate: str, day: str) -> dict:
        from pool_classifier.io import bucket_mirror

        return bucket_mirror.gate_in_copy(bucket_mirror.for_target(self.target), self.target, gate, day)

    def needs_training(self, day: str) -> bool:
        from pool_classifier.io import bucket_mirror

        return bucket_mirror.needs_training_in_copy(bucket_mirror.for_target(self.target), self.target, day)

    # ------------------------------------------------------------ the steps

    def _extract_day(self) -> TaskGroup:
        """`extract_day`: one capped EXPORT DATA job per extract table, in parallel."""
        with TaskGroup(group_id="extract_day", tooltip="BigQuery EXPORT DATA of one day") as group:
            for table in datasets.EXTRACT_TABLES:
                select = gcp_requests.extract_select(table)
                export_dir = datasets.extract_dir(self.target, table, "{{ ds }}")
                CostRecordingBigQueryJobOperator(
                    task_id=f"export_{table}",
                    target=self.target,
                    configuration=gcp_requests.export_query_configuration(
                        gcp_requests.export_statement(select, export_dir),
                        template("max_bytes_billed"),
                        gcp_requests.labels(f"extract_{table}", "{{ ds }}"),
                    ),
                    estimate_sql=select,
                    publish_to=export_dir,
                    doc_md=self.doc("extract_day", EXTRACT_SUMMARY.format(table=table),
                                    title=f"extract_day.export_{table}", rerun=CLEAR_TO_RERUN,
                                    takes="10–60 s (one BigQuery job; docs/gcp.md: about 6.3 GB scanned on an average day).",
                                    failures=EXTRACT_FAILURES),
                )
        return group

    def _batch(self, task_id: str, prefix: str, args: list[str], doc: str):
        """A Dataproc Serverless batch of `spark_jobs/<task_id>.py` (a new id each try)."""
        jobs_bucket = template("jobs_bucket")
        return CostRecordingDataprocBatchOperator(
            task_id=task_id,
            target=self.target,
            batch_id_prefix=f"{prefix}-{{{{ ds_nodash }}}}",
            batch=gcp_requests.spark_batch(
                main_python_file_uri=datasets.spark_job_uri(jobs_bucket, f"{task_id}.py"),
                args=args,
                code_zip_uri=datasets.code_zip_uri(jobs_bucket),
                properties=self.target.spark_conf,
                service_account=template("service_account"),
                subnetwork=template("subnetwork"),
                batch_labels=gcp_requests.labels(task_id, "{{ ds }}"),
            ),
            doc_md=doc,
        )

    def _build_features(self):
        args = build_features.job_args(self.target, "{{ ds }}", datasets.pools_uri(template("jobs_bucket")))
        return self._batch("build_features", "features", args, self.doc(
            "build_features", FEATURES_SUMMARY.format(runtime=gcp.DATAPROC_RUNTIME_VERSION),
            takes=f"~3 min for a real day {BATCH_START}.",
            rerun="""clear it; re-running an old day removes the states of later days: re-run those
            days after it, in date order.""",
            failures="""`no state for <day>` in the driver log: run the days it names first, in date
            order. Quota or permission errors: docs/gcp.md lists the roles of the service account."""))

    def _train_model(self):
        return self._batch("train_model", "train", train_job_args(self.target, "{{ ds }}"), self.doc(
            "train_model", TRAIN_SUMMARY, takes=f"~3 min {BATCH_START}.", rerun=CLEAR_TO_RERUN,
            failures="`TrainingDataError` in the driver log: too few labelled pool addresses that day."))

    def _score_addresses(self):
        return self._batch("score_addresses", "score", score_addresses.job_args(self.target, "{{ ds }}"), self.doc(
            "score_addresses", SCORE_SUMMARY, takes=f"~3 min {BATCH_START}.", rerun=CLEAR_TO_RERUN,
            failures="""`DriftError` or `ModelMismatchError` in the driver log: see the local task's
            doc (retrain with `retrain=always`, or deploy the champion's library versions)."""))

    def _publish_predictions(self) -> TaskGroup:
        """`publish_predictions`: the day's predictions and block pools, one partition each."""
        sources = {
            "address_scores": datasets.predictions_dir(self.target, "{{ ds }}"),
            "block_pools": datasets.features_dir(self.target, "block_pools", "{{ ds }}"),
        }
        with TaskGroup(group_id="publish_predictions", tooltip="BigQuery loads, one day partition") as group:
            for table, source in sources.items():
                CostRecordingBigQueryJobOperator(
                    task_id=f"load_{table}",
                    target=self.target,
                    # The source URIs: the files in force of the day, read when the task runs.
                    configuration=gcp_requests.load_configuration(
                        template("project"), template("dataset"), table, "{{ ds_nodash }}",
                        [], "PARQUET", gcp_requests.labels(f"load_{table}", "{{ ds }}"),
                    ),
                    load_from=[source],
                    doc_md=self.doc(
                        "publish_predictions",
                        PUBLISH_SUMMARY.format(table=table, source=source.replace("{{ ds }}", "<ds>")),
                        title=f"publish_predictions.load_{table}", takes="< 30 s.",
                        rerun="clear it: a re-run changes nothing.",
                        failures="`Not found: Table`: the table must exist — run `make deploy-composer`, which creates it."),
                )
        return group

    def _record_run_cost(self):
        target = self.target

        @task(task_id="record_run_cost", doc_md=self.doc(
            "record_run_cost", COST_SUMMARY, takes="< 30 s.", rerun="clear it; each run keeps its own records.",
            failures="`cost record without <fields>` names a malformed record."))
        def record_run_cost_task() -> dict:
            context = get_current_context()
            return record_gcp_run_cost(target, context["ds"], context["run_id"])

        return record_run_cost_task()


def train_job_args(target: Target, ds: str) -> list[str]:
    """train_model's batch arguments: the bucket whose features/ and models/ it reads and writes."""
    return ["--ds", ds, "--bucket", target.bucket]


def record_gcp_run_cost(target: Target, ds: str, run_id: str) -> dict:
    """The run's records from Cloud Storage summed up; the day's records loaded into BigQuery."""
    import json

    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from pool_classifier.io import cost_records

    settings = load_settings()
    gcs = GCSHook()
    bucket, prefix = gcp.split_gcs_uri(cost_records.day_dir(target, ds) + "/")
    records = [
        cost_records.CostRecord.from_mapping(json.loads(gcs.download(bucket, name)))
        for name in sorted(gcs.list(bucket, prefix=prefix)) if cost_records.is_record_name(name)
    ]
    summary = cost_records.summarize(r for r in records if r.run_id == run_id)
    log.info("%s", cost_records.format_summary(summary, f"cost of {run_id} ({ds}, target gcp)"))
    _, summary_name = gcp.split_gcs_uri(cost_records.summary_path(target, ds, run_id))
    gcs.upload(bucket, summary_name, data=json.dumps(summary, indent=2, sort_keys=True) + "\n",
               mime_type="application/json")
    day_uri = cost_records.day_records_path(target, ds)
    gcs.upload(bucket, gcp.split_gcs_uri(day_uri)[1], data=cost_records.to_jsonl(records),
               mime_type="application/x-ndjson")
    configuration = gcp_requests.load_configuration(
        settings.project, settings.dataset, "run_costs", ds.replace("-", ""), [day_uri],
        "NEWLINE_DELIMITED_JSON", gcp_requests.labels("record_run_cost", ds),
    )
    BigQueryHook(location=gcp.BIGQUERY_LOCATION, use_legacy_sql=False).insert_job(
        configuration=configuration, project_id=settings.project, location=gcp.BIGQUERY_LOCATION,
    )
    return summary


# ---------------------------------------------------------------- the hourly DAG (pool_activity_hourly)

from pool_classifier.orchestration import hourly  # noqa: E402


class BigQueryWindowSource:
    """The window's blocks from `crypto_bitcoin.blocks` by one BigQuery query: refused before any
    call if it lost its partition filter, dry-run first, refused above
    `gcp.HOURLY_MAX_BYTES_BILLED`, and the job itself capped there. Coinbase outputs are not read
    (docs/gcp.md, "The hourly DAG": ~1.1 GB of `transactions` every hour for a few payout-address
    matches): tags attribute, fees stay NULL."""

    attribution_inputs = "tags"

    def __init__(self, client, run_label: str):
        self.client = client
        self.run_label = run_label

    def job_configs(self, start, end):
        """(the SELECT, its dry run's config, its job's config) for the window [start, end)."""
        from google.cloud import bigquery

        from pool_classifier.steps.merge_pool_activity import render_sql

        select = render_sql("hourly_blocks", start, end)
        configuration = hourly_query_configuration(select, self.run_label)
        dry = bigquery.QueryJobConfig.from_api_repr({**configuration, "dryRun": True})
        dry.use_query_cache = False
        return select, dry, bigquery.QueryJobConfig.from_api_repr(configuration)

    def blocks(self, start, end):
        select, dry, config = self.job_configs(start, end)
        estimate = int(self.client.query(select, job_config=dry).total_bytes_processed or 0)
        gcp_requests.check_bytes_cap(estimate, gcp.HOURLY_MAX_BYTES_BILLED, "merge_pool_activity.hourly_blocks")
        job = self.client.query(select, job_config=config)
        rows = [dict(row.items()) for row in job.result()]
        log.info("hourly_blocks: %d blocks, %s bytes billed (dry run %s)", len(rows), job.total_bytes_billed, estimate)
        return rows

    def coinbase_outputs(self, start, end):
        return None


def hourly_query_configuration(select: str, run_label: str) -> dict:
    """The hourly query job: the SELECT, capped at `gcp.HOURLY_MAX_BYTES_BILLED`, labelled; refused
    (before any call to Google) when it reads `blocks` without a filter on its partition column."""
    from pool_classifier.io.sql_checks import partition_filter_problems

    problems = partition_filter_problems(select)
    if problems:
        raise ValueError("not run: " + " ".join(problems))
    return gcp_requests.export_query_configuration(
        select, gcp.HOURLY_MAX_BYTES_BILLED, gcp_requests.labels("merge_pool_activity", run_label))


class HourlyTasks(hourly.HourlyTasks):
    """The gcp target's hourly builders: Python tasks on the Composer worker, the window from one
    capped BigQuery query of `blocks`, the hours written to the data bucket."""

    merge_takes = "10–30 s (one BigQuery query of ~10 MB billed, its dry run, a few dozen small objects)."
    merge_failures = """`the dry run estimates … above the cap`: the query would bill more than
    `HOURLY_MAX_BYTES_BILLED` (targets/gcp.py); nothing was run — check its partition filter. `not run,
    … partition filter`: the SQL lost it (refused before any call to Google). Permission errors:
    docs/gcp.md lists the roles of the service account."""

    def window_source(self):
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        settings = load_settings()
        client = BigQueryHook(use_legacy_sql=False).get_client(
            project_id=settings.project, location=gcp.BIGQUERY_LOCATION)
        # A label value is lower-case letters, digits, `-` and `_`: the run's hour as 2024-03-01t12.
        return BigQueryWindowSource(client, hourly.run_hour(get_current_context()).strftime("%Y-%m-%dt%H"))
