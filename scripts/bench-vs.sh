#!/usr/bin/env bash
# Runs one `linkflow bench` mode alternately with this tree's binary and with
# the binary of an earlier commit, on the same machine in the same run, and
# prints every run, the medians and their ratio.
#
#   scripts/bench-vs.sh COMMIT [runs] -- BENCH_FLAGS...
#   scripts/bench-vs.sh 8149814 3 -- --embedded --links 12000 --concurrency 200
#   scripts/bench-vs.sh 8149814 3 -- --dispatcher-only --links 40000
#
# The earlier binary is built from a temporary git worktree of COMMIT. The
# figure compared is linksPerSecond of `bench --json`.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:?usage: scripts/bench-vs.sh COMMIT [runs] -- BENCH_FLAGS...}
shift
runs=3
if [[ ${1:-} != -- ]]; then runs=${1:-3}; shift || true; fi
[[ ${1:-} == -- ]] && shift
work=$(mktemp -d)
trap 'git worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
echo "building this tree and $commit" >&2
go build -o "$work/new" ./cmd/linkflow
git worktree add --detach "$work/tree" "$commit" >/dev/null 2>&1
(cd "$work/tree" && go build -o "$work/old" ./cmd/linkflow)

one() {
  "$1" bench "${@:2}" --json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["linksPerSecond"]))'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/o"; : >"$work/n"
for i in $(seq "$runs"); do
  o=$(one "$work/old" "$@"); n=$(one "$work/new" "$@")
  echo "$o" >>"$work/o"; echo "$n" >>"$work/n"
  echo "run $i: $commit $o links/s, this tree $n links/s"
done
om=$(median <"$work/o"); nm=$(median <"$work/n")
python3 -c "print(f'medians: $commit {$om:.0f} links/s, this tree {$nm:.0f} links/s, ratio {$nm/$om:.2f}x')"
