#!/usr/bin/env bash
# Runs linkflow's worker-only benchmark and the Asynq peer (a Go + Redis task
# queue draining tasks that do a link's Redis work) alternately (ABBA: the
# side that goes first alternates), each against
# a redis-server of its own started here the same way (append-only file,
# fsync every second, no snapshots), and prints every run, the bytes each
# side appended to its AOF per link or task, and the medians' ratio.
#
#   scripts/bench-peer.sh [runs] [links]      (default 3 runs of 20000)
#
# REDIS_ARGS adds settings to both servers, e.g.
# REDIS_ARGS="--auto-aof-rewrite-percentage 0" to see what AOF rewrites cost.
# The peer's source is in ../shared/peers/asynq-drain (PEER_DIR to change it).
#
# PEER_RESULT=FILE adds a third side: the same peer built from a copy whose
# handler stores FILE's bytes as the link's result instead of its own
# 230-byte one. scripts/testdata/sandbox-result.json is a result linkflow's
# sandbox returns for the benchmark's two reads (2,052 bytes), so
#   PEER_RESULT=scripts/testdata/sandbox-result.json scripts/bench-peer.sh 5
# compares the two sides storing results of the same size. The three sides
# then run in an order rotated each round.
set -euo pipefail
peer_result=${PEER_RESULT:+$(realpath "$PEER_RESULT")}
if [ -n "$peer_result" ] && [ ! -f "$peer_result" ]; then echo "PEER_RESULT: no file $PEER_RESULT" >&2; exit 1; fi
cd "$(dirname "$0")/.."
runs=${1:-3}
links=${2:-20000}
peer_dir=${PEER_DIR:-../shared/peers/asynq-drain}
read -r -a redis_args <<<"${REDIS_ARGS:-}"
work=$(mktemp -d)
port=""
trap 'if [ -n "$port" ]; then redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; fi; rm -rf "$work"' EXIT
echo "building linkflow and the peer ($peer_dir)" >&2
go build -o "$work/linkflow" ./cmd/linkflow
(cd "$peer_dir" && go build -o "$work/asynq-drain" .)
if [ -n "$peer_result" ]; then
  # The copy keeps the handler's own json.Marshal (its CPU), and stores the
  # file's bytes in its place.
  cp -r "$peer_dir" "$work/peer-src"
  cp "$peer_result" "$work/peer-src/result.json"
  printf 'package main\n\nimport _ "embed"\n\n//go:embed result.json\nvar peerResult []byte\n' >"$work/peer-src/result.go"
  sed -i 's/"result", res)/"result", append(res[:0:0], peerResult...))/' "$work/peer-src/main.go"
  grep -q 'peerResult\.\.\.' "$work/peer-src/main.go" || { echo "the peer's handler changed: cannot set its result" >&2; exit 1; }
  (cd "$work/peer-src" && go build -o "$work/asynq-drain-result" .)
fi

# redis_start starts a fresh server in its own directory; sets port and dir.
redis_start() {
  dir=$(mktemp -d -p "$work")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --dir "$dir" --appendonly yes --appendfsync everysec --save '' --daemonize yes \
    --logfile "$dir/log" "${redis_args[@]}" >/dev/null
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server did not start: $(cat "$dir/log")" >&2; exit 1
}

# redis_stop prints how many AOF rewrites the server ran and, when it ran
# none, the AOF bytes appended per item; then stops the server.
redis_stop() {
  local info rewrites size
  info=$(redis-cli -p "$port" info persistence | tr -d '\r')
  rewrites=$(awk -F: '/^aof_rewrites:/ {print $2}' <<<"$info")
  size=$(awk -F: '/^aof_current_size:/ {print $2}' <<<"$info")
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  port=""
  if [ "$rewrites" = 0 ]; then echo "0 rewrites, $((size / links)) AOF bytes each"; else echo "$rewrites AOF rewrites"; fi
}

peer_run() {
  redis_start
  local r
  r=$("$work/${1:-asynq-drain}" -redis "127.0.0.1:$port" -n "$links" -concurrency 256 | sed -E 's/.*: ([0-9]+) tasks\/s.*/\1/')
  echo "$r $(redis_stop)"
}

linkflow_run() {
  redis_start
  local r
  if ! "$work/linkflow" bench --worker-only --links "$links" --redis-url "redis://127.0.0.1:$port" --json >"$work/json" 2>"$work/err"; then
    echo "bench-peer: a linkflow run failed:" >&2
    tail -n 3 "$work/err" >&2
    redis_stop >/dev/null
    return 1
  fi
  r=$(python3 -c 'import json,sys; print(round(json.load(sys.stdin)["linksPerSecond"]))' <"$work/json")
  echo "$r $(redis_stop)"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Each round the first side moves on by one: with two sides that is ABBA
# order, and with three a rotation, so a machine that speeds up or slows
# down during the run favours none.
sides=(linkflow peer)
[ -n "$peer_result" ] && sides+=(peer2)
: >"$work/lf"; : >"$work/peer"; : >"$work/peer2"
for i in $(seq "$runs"); do
  for j in "${!sides[@]}"; do
    case ${sides[$(((i + j) % ${#sides[@]}))]} in
    linkflow)
      out=$(linkflow_run) || exit 1
      read -r l lb <<<"$out"; echo "$l" >>"$work/lf" ;;
    peer) read -r p pb <<<"$(peer_run)"; echo "$p" >>"$work/peer" ;;
    peer2) read -r q qb <<<"$(peer_run asynq-drain-result)"; echo "$q" >>"$work/peer2" ;;
    esac
  done
  line="run $i: linkflow worker-only $l links/s ($lb), asynq $p tasks/s ($pb)"
  [ -n "$peer_result" ] && line+=", asynq storing $(basename "$peer_result") $q tasks/s ($qb)"
  echo "$line"
done
lm=$(median <"$work/lf" | xargs printf "%.0f"); pm=$(median <"$work/peer" | xargs printf "%.0f")
line="medians: linkflow $lm links/s, asynq $pm tasks/s, ratio $(python3 -c "print(f'{$lm/$pm:.2f}')")x"
if [ -n "$peer_result" ]; then
  qm=$(median <"$work/peer2" | xargs printf "%.0f")
  line+="; asynq storing the same result as linkflow $qm tasks/s, ratio $(python3 -c "print(f'{$lm/$qm:.2f}')")x"
fi
echo "$line"
