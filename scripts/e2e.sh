#!/usr/bin/env bash
# `make e2e` (and CI): the DAG end to end through a real Airflow standalone, triggered through
# the REST API, then its grid page in headless Chromium, saved to docs/img/grid.png.
# Installs Debian's headless-capable `chromium` first when no Chromium is found (apt-get,
# through sudo when not root). Everything else is in scripts/e2e.py.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "e2e: Chromium is needed: install Debian's 'chromium' package (apt-get install chromium) and re-run." >&2
      exit 1
    }
    as_root="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || {
    echo "e2e: no apt-get here: install Chromium with your OS package manager and re-run." >&2
    exit 1
  }
  echo "e2e: installing Chromium (Debian package 'chromium')"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi

export PYTHONPATH="$PWD/plugins${PYTHONPATH:+:$PYTHONPATH}" TZ=UTC
exec .venv/bin/python scripts/e2e.py "$@"
