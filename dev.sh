#!/usr/bin/env bash
# Runs linkflow dev: everything in one process, with an embedded NATS server
# (JetStream) and a redis-server child process. Extra arguments go to
# `linkflow dev` (see `go run ./cmd/linkflow dev -h`).
set -euo pipefail
cd "$(dirname "$0")"
. deploy/deps.sh
ensure_packages redis-server
exec go run ./cmd/linkflow dev "$@"
