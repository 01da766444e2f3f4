#!/usr/bin/env bash
# The Python package's tests (`make test-python`, part of `make test`):
#   1. builds the package and installs it into .venv, the way users do (pip install ./python);
#   2. checks the stub _gopherdiscovery.pyi against the compiled module (mypy.stubtest)
#      and type-checks the package and the examples (mypy --strict);
#   3. runs pytest (warnings are errors, a timeout per test).
# Run from anywhere; expects .venv from scripts/venv.sh (created here if missing).
# The Rust build is cached in python/target, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=$root/.venv/bin/python
[ -x "$py" ] || bash scripts/venv.sh
# maturin's build backend is found on PATH.
export PATH="$root/.venv/bin:$PATH"
pip_q=(-q --disable-pip-version-check)

step() { printf '== python: %s\n' "$*"; }

step "building and installing the package (pip install ./python)"
"$py" -m pip install "${pip_q[@]}" --no-build-isolation --force-reinstall --no-deps ./python

# The mixed-language test runs members from the Rust CLI.
step "building the Rust CLI for the mixed-language test"
cargo build --locked --quiet --bin gopherdiscovery

step "a headless browser for the status-page test (scripts/chromium.sh)"
bash scripts/chromium.sh

step "checking the stub against the compiled module (mypy.stubtest)"
"$py" -m mypy.stubtest gopherdiscovery._gopherdiscovery --mypy-config-file python/pyproject.toml
step "type-checking the package and the examples (mypy --strict)"
"$py" -m mypy --config-file python/pyproject.toml --cache-dir python/target/mypy-cache \
  python/python/gopherdiscovery examples/python

step "pytest"
cd python
set +e
"$py" -m pytest -W error -p no:cacheprovider -rs tests "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "python/run-tests.sh: pytest collected no tests" >&2
  exit 1
fi
exit $rc
