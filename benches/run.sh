#!/usr/bin/env bash
# Scenario benchmarks of gopherdiscovery (see docs/BENCHMARKS.md).
#
#   bash benches/run.sh quick [flags]   N <= 100, a few seconds: checks that the
#                                       benchmark runs (part of `make test`)
#   bash benches/run.sh full  [flags]   N = 10 .. 10,000 and the 10-minute soak
#                                       (`make bench`): writes docs/bench/ (JSON
#                                       results, raw samples, plot) and the tables
#                                       of docs/BENCHMARKS.md
#
# Flags go to the benchmark program, e.g. `--duration 30` (soak seconds),
# `--ns 10,100`, `--skip churn,soak`; `--help` lists them. Exits non-zero when
# the program fails.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-quick}
[ $# -gt 0 ] && shift
case "$mode" in
  quick | full) ;;
  *)
    echo "usage: bash benches/run.sh quick|full [flags]" >&2
    exit 2
    ;;
esac

# A cmake installed by scripts/venv.sh is found after any system one.
export PATH="$PATH:$PWD/.venv/bin"
exe=$(cargo build --release --locked --bench scenarios --message-format=json-render-diagnostics |
  grep -o '"executable":"[^"]*/deps/scenarios-[^"]*"' | tail -1 | cut -d'"' -f4)
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
  echo "benches/run.sh: the scenarios benchmark did not build" >&2
  exit 1
fi

if [ "$mode" = quick ]; then
  exec "$exe" quick "$@"
fi

out=docs/bench
mkdir -p "$out"
# A failed scenario still leaves its results: plot and tables first, exit code last.
rc=0
"$exe" full --out "$out" "$@" | tee "$out/output.txt" || rc=$?
[ -f "$out/raw.json" ] || exit "${rc/#0/1}"

# The plot (matplotlib goes into .venv, in full mode only).
py=.venv/bin/python
[ -x "$py" ] || bash scripts/venv.sh
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
  "$py" -m pip install -q --disable-pip-version-check matplotlib
fi
"$py" benches/plot.py "$out/raw.json" "$out/kill_latency.png"

# The generated tables replace the block between the markers in BENCHMARKS.md.
"$py" - "$out/tables.md" docs/BENCHMARKS.md <<'PY'
import sys, re
tables, doc = sys.argv[1], sys.argv[2]
new = open(tables, encoding="utf-8").read().strip()
text = open(doc, encoding="utf-8").read()
begin, end = "<!-- bench:tables:begin -->", "<!-- bench:tables:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc}: markers {begin} / {end} not found; tables left in {tables}")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w", encoding="utf-8").write(f"{head}{begin}\n{new}\n{end}{tail}")
print(f"updated the tables of {doc}", file=sys.stderr)
PY
exit "$rc"
