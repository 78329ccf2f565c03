"""
### pool_activity_hourly — who is mining right now: blocks per pool, every hour

**Runbook.** Each hourly run (its UTC hour: the last complete hour before its logical date — the
13:00 run's is 12:00–13:00 — or the form's `hour`) re-reads the blocks of its window — the run's
hour and the `window_hours` − 1 hours before it
(default 3) — attributes each block to its pool with the same code as the daily features
(`pool_classifier.attribution`: payout address, then coinbase tag, as mempool does), and replaces
each hour of the window in the table `pool_activity_hourly`
(`activity/pool_activity_hourly/hour=YYYY-MM-DDTHH/`, one version per write, the pointer written
last). Late blocks and short reorgs are absorbed: a block that reached the source late is counted
at the next run, a reorged block is replaced by its successor at the same height. Then the last
7 days are gathered for the API (`activity/recent/`: `/v1/pools/activity`, the `/live` page).

**Trigger form** (Params): `hour` (optional, `YYYY-MM-DDTHH`: rebuild the window ending there),
`window_hours` (2…48, default 3).

**Re-running / backfilling.** Clear a run to rebuild its window: each hour is replaced, never
appended, and hours run in any order (no hour depends on another). A range of hours:

    airflow backfill create --dag-id pool_activity_hourly \\
        --from-date 2024-03-01T00:00:00 --to-date 2024-03-01T23:00:00 --reprocess-behavior completed

(a window of 3 h per run: every hour is rebuilt three times; `--dag-run-conf '{"window_hours": 2}'`
halves that).

**Where it runs.** Local: the embedded warehouse, coinbase outputs included (payout-address
attribution and fees). gcp: one capped query of `crypto_bitcoin.blocks` per run (~10 MB billed):
coinbase tags only, fees NULL — reading the coinbase outputs would scan the month of
`transactions` every hour (docs/gcp.md, "The hourly DAG").

**Common failures** (data errors fail at once, without retries; the message says what to do)
- `window_hours=…`: the form's window is out of 2…48; `hour=…`: not an hour.
- `No local warehouse at …` (local): load the chain first (`make run`, or `python -m tools.live_chain`).
- `the dry run estimates … above the cap` (gcp): the query lost its partition filter; nothing was billed.
- An hour with no block is not a failure: it is written empty (`status: empty`) and the
  dashboard shows it so, with the age of the newest block.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag

from pool_classifier import steps
from pool_classifier.orchestration import hourly_tasks_for
from pool_classifier.orchestration.alerts import dag_default_args
from pool_classifier.targets import current_target

TARGET = current_target()
TASKS = hourly_tasks_for(TARGET)


@dag(
    dag_id="pool_activity_hourly",
    schedule="@hourly",
    start_date=pendulum.datetime(2009, 1, 3, tz="UTC"),
    # Each run rewrites its window from the source: nothing to catch up on but the hours
    # themselves, which a backfill rebuilds when asked.
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__ + "\n**The steps** (declared in `pool_classifier/steps/__init__.py`):\n\n"
    + steps.markdown_table(steps.HOURLY_STEPS),
    tags=["bitcoin", "mining-pools", "hourly", f"target:{TARGET.name}"],
    params={
        "hour": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}$",
                      description="rebuild the window ending at this UTC hour (YYYY-MM-DDTHH); empty: the run's hour"),
        "window_hours": Param(3, type="integer", minimum=2, maximum=48,
                              description="hours re-read by each run, its own included (≥ 2: late blocks, reorgs)"),
    },
    default_args=dag_default_args(retry_delay=timedelta(minutes=2)),
)
def pool_activity_hourly():
    chain(
        TASKS.merge_pool_activity(),
        TASKS.publish_pool_activity(),
    )


pool_activity_hourly()
