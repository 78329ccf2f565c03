"""
### mining_pool_classifier — find Bitcoin mining-pool addresses, every day

Runbook. Each daily run (logical date `ds`, a UTC day) does, in order:

| task | reads | writes (replaced on a re-run) |
|---|---|---|
| `extract_day` | `crypto_bitcoin.blocks`, `.transactions` for `ds` | `extracts/{blocks,outputs,inputs}/dt=ds/` |
| `build_features` | `extracts/*/dt=ds`, `state/*/dt=ds-1` | `state/{address_state,coinbase_receipts}/dt=ds/`, `features/{address_features,block_pools,address_labels,training_features}/dt=ds/` |
| `train_model` | the day's training set | `models/rf-ds/` (model.joblib, metadata.json) |
| `score_addresses` | the day's features (active addresses), the model | `predictions/address_scores/dt=ds/` |

Where the folders are depends on the target (`POOL_CLASSIFIER_TARGET`, default `local`:
`data/bucket/` in the project; `gcp`: the Cloud Storage bucket).

**Re-running** a day (clear the run, or `airflow dags test mining_pool_classifier ds`)
replaces that day's outputs. Features merge the day into the state of the day before, so
days run in date order (one active run at a time); re-running an old day removes the
later states, and those days must then be re-run in order.

**Common failures**
- `No blocks on <ds>`: the source has no data for the day; load it, or pick another date.
- `only N labelled pool addresses`: the day is too small to train; see `train_model`.
- `no state for <day>`: a day in the history was never built; run the days named, in order.
- `Spark job build_features.py failed`: the error holds the job's last lines.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import chain, dag

from pool_classifier import dag_steps
from pool_classifier.targets import current_target

TARGET = current_target()


@dag(
    dag_id="mining_pool_classifier",
    schedule="@daily",
    # Genesis day: any day of the chain can be backfilled; catchup=False keeps the
    # scheduler from doing it unasked.
    start_date=pendulum.datetime(2009, 1, 3, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["bitcoin", "mining-pools", "ml", f"target:{TARGET.name}"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
    },
)
def mining_pool_classifier():
    extracted = dag_steps.extract_day(TARGET)
    featured = dag_steps.build_features(TARGET)
    model = dag_steps.train_model(TARGET)
    scored = dag_steps.score_addresses(TARGET, model)
    chain(extracted, featured, model, scored)


mining_pool_classifier()
