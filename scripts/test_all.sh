#!/usr/bin/env bash
# `make test` (so CI): pytest and the end-to-end check side by side. Both mostly wait (Airflow's
# scheduler, spark start-ups): measured serially the 2 cores were busy 42 % of CI's time. The
# end-to-end check's output goes to a log, printed when it ends; either failing fails the whole.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/ensure_chromium.sh --optional   # once, before both use it
log="$(mktemp -t e2e.XXXXXX.log)"
scripts/e2e.sh >"$log" 2>&1 &
e2e_pid=$!
.venv/bin/python -m pytest
unit_rc=$?
wait "$e2e_pid"
e2e_rc=$?
echo "---- make e2e (in parallel with pytest; its log: $log) ----"
cat "$log"
echo "pytest: exit $unit_rc; e2e: exit $e2e_rc"
[ "$unit_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
