#!/usr/bin/env bash
# `make airflow`: Airflow standalone (scheduler, dag-processor, triggerer, api-server with the
# UI, LocalExecutor) with the project's config, on its own AIRFLOW_HOME (data/airflow_standalone,
# kept between runs: `make run` wipes data/airflow_home, not this one). The UI is on
# http://localhost:8080 (AIRFLOW_PORT to change it). Ctrl-C stops every component.
#
# When the local warehouse is empty, the demo chain of `make run` is generated and loaded
# first (same DEMO_* settings), so a run triggered from the UI has data to read.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${POOL_CLASSIFIER_DATA_DIR:-data}
export AIRFLOW_HOME=${AIRFLOW_HOME:-$(realpath -m "$DATA")/airflow_standalone}
source scripts/airflow_env.sh
PORT=${AIRFLOW_PORT:-8080}
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__BASE_URL=http://localhost:$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$PORT/execution/
# One user, `admin`; its password is generated into $AIRFLOW_HOME on the first start.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
# The LocalExecutor starts one worker per slot: 32 by default, 4 are plenty on a laptop.
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-4}
PY=.venv/bin/python
AIRFLOW=.venv/bin/airflow
# standalone starts its components as `airflow ...`: this venv's, first on the PATH.
export PATH="$PWD/.venv/bin:$PATH"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "airflow: port $PORT is already in use (another Airflow?). Stop it, or AIRFLOW_PORT=8081 make airflow" >&2
  exit 1
fi

source scripts/demo_chain.sh
WAREHOUSE="$DATA/warehouse/bigquery-public-data.duckdb"
if [ ! -f "$WAREHOUSE" ]; then
  echo "airflow: no local warehouse yet: loading the demo chain"
  demo_chain airflow
  $PY -m pool_classifier.io.warehouse load "$CHAIN"
fi

mkdir -p "$AIRFLOW_HOME" "$DATA/logs"
LOG="$DATA/logs/airflow_standalone.log"
echo "airflow: starting Airflow standalone (AIRFLOW_HOME=$AIRFLOW_HOME; output in $LOG)"
# Its own process group, so that one signal stops every component it starts.
setsid "$AIRFLOW" standalone > "$LOG" 2>&1 &
PID=$!
stop() {
  echo
  echo "airflow: stopping"
  # standalone stops its components on SIGINT; whatever is left of its group is killed.
  kill -INT "$PID" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 1
  done
  kill -KILL -- "-$PID" 2>/dev/null || true
  echo "airflow: stopped"
  exit 0
}
trap stop INT TERM

# Every component healthy: the metadata DB, scheduler, dag-processor and triggerer.
HEALTHY='import json, sys
h = json.load(sys.stdin)
sys.exit(0 if all(h.get(c, {}).get("status") == "healthy"
                  for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")) else 1)'
for _ in $(seq 1 180); do
  if ! kill -0 "$PID" 2>/dev/null; then
    tail -n 40 "$LOG" >&2
    echo "airflow: Airflow standalone exited during start-up; full output in $LOG" >&2
    exit 1
  fi
  if curl -fsS "http://localhost:$PORT/api/v2/monitor/health" 2>/dev/null | $PY -c "$HEALTHY" 2>/dev/null; then
    break
  fi
  sleep 1
done
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
PASSWORD=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$PASSWORDS" 2>/dev/null || echo "(see $PASSWORDS)")
cat <<EOF

  Airflow is up:  http://localhost:$PORT
  Log in as:      admin
  Password:       $PASSWORD     (generated once, kept in $PASSWORDS)

  The DAG mining_pool_classifier starts paused. Run a day of the demo chain with the
  "Trigger" button (logical date $DEMO_START) or, in another shell:
      source scripts/airflow_env.sh && AIRFLOW_HOME=$AIRFLOW_HOME .venv/bin/airflow dags trigger \\
          mining_pool_classifier --logical-date ${DEMO_START}T00:00:00+00:00
  and unpause it (toggle in the UI) so that the scheduler starts the run. (Unpausing also
  makes the scheduler start today's run, which fails with "No blocks on <today>" on the
  demo chain: the data ends on its last day.)
  The hourly DAG pool_activity_hourly starts paused too: with \`make live\` feeding the
  warehouse in another shell, unpause it and watch http://127.0.0.1:8000/live (\`make serve\`).
  Component output: $LOG.   Ctrl-C stops Airflow.

EOF
wait "$PID" || true
echo "airflow: Airflow standalone has exited; output in $LOG" >&2
exit 1
