#!/usr/bin/env bash
# `make demo`: two independent servers, three members answering both, and a watcher
# merging both. Shows the joins; kills one server with SIGKILL (the watcher's view
# does not move); kills one member with SIGKILL (it leaves once, reason closed);
# starts the dead server again on the same URLs (nothing moves); then exits.
# Members come from every language that is built: the Rust CLI always, plus the C
# example (build/c/member, from `make test-c`) and the Python example (when the
# package is installed in .venv) when present.
# The servers listen on ipc:// URLs in a temporary folder, so the restarted server
# takes the same URLs again (a tcp port freed by a dead process could be taken by
# another one in between).
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

# Wait (up to 20 s) until FILE contains PATTERN (an extended regular expression).
wait_for() {
  local file=$1 pattern=$2 end=$((SECONDS + 20))
  until grep -Eq -- "$pattern" "$file" 2>/dev/null; do
    if [ $SECONDS -ge $end ]; then echo "demo: timed out waiting for '$pattern' in $file" >&2; cat "$file" >&2; exit 1; fi
    sleep 0.05
  done
}

INTERVAL=300 # ms between surveys; a member answers within DEADLINE ms
DEADLINE=150
# Listens to the watcher for 5 intervals (a negative can only be a bounded listen)
# and fails if any line that arrived since line FROM carries an event (" | ").
quiet() {
  local from=$1 what=$2
  sleep "$(awk "BEGIN { print 5 * $INTERVAL / 1000 }")"
  show_watch
  if tail -n +"$((from + 1))" "$work/watch.out" | grep -q ' | '; then
    echo "demo: the watcher's view moved after $what" >&2
    exit 1
  fi
  echo "   no change for 5 intervals ($((5 * INTERVAL)) ms) after $what:" \
    "$(($(wc -l <"$work/watch.out") - from)) line(s) arrived, none with an event"
}

# serve_one N: server N on ipc:// URLs in the temporary folder; sets pid_N.
serve_one() {
  local n=$1
  "$BIN" serve --survey "ipc://$work/survey$n" --publish "ipc://$work/publish$n" \
    --snapshot "ipc://$work/snapshot$n" --interval $INTERVAL --deadline $DEADLINE \
    >"$work/server$n.out" 2>"$work/server$n.err" &
  pids+=($!)
  eval "pid_$n=$!"
  wait_for "$work/server$n.out" "^serving"
  echo "   server $n: $(head -n1 "$work/server$n.out")"
  : >"$work/server$n.out"
}

echo "== starting two independent servers"
serve_one 1
serve_one 2
s1=ipc://$work/survey1 s2=ipc://$work/survey2
server1=ipc://$work/publish1,ipc://$work/snapshot1
server2=ipc://$work/publish2,ipc://$work/snapshot2

echo "== starting a watcher merging both servers (one line per change)"
"$BIN" watch --server "$server1" --server "$server2" >"$work/watch.out" 2>"$work/watch.err" &
pids+=($!)
wait_for "$work/watch.out" "\(snapshot\)"
show_watch

echo "== three members join, each answering both servers"
"$BIN" join --name http://127.0.0.1:8001 --survey "$s1" --survey "$s2" --meta lang=rust >/dev/null &
pids+=($!)
victim_name=http://127.0.0.1:8002
if [ -x build/c/member ]; then
  # The C example's SURVEY_URL argument takes a comma-separated list.
  build/c/member http://127.0.0.1:8002 "$s1,$s2" "ipc://$work/publish1" "ipc://$work/snapshot1" lang=c \
    >"$work/c.out" 2>&1 &
  victim=$!
  echo "   (member 2 is the C example)"
else
  "$BIN" join --name http://127.0.0.1:8002 --survey "$s1" --survey "$s2" --meta lang=rust >/dev/null &
  victim=$!
fi
pids+=($victim)
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import gopherdiscovery' 2>/dev/null; then
  .venv/bin/python examples/python/member.py --name http://127.0.0.1:8003 --survey "$s1" --survey "$s2" \
    --publish "ipc://$work/publish1" --snapshot "ipc://$work/snapshot1" >"$work/py.out" 2>&1 &
  echo "   (member 3 is the Python example)"
else
  "$BIN" join --name http://127.0.0.1:8003 --survey "$s1" --survey "$s2" --meta lang=rust >/dev/null &
fi
pids+=($!)
wait_for "$work/watch.out" "peers=http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003"
echo "== waiting until both servers hold all three (members --server, both servers)"
end=$((SECONDS + 20))
until [ "$("$BIN" members --json --timeout 1000 --server "$server1" --server "$server2" |
  grep -o '"state":"live","warming":false' | wc -l)" -eq 2 ]; do
  if [ $SECONDS -ge $end ]; then echo "demo: the servers did not both turn live" >&2; exit 1; fi
  sleep 0.2
done
"$BIN" members --server "$server1" --server "$server2" | sed 's/^/   /'
show_watch

echo "== kill -9 of server 1 (pid $pid_1): the watcher still has server 2"
mark=$(wc -l <"$work/watch.out")
{ kill -9 "$pid_1" && wait "$pid_1"; } 2>/dev/null || true
wait_for "$work/watch.out" "servers=1/2"
quiet "$mark" "a server died"

echo "== kill -9 of the member $victim_name (pid $victim): it leaves once"
mark=$(wc -l <"$work/watch.out")
{ kill -9 "$victim" && wait "$victim"; } 2>/dev/null || true
wait_for "$work/watch.out" "left $victim_name \(closed\)"
quiet "$(grep -n ' | ' "$work/watch.out" | tail -n1 | cut -d: -f1)" "the member left"
if [ "$(tail -n +"$((mark + 1))" "$work/watch.out" | grep -c ' | ')" -ne 1 ]; then
  echo "demo: expected exactly one line with an event after the member was killed" >&2
  exit 1
fi

echo "== server 1 starts again on the same URLs"
mark=$(wc -l <"$work/watch.out")
serve_one 1
wait_for "$work/watch.out" "servers=2/2"
# Its warming (evict-after x interval + deadline) ends within these 5 intervals.
quiet "$mark" "the server came back"
echo "== members now (both servers):"
"$BIN" members --server "$server1" --server "$server2" | sed 's/^/   /'
echo "== done"
