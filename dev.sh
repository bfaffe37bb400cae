#!/usr/bin/env bash
# Runs linkflow dev: everything in one process, with an embedded NATS server
# (JetStream) and a redis-server child process. Extra arguments go to
# `linkflow dev` (see `bin/linkflow dev -h`). It builds bin/linkflow first,
# which the README's admin and listen commands use too.
set -euo pipefail
cd "$(dirname "$0")"
. deploy/deps.sh
ensure_packages redis-server
start=$SECONDS
if [ -x bin/linkflow ]; then
  echo "linkflow: building bin/linkflow (seconds, unless the code or Go changed)" >&2
else
  echo "linkflow: building bin/linkflow for the first time: Go downloads and compiles every dependency, which can take one to several minutes; later builds take seconds" >&2
fi
# A sign of life while the compiler works.
( while sleep 15; do echo "linkflow: still building ($((SECONDS - start)) s)..." >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go build -o bin/linkflow ./cmd/linkflow
kill $ticker 2>/dev/null || true
echo "linkflow: built in $((SECONDS - start)) s; starting linkflow dev" >&2
trap - EXIT
exec bin/linkflow dev "$@"
