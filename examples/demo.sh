#!/usr/bin/env bash
# `make demo`: a server, three members and a watcher on loopback. Shows the joins,
# kills one member with SIGKILL, shows it leave (reason closed), then exits.
# Members come from every language that is built: the Rust CLI always, plus the C
# example (build/c/member, from `make test-c`) and the Python example (when the
# package is installed in .venv) when present.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/gopherdiscovery}
[ -x "$BIN" ] || cargo build --release --locked
work=$(mktemp -d)
pids=()
cleanup() {
  # SIGTERM: every gopherdiscovery command exits 0 on it.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
shown=0
# Prints the watcher's lines that were not shown yet.
show_watch() {
  local n
  n=$(wc -l <"$work/watch.out")
  if [ "$n" -gt "$shown" ]; then sed -n "$((shown + 1)),${n}p" "$work/watch.out" | sed 's/^/   watch: /'; fi
  shown=$n
}
trap cleanup EXIT INT TERM

# Wait (up to 20 s) until FILE contains PATTERN.
wait_for() {
  local file=$1 pattern=$2 end=$((SECONDS + 20))
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    if [ $SECONDS -ge $end ]; then echo "demo: timed out waiting for '$pattern' in $file" >&2; cat "$file" >&2; exit 1; fi
    sleep 0.05
  done
}

echo "== starting a server on loopback (ports chosen by the kernel)"
"$BIN" serve --survey tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 --snapshot tcp://127.0.0.1:0 \
  --interval 500 --deadline 250 >"$work/server.out" 2>"$work/server.err" &
pids+=($!)
wait_for "$work/server.out" "^serving"
line=$(head -n1 "$work/server.out")
echo "   $line"
survey=$(sed -E 's/.*survey=([^ ]+).*/\1/' <<<"$line")
publish=$(sed -E 's/.*publish=([^ ]+).*/\1/' <<<"$line")
snapshot=$(sed -E 's/.*snapshot=([^ ]+).*/\1/' <<<"$line")

echo "== starting a watcher (one line per change)"
"$BIN" watch --publish "$publish" --snapshot "$snapshot" >"$work/watch.out" 2>&1 &
pids+=($!)
wait_for "$work/watch.out" "(snapshot)"
show_watch

echo "== three members join"
"$BIN" join --name http://127.0.0.1:8001 --survey "$survey" --meta lang=rust >/dev/null &
pids+=($!)
names=(http://127.0.0.1:8001)
victim_name=http://127.0.0.1:8002
if [ -x build/c/member ]; then
  build/c/member http://127.0.0.1:8002 "$survey" "$publish" "$snapshot" lang=c >"$work/c.out" 2>&1 &
  victim=$!
  echo "   (member 2 is the C example)"
else
  "$BIN" join --name http://127.0.0.1:8002 --survey "$survey" --meta lang=rust >/dev/null &
  victim=$!
fi
pids+=($victim)
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import gopherdiscovery' 2>/dev/null; then
  .venv/bin/python examples/python/member.py --name http://127.0.0.1:8003 --survey "$survey" \
    --publish "$publish" --snapshot "$snapshot" >"$work/py.out" 2>&1 &
  echo "   (member 3 is the Python example)"
else
  "$BIN" join --name http://127.0.0.1:8003 --survey "$survey" --meta lang=rust >/dev/null &
fi
pids+=($!)
wait_for "$work/watch.out" "peers=http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003"
show_watch

echo "== kill -9 of the member $victim_name (pid $victim)"
{ kill -9 "$victim" && wait "$victim"; } 2>/dev/null || true
wait_for "$work/watch.out" "left $victim_name (closed)"
show_watch
echo "== members now:"
"$BIN" members --snapshot "$snapshot" | sed 's/^/   /'
echo "== done"
