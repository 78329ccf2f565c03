#!/usr/bin/env bash
# `make serve`: the prediction API and its pages over the local bucket (data/bucket, or
# POOL_CLASSIFIER_DATA_DIR). Publishes the serving snapshot of any scored day that lacks one first
# (the DAG publishes each day's; each day is a new version, the API picks the newest), then runs uvicorn on
# 127.0.0.1:${PORT:-8000}, printing the pages' and the docs' URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/plugins:$PWD${PYTHONPATH:+:$PYTHONPATH}" TZ=UTC
data="${POOL_CLASSIFIER_DATA_DIR:-$PWD/data}"
last=$(ls -d "$data"/bucket/predictions/address_scores/dt=* 2>/dev/null | sed 's/.*dt=//' | sort | tail -1 || true)
if [ -z "$last" ]; then
  if [ -e "$data/bucket/activity/recent/_current.json" ]; then
    # The live demo alone (make live + the hourly DAG): /live answers; the daily pages say "not ready".
    echo "serve: no scored day under $data/bucket/predictions (run 'make run' for the daily pages); /live has the hourly activity." >&2
    exec .venv/bin/python -m api
  fi
  echo "serve: no scored day under $data/bucket/predictions: run 'make run' first (about 3 minutes)." >&2
  exit 1
fi
echo "serve: the serving snapshots up to $last (python -m pool_classifier.steps.publish_serving --ds $last --missing-only)"
.venv/bin/python -m pool_classifier.steps.publish_serving --ds "$last" --missing-only | sed 's/^/serve:   /'
exec .venv/bin/python -m api
