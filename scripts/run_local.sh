#!/usr/bin/env bash
# `make run`: the daily DAG, through Airflow itself, on the embedded default data.
#   1. generate the synthetic chain (seeded; skipped when already generated),
#   2. load it into the local warehouse (DuckDB standing in for BigQuery),
#   3. `airflow dags test mining_pool_classifier <day>` for each day, in order,
#      on a throw-away AIRFLOW_HOME,
#   4. print the summary of the last day, read back from the outputs.
# Settings (environment): DEMO_START, DEMO_DAYS, DEMO_TX_PER_DAY, DEMO_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/airflow_env.sh
# `airflow dags test` fails on a DAG with a deadline in Airflow 3.1.8 (alerts.DEADLINE_SWITCH).
export POOL_CLASSIFIER_DEADLINE_ALERT=off

source scripts/demo_chain.sh
PY=.venv/bin/python

t0=$(date +%s)
demo_chain run
rm -f "$DATA/warehouse/bigquery-public-data.duckdb"
$PY -m pool_classifier.io.warehouse load "$CHAIN"

echo "run: fresh Airflow metadata DB in $AIRFLOW_HOME"
rm -rf "$AIRFLOW_HOME"
mkdir -p "$AIRFLOW_HOME" "$DATA/logs"
.venv/bin/airflow db migrate > "$DATA/logs/airflow_db_migrate.log" 2>&1

last=""
for i in $(seq 0 $((DEMO_DAYS - 1))); do
  ds=$(date -u -d "$DEMO_START + $i day" +%F)
  log="$DATA/logs/dags_test_${ds}.log"
  echo "run: airflow dags test mining_pool_classifier $ds  (log: $log)"
  if ! .venv/bin/airflow dags test mining_pool_classifier "$ds" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "run: the DAG run for $ds failed; full log in $log" >&2
    exit 1
  fi
  if ! grep -q "state=success\|DagRunState.SUCCESS\|dag_run_state=success" "$log"; then
    tail -n 40 "$log" >&2
    echo "run: the DAG run for $ds did not end in success; full log in $log" >&2
    exit 1
  fi
  last=$ds
done

echo
$PY -m tools.run_summary --ds "$last"
echo "run: done in $(( $(date +%s) - t0 )) s"
echo "run: next, 'make serve' serves the prediction API and its pages over these outputs"
echo "run: (http://127.0.0.1:${PORT:-8000}/, the API's docs at /docs)"
