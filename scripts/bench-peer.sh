#!/usr/bin/env bash
# Runs linkflow's worker-only benchmark and the Asynq peer (a Go + Redis task
# queue draining tasks that do a link's Redis work) alternately, each against
# its own redis-server with the same settings (append-only file, fsync every
# second), and prints every run and the medians' ratio.
#
#   scripts/bench-peer.sh [runs] [links]      (default 3 runs of 20000)
#
# The peer's source is in ../shared/peers/asynq-drain (PEER_DIR to change it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
links=${2:-20000}
peer_dir=${PEER_DIR:-../shared/peers/asynq-drain}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "building linkflow and the peer ($peer_dir)" >&2
go build -o "$work/linkflow" ./cmd/linkflow
(cd "$peer_dir" && go build -o "$work/asynq-drain" .)

peer_run() {
  local dir port
  dir=$(mktemp -d -p "$work")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$port" --dir "$dir" --appendonly yes --appendfsync everysec --save '' --daemonize yes \
    --logfile "$dir/log" >/dev/null
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  "$work/asynq-drain" -redis "127.0.0.1:$port" -n "$links" -concurrency 256 | sed -E 's/.*: ([0-9]+) tasks\/s.*/\1/'
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

linkflow_run() {
  "$work/linkflow" bench --worker-only --links "$links" --json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["linksPerSecond"]))'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/lf"; : >"$work/peer"
for i in $(seq "$runs"); do
  l=$(linkflow_run); p=$(peer_run)
  echo "$l" >>"$work/lf"; echo "$p" >>"$work/peer"
  echo "run $i: linkflow worker-only $l links/s, asynq $p tasks/s"
done
lm=$(median <"$work/lf"); pm=$(median <"$work/peer")
python3 -c "print(f'medians: linkflow {$lm:.0f} links/s, asynq {$pm:.0f} tasks/s, ratio {$lm/$pm:.2f}x')"
