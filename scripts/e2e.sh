#!/usr/bin/env bash
# `make e2e` (and CI): the DAG end to end through a real Airflow standalone, triggered through
# the REST API, then its grid page in headless Chromium, saved to docs/img/grid.png.
# Installs Debian's headless-capable `chromium` first when no Chromium is found
# (scripts/ensure_chromium.sh). Everything else is in scripts/e2e.py.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure_chromium.sh

export PYTHONPATH="$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}" TZ=UTC
exec .venv/bin/python scripts/e2e.py "$@"
