"""The hourly DAG's tasks (`pool_activity_hourly`), built like the daily ones: one method per step
of `steps.HOURLY_STEPS`, the same task ids on every target, each task's runbook doc from the
step's declaration.

What differs per target is only where the window's blocks come from (`window_source`): the local
warehouse (`orchestration/local.py`'s `HourlyTasks`) or a capped BigQuery query of `blocks`
(`orchestration/gcp.py`'s). The step code is imported inside the tasks: parsing imports neither
DuckDB nor pyarrow.
"""
from __future__ import annotations

import abc
import datetime as dt
import logging

from airflow.sdk import task

from pool_classifier import steps
from pool_classifier.orchestration.runbook import task_doc
from pool_classifier.orchestration.tasks import context, fail_without_retry_on_bad_data
from pool_classifier.targets import Target

log = logging.getLogger(__name__)

MERGE_SUMMARY = """Reads the blocks of the window (the run's UTC hour and the `window_hours` − 1
before it, `include/sql/hourly_blocks.sql`), attributes each to its pool with
`pool_classifier.attribution` (the daily features' code: payout address, then coinbase tag, as
mempool does), and replaces each hour of the window: a new version of
`activity/pool_activity_hourly/hour=<hour>/` (per pool: blocks, share, transactions, fees, counts
by tag/address/unknown, newest block; the pools list's sha256) and of
`activity/block_pools_hourly/hour=<hour>/`, each pointer written last. An hour with no block is
written empty (`status: empty` in its pointer), not failed."""
PUBLISH_SUMMARY = """Gathers the last 7 days of hours in force (ending at the newest hour written, so
re-running an old hour never moves it back) into one new version of `activity/recent/`: the rows
and each hour's block count. The API (`/v1/pools/activity`, `/live`) reads only that, one pointer
and two small files, and picks a new version up without a restart."""


def run_hour(ctx: dict) -> dt.datetime:
    """The run's hour: the form's `hour` when given, else the last complete hour before the run's
    logical date (a manual run without one: before it was triggered). Airflow 3's `@hourly` is a
    trigger timetable: the 13:00 run has logical date 13:00, when hour 12 has just ended, so the
    run rewrites hours 10–12 (window 3), never the hour that has only begun."""
    from pool_classifier.steps.merge_pool_activity import parse_hour

    asked = (ctx.get("params") or {}).get("hour")
    if asked:
        return parse_hour(str(asked))
    moment = ctx.get("logical_date") or ctx["dag_run"].run_after
    return parse_hour(moment.isoformat()) - dt.timedelta(hours=1)


class HourlyTasks(abc.ABC):
    """One builder per step of the `pool_activity_hourly` DAG, for one target."""

    def __init__(self, target: Target):
        self.target = target

    def doc(self, task_id: str, summary: str, *, takes: str, rerun: str, failures: str) -> str:
        return task_doc(task_id, summary, reads=steps.reads_doc(task_id), writes=steps.writes_doc(task_id),
                        takes=takes, rerun=rerun, failures=failures)

    @abc.abstractmethod
    def window_source(self):
        """Where the window's blocks come from (a `merge_pool_activity.WindowSource`); called when the task runs."""
        ...

    # ------------------------------------------------------------ the steps, in order

    def merge_pool_activity(self):
        builder = self

        @task(task_id="merge_pool_activity", doc_md=self.doc(
            "merge_pool_activity", MERGE_SUMMARY, takes=self.merge_takes,
            rerun="""clear it (or trigger with `hour`): every hour of its window is rebuilt from the
            source and replaced, never appended; hours run in any order.""",
            failures=self.merge_failures))
        def merge_task() -> dict:
            from pool_classifier.steps.merge_pool_activity import merge_pool_activity

            ctx = context()
            hour = run_hour(ctx)
            window_hours = int((ctx.get("params") or {}).get("window_hours") or 0) or None
            with fail_without_retry_on_bad_data():
                result = merge_pool_activity(builder.target, hour, **(
                    {"window_hours": window_hours} if window_hours else {}), source=builder.window_source())
            for h in result["hours"]:
                log.info("%s: %s blocks, %s pools (%s)", h["hour"], h["blocks"], h["pools"], h["status"])
            return result

        return merge_task()

    def publish_pool_activity(self):
        builder = self

        @task(task_id="publish_pool_activity", doc_md=self.doc(
            "publish_pool_activity", PUBLISH_SUMMARY, takes="< 5 s.",
            rerun="clear it: it depends only on the hours in force, a re-run writes the same rows.",
            failures="""`PointerError` names an hour whose pointer is not JSON: clear that hour's
            `merge_pool_activity` (its publish repairs the pointer), then this task."""))
        def publish_task() -> dict:
            from pool_classifier.steps.publish_pool_activity import publish_pool_activity

            with fail_without_retry_on_bad_data():
                return publish_pool_activity(builder.target)

        return publish_task()

    # ------------------------------------------------------------ per target (overridden)

    merge_takes = "< 5 s."
    merge_failures = "none expected."
