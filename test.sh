#!/usr/bin/env bash
# Runs every linkflow test against real redis-server, embedded JetStream and
# headless Chromium, installing redis-server and chromium when missing.
set -euo pipefail
cd "$(dirname "$0")"
. deploy/deps.sh
ensure_packages redis-server chromium
echo "== go vet" >&2
go vet ./...
race=-race
if ! command -v gcc >/dev/null 2>&1; then
  echo "linkflow: gcc not found: running the tests without the race detector (apt-get install -y gcc to enable it)" >&2
  race=
fi
echo "== go test $race" >&2
go test $race -count=1 -timeout 15m "$@" ./...
echo "== fuzz targets, briefly (./fuzz.sh runs them longer)" >&2
./fuzz.sh 1s
echo "== benchmarks compile and run once" >&2
go test -count=1 -run '^$' -bench . -benchtime 1x ./... >/dev/null
echo "== all tests passed" >&2
