#!/usr/bin/env bash
# Runs every linkflow test against real redis-server, embedded JetStream and
# headless Chromium, installing redis-server, redis-tools (redis-cli forms
# the test Redis Cluster) and chromium when missing; then the Redis-facing
# packages and the cluster process tests again on a 3-master Redis Cluster.
set -euo pipefail
cd "$(dirname "$0")"
# The tests choose their own servers: a shell with dev's exports
# (LINKFLOW_API_URL, ...) must not reach them.
for v in $(compgen -e | grep '^LINKFLOW_' | grep -v '^LINKFLOW_TEST_'); do unset "$v"; done
. deploy/deps.sh
ensure_packages redis-server redis-cli:redis-tools chromium
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
./fuzz.sh 2000x
echo "== benchmarks compile and run once" >&2
go test -count=1 -run '^$' -bench . -benchtime 1x ./... >/dev/null
# The same tests on a Redis Cluster: every test binary shares one 3-master
# cluster (internal/testenv), each test under a key prefix of its own.
echo "== go test $race on a Redis Cluster (LINKFLOW_TEST_REDIS=cluster)" >&2
LINKFLOW_TEST_REDIS=cluster go test $race -count=1 -timeout 10m "$@" ./store/... ./workflow/... ./webhooks/...
LINKFLOW_TEST_REDIS=cluster go test $race -count=1 -timeout 10m -run 'Cluster' "$@" ./cmd/linkflow/
echo "== all tests passed" >&2
