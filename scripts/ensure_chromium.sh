#!/usr/bin/env bash
# Installs Debian's headless-capable `chromium` when no Chromium is found (apt-get, through sudo
# when not root): the browser of `make e2e` (the Airflow grid) and of tests/api/test_pages.py.
# `--optional`: when it cannot be installed, say so and go on (those page tests then skip).
set -euo pipefail
optional=""
[ "${1:-}" = "--optional" ] && optional=1

fail() {
  echo "$1" >&2
  if [ -n "$optional" ]; then exit 0; fi
  exit 1
}

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
   || command -v google-chrome >/dev/null 2>&1; then
  exit 0
fi
as_root=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "chromium: Chromium is needed: install Debian's 'chromium' package (apt-get install chromium) and re-run."
  as_root="sudo"
fi
command -v apt-get >/dev/null 2>&1 || fail "chromium: no apt-get here: install Chromium with your OS package manager and re-run."
echo "chromium: installing Chromium (Debian package 'chromium')"
$as_root apt-get update -qq || fail "chromium: apt-get update failed"
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null \
  || fail "chromium: apt-get install chromium failed"
