#!/usr/bin/env bash
# Creates .venv (Python tools for the tests) and makes sure cmake exists (the
# vendored NNG is built with it). Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/requirements-dev.txt
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    # Debian ships venv separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && python3 -m venv .venv
    else
      echo "venv.sh: python3 -m venv failed; install python3-venv" >&2
      exit 1
    fi
  fi
fi
need_cmake=0
command -v cmake >/dev/null || need_cmake=1
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || { [ $need_cmake = 1 ] && [ ! -x .venv/bin/cmake ]; }; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  if [ $need_cmake = 1 ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check cmake
  fi
  touch "$stamp"
fi
