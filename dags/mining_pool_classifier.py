"""
### mining_pool_classifier — find Bitcoin mining-pool addresses, every day

**Runbook.** Each daily run (logical date `ds`, a UTC day) runs the steps of the table
below, in order; each task's own doc says what it reads and writes, how long it usually
takes, how to re-run it and its common failures.

Where the folders are depends on the target (`POOL_CLASSIFIER_TARGET`, default `local`:
`data/bucket/` in the project; `gcp`: the Cloud Storage bucket). The model report of a
training run: `models/<version>/report.html` (its path is in `train_model`'s log and XCom).

**Trigger form** (Params): `date_from`/`date_to` (optional guard of a backfill: the
logical date must lie inside), `target`, `retrain` (auto = the cadence, always, never),
`dry_run` (check and estimate, write nothing). A bad form is refused before any work,
naming the field.

**Re-running / backfilling.** Clear a run (or a task) to redo it: every output of the day
is replaced, never appended. Features merge the day into the state of the day before, so
days run in date order (one active run at a time). A range of days:

    airflow backfill create --dag-id mining_pool_classifier \\
        --from-date 2024-03-01 --to-date 2024-03-07 --max-active-runs 1 \\
        --reprocess-behavior completed \\
        --dag-run-conf '{"date_from": "2024-03-01", "date_to": "2024-03-07"}'

(or the UI's Trigger → Backfill form; `make e2e` runs this recipe). Add `"retrain": "never"`
to re-score with the champion in force, when the days already have one. Re-running an old
day removes the later states: backfill up to the latest day.

**Common failures** (data errors fail at once, without retries; the message says what to do)
- `check_request`: `<field>: …` — fix that field of the form and trigger again.
- `No blocks on <ds>`: the source has no data for the day; load it, or pick another date.
- `QualityGateError` in a `check_*` task: the check, the expected and the observed numbers.
- `no state for <day>`: a day in the history was never built; run the days named, in order.
- `TrainingDataError`: the day is too small to train; see `train_model`.
- `DriftError`: today's features are far from the champion's training data; see the drift report.
- `Spark job … failed`: the error holds the job's last lines.

Failures notify on-call (Slack or e-mail when configured, one log line always); a run
still going 4 h after its logical date raises a deadline alert.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag

from pool_classifier import steps
from pool_classifier.orchestration import tasks_for
from pool_classifier.orchestration.alerts import dag_deadline, dag_default_args
from pool_classifier.steps.check_request import param_schemas
from pool_classifier.targets import current_target

TARGET = current_target()
TASKS = tasks_for(TARGET)


@dag(
    dag_id="mining_pool_classifier",
    schedule="@daily",
    # Genesis day: any day of the chain can be backfilled; catchup=False keeps the
    # scheduler from doing it unasked.
    start_date=pendulum.datetime(2009, 1, 3, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__ + "\n**The steps** (declared in `pool_classifier/steps/__init__.py`):\n\n" + steps.markdown_table(),
    tags=["bitcoin", "mining-pools", "ml", f"target:{TARGET.name}"],
    params={name: Param(**schema) for name, schema in param_schemas(TARGET.name).items()},
    deadline=dag_deadline(),
    default_args=dag_default_args(retry_delay=timedelta(minutes=5)),
)
def mining_pool_classifier():
    chain(
        TASKS.check_request(),
        TASKS.extract_day(),
        TASKS.check_extract(),
        TASKS.build_features(),
        TASKS.check_features(),
        TASKS.should_train(),
        TASKS.train_model(),
        TASKS.score_addresses(),
        TASKS.check_scores(),
        TASKS.publish_predictions(),
        TASKS.record_run_cost(),  # a teardown: runs whatever failed
    )


mining_pool_classifier()
