#!/usr/bin/env bash
# Installs what `make run` / `make test` need, only what is missing: Java 17+, uv, the
# virtual environment .venv with the pinned requirements.txt. A second call takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

ensure_java() {
  local major
  major=$(java_major)
  if [ "${major:-0}" -ge 17 ]; then return; fi
  say "Java 17+ not found (found: ${major:-none}); installing OpenJDK 17 from the OS packages"
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "setup: Spark needs Java 17 or newer. Install it (e.g. 'apt-get install openjdk-17-jre-headless') and re-run." >&2
    exit 1
  fi
  local as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    echo "setup: no apt-get here: install Java 17+ with your OS package manager and re-run." >&2
    exit 1
  fi
  major=$(java_major)
  if [ "${major:-0}" -lt 17 ]; then
    echo "setup: Java install did not give Java 17+ (java -version says ${major}); install it by hand." >&2
    exit 1
  fi
}

find_uv() {
  for candidate in "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
}

ensure_uv() {
  UV=$(find_uv)
  if [ -z "$UV" ]; then
    say "installing uv (pip --user)"
    python3 -m pip install --user --quiet uv 2>/dev/null \
      || python3 -m pip install --user --quiet --break-system-packages uv
    UV=$(find_uv)
    if [ -z "$UV" ]; then
      UV="$(python3 -m site --user-base)/bin/uv"
    fi
  fi
}

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$UV" venv --quiet --python python3 .venv
  fi
  local want have=""
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  [ -f .venv/.requirements.sha256 ] && have=$(cat .venv/.requirements.sha256)
  if [ "$want" != "$have" ]; then
    say "installing requirements.txt into .venv (uv pip sync)"
    "$UV" pip sync --quiet --python .venv/bin/python requirements.txt
    echo "$want" > .venv/.requirements.sha256
  fi
}

ensure_java
ensure_uv
ensure_venv
