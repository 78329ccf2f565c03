"""The Google operators of the gcp target's tasks: a BigQuery job and a Dataproc Serverless
batch, both deferrable, both recording what they cost (`io/cost_records.py`), both seeing the
target's settings in their templates as `{{ gcp.<name> }}` (loaded when the task runs).
"""
from __future__ import annotations

import logging

from airflow.exceptions import AirflowFailException
from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator
from airflow.providers.google.cloud.operators.dataproc import DataprocCreateBatchOperator
from airflow.sdk import Variable

from pool_classifier.io import versioned
from pool_classifier.targets import Target, gcp, gcp_requests
from pool_classifier.targets.gcp import template

log = logging.getLogger(__name__)


def load_settings() -> gcp.GcpSettings:
    """The settings from the Airflow Variable (or AIRFLOW_VAR_POOL_CLASSIFIER_GCP). Run time only."""
    return gcp.settings_from_variable(Variable.get(gcp.SETTINGS_VARIABLE, default=None))


def _run_info(context, target: Target):
    from pool_classifier.io.cost_records import RunInfo

    return RunInfo.from_context(context, target)


def _save_cost_record(target: Target, record, gcp_conn_id: str = "google_cloud_default") -> None:
    """Log the record's line and write it beside the run's others. A failure to write is
    logged, never raised: the work it describes is done (or failed) already."""
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    from pool_classifier.io import cost_records

    log.info("cost: %s", cost_records.describe(record))
    run = cost_records.RunInfo(record.dag_id, record.run_id, record.logical_date, record.task_id,
                           record.try_number, record.target)
    uri = cost_records.record_path(target, run)
    try:
        bucket, name = gcp.split_gcs_uri(uri)
        GCSHook(gcp_conn_id=gcp_conn_id).upload(bucket, name, data=record.to_json() + "\n",
                                                mime_type="application/json")
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("cost record NOT written to %s; it was: %s", uri, record.to_json())


class _GcpSettingsInTemplates:
    """Loads the settings when the task runs and shows them to its templates as `gcp`."""

    gcp_settings: gcp.GcpSettings | None = None

    def render_template_fields(self, context, jinja_env=None) -> None:
        self.gcp_settings = load_settings()
        super().render_template_fields({**context, "gcp": self.gcp_settings.as_template_context()}, jinja_env)


class CostRecordingBigQueryJobOperator(_GcpSettingsInTemplates, BigQueryInsertJobOperator):
    """A deferrable BigQuery job whose bytes billed and cost are logged and recorded.

    With `estimate_sql` (a query job), first: the SQL's partition filters are checked and
    a dry run estimates its bytes; above the cap the task fails without retry, naming the
    estimate and the cap. With `publish_to` (an export), the job writes a new version folder
    of that day's location (`gcp_requests.VERSION_MARK` in its URI, filled in here) and, once it
    succeeded, the day's pointer switches to it: readers never see a half export. With
    `load_from`, the load's source URIs are the files in force of those locations, read when
    the task runs.
    """

    template_fields = (*BigQueryInsertJobOperator.template_fields, "estimate_sql", "publish_to", "load_from")
    template_fields_renderers = {**BigQueryInsertJobOperator.template_fields_renderers, "estimate_sql": "sql"}

    def __init__(self, *, target: Target, estimate_sql: str | None = None, publish_to: str | None = None,
                 load_from: list[str] | None = None, **kwargs) -> None:
        kwargs.setdefault("project_id", template("project"))
        super().__init__(location=gcp.BIGQUERY_LOCATION, deferrable=True, **kwargs)
        self.target = target
        self.estimate_sql = estimate_sql
        self.publish_to = publish_to
        self.load_from = load_from

    def execute(self, context):
        if self.estimate_sql:
            self._refuse_if_unpruned_or_over_cap()
        if self.publish_to:
            version = versioned.new_version_id()
            context["ti"].xcom_push(key="version", value=version)  # for the deferred completion
            self.configuration = gcp_requests.with_version(self.configuration, version)
        if self.load_from:
            sources = gcp_requests.load_sources(versioned.GcsFS(), list(self.load_from))
            self.configuration = {**self.configuration, "load": {**self.configuration["load"], "sourceUris": sources}}
        try:
            job_id = super().execute(context)  # defers (TaskDeferred) while the job runs
        except Exception:
            self._record_cost(context, self.job_id)
            raise
        self._record_cost(context, job_id)
        self._publish(context)
        return job_id

    def execute_complete(self, context, event):
        try:
            result = super().execute_complete(context, event)
        finally:
            self._record_cost(context, (event or {}).get("job_id"))
        self._publish(context)
        return result

    def _publish(self, context) -> None:
        """The export succeeded: the day's pointer names its version."""
        if not self.publish_to:
            return
        version = context["ti"].xcom_pull(task_ids=self.task_id, key="version")
        pointer = gcp_requests.publish_export(versioned.GcsFS(), self.publish_to, version)
        self.log.info("published %s: version %s, %d file(s)", self.publish_to, version, len(pointer["files"]))

    def _refuse_if_unpruned_or_over_cap(self) -> None:
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
        from google.cloud import bigquery

        from pool_classifier.io import sql_checks

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
                      estimate / gcp.GIB, f"{cap:,}")
        try:
            gcp_requests.check_bytes_cap(estimate, cap, self.task_id)
        except gcp_requests.BytesCapExceeded as exc:
            raise AirflowFailException(str(exc)) from exc

    def _record_cost(self, context, job_id: str | None) -> None:
        if not job_id:
            return
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        from pool_classifier.io import cost_records

        try:
            hook = BigQueryHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain,
                                use_legacy_sql=False)
            job = hook.get_job(job_id=job_id, project_id=self.project_id, location=self.location)
            record = cost_records.bigquery_job_record(job, _run_info(context, self.target), cost_records.Prices.load())
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

        from pool_classifier.io import cost_records

        try:
            for poll in range(self.USAGE_POLLS):
                batch = Batch.to_dict(self.hook.get_batch(batch_id=batch_id, region=self.region,
                                                          project_id=self.project_id))
                if (batch.get("runtime_info") or {}).get("approximate_usage"):
                    break
                if poll + 1 < self.USAGE_POLLS:
                    time.sleep(self.USAGE_POLL_SECONDS)
            record = cost_records.dataproc_batch_record(batch, _run_info(context, self.target), cost_records.Prices.load())
        except Exception:  # noqa: BLE001 - the batch's own outcome must not be masked
            self.log.exception("could not read the usage of batch %s: its cost is not recorded", batch_id)
            return
        if record.cost_usd is None:
            self.log.warning("Dataproc reported no usage for batch %s: its cost is unknown", batch_id)
        _save_cost_record(self.target, record, self.gcp_conn_id)


