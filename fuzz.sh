#!/usr/bin/env bash
# Runs every fuzz target of linkflow's parsers of outside input, each for a
# while (default 2s; ./test.sh runs them so). Fuzz longer with, e.g.,
#   ./fuzz.sh 10m            every target for ten minutes
#   ./fuzz.sh 1h FuzzCreate  the targets whose name matches, for an hour
# Inputs that fail are written to the package's testdata/fuzz/<target>/;
# commit them with the fix, so the failure stays a test.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime=${1:-2s}
match=${2:-.}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    [[ $target =~ $match ]] || continue
    echo "== $pkg $target ($fuzztime)" >&2
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 2 "$pkg" >/tmp/linkflow-fuzz.$$ 2>&1 || {
      cat /tmp/linkflow-fuzz.$$ >&2; rm -f /tmp/linkflow-fuzz.$$; exit 1; }
  done
done
rm -f /tmp/linkflow-fuzz.$$
