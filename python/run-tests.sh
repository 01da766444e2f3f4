#!/usr/bin/env bash
# The Python package's tests (`make test-python`, part of `make test`). They test the
# wheel users get, installed the way users install it:
#   1. builds the wheel (`make wheel`: scripts/wheel.sh, cached in python/target);
#   2. installs it into a fresh virtualenv (target/py-test/venv) whose PATH has neither
#      cargo nor cmake, with pip install --no-index --only-binary :all:;
#   3. in that virtualenv: checks the stub _gopherdiscovery.pyi against the compiled
#      module (mypy.stubtest), type-checks the package and the examples (mypy --strict)
#      and runs pytest (warnings are errors, a timeout per test).
# Arguments go to pytest. Run from anywhere; expects .venv from scripts/venv.sh
# (created here if missing). The sdist is tested by tests/packaging/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[ -x .venv/bin/python ] || bash scripts/venv.sh
pip_q=(-q --disable-pip-version-check)

step() { printf '== python: %s\n' "$*"; }

step "building the wheel (make wheel)"
wheel=$root/$(bash scripts/wheel.sh)

# The mixed-language tests run members from the Rust CLI and C programs built
# against the static library (cargo is not on the tests' PATH).
step "building the Rust CLI and static library for the mixed-language tests"
cargo build --locked --quiet --bin gopherdiscovery --lib

step "a headless browser for the status-page test (scripts/chromium.sh)"
bash scripts/chromium.sh

work=$root/target/py-test
venv=$work/venv
step "a fresh virtualenv: the test tools, then the wheel (no index, binary only)"
rm -rf "$venv"
base_python=$("$root/.venv/bin/python" -c 'import sys; print(sys._base_executable)')
"$base_python" -m venv "$venv"
# The test tools: scripts/requirements-dev.txt without the build tools.
grep -vE '^(maturin|ziglang|auditwheel)([<>=!~ ]|$)' scripts/requirements-dev.txt > "$work/requirements-test.txt"
"$venv/bin/python" -m pip install "${pip_q[@]}" -r "$work/requirements-test.txt"

# PATH without a Rust toolchain or cmake: the wheel must not need either.
bash scripts/path-without.sh "$work/bin" 'cargo*' 'rust*' cmake ctest cpack zig maturin
export PATH="$venv/bin:$work/bin"
unset CARGO CMAKE RUSTC
if command -v cargo > /dev/null || command -v cmake > /dev/null; then
  echo "python/run-tests.sh: cargo or cmake is still on PATH" >&2
  exit 1
fi
py=$venv/bin/python
start=$EPOCHREALTIME
"$py" -m pip install "${pip_q[@]}" --no-index --only-binary :all: "$wheel"
awk -v s="$start" -v e="$EPOCHREALTIME" -v w="${wheel##*/}" 'BEGIN { printf "   installed %s in %.1f s\n", w, e - s }'
# The tests must import the installed package, not a source directory.
"$py" -c 'import gopherdiscovery, sys; f = gopherdiscovery._gopherdiscovery.__file__; assert f.startswith(sys.prefix), f'

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
