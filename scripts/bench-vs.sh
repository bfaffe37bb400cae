#!/usr/bin/env bash
# Runs one `linkflow bench` mode alternately (ABBA: the binary that goes
# first alternates) with this tree's binary and with the binary of an earlier
# commit, on the same machine in the same run, and
# prints every run, the medians and their ratio.
#
#   scripts/bench-vs.sh COMMIT [runs] -- BENCH_FLAGS...
#   scripts/bench-vs.sh 8149814 3 -- --embedded --links 12000 --concurrency 200
#   scripts/bench-vs.sh 8149814 3 -- --dispatcher-only --links 40000
#
# The earlier binary is built from a temporary git worktree of COMMIT. The
# figures compared are linksPerSecond of `bench --json` and the CPU time per
# link of every process bench started, summed (cpu[].cpuMicrosPerLink): where
# a run is bound by latency rather than by the cores, the second shows what
# the first cannot.
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
  if ! "$1" bench "${@:2}" --json >"$work/json" 2>"$work/err"; then
    echo "bench-vs: a run of $1 failed:" >&2
    tail -n 3 "$work/err" >&2
    return 1
  fi
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["linksPerSecond"]), round(sum(c["cpuMicrosPerLink"] for c in d.get("cpu", []))))' <"$work/json"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/o"; : >"$work/n"; : >"$work/oc"; : >"$work/nc"
for i in $(seq "$runs"); do
  # ABBA order: which binary goes first alternates, so a machine that speeds
  # up or slows down during the run favours neither.
  if ((i % 2)); then
    r=$(one "$work/old" "$@"); read -r o oc <<<"$r"
    r=$(one "$work/new" "$@"); read -r n nc <<<"$r"
  else
    r=$(one "$work/new" "$@"); read -r n nc <<<"$r"
    r=$(one "$work/old" "$@"); read -r o oc <<<"$r"
  fi
  echo "$o" >>"$work/o"; echo "$n" >>"$work/n"; echo "$oc" >>"$work/oc"; echo "$nc" >>"$work/nc"
  echo "run $i: $commit $o links/s ($oc µs CPU per link), this tree $n links/s ($nc µs)"
done
om=$(median <"$work/o"); nm=$(median <"$work/n"); ocm=$(median <"$work/oc"); ncm=$(median <"$work/nc")
python3 -c "print(f'medians: $commit {$om:.0f} links/s, this tree {$nm:.0f} links/s, ratio {$nm/$om:.2f}x')"
python3 -c "print(f'CPU per link, all processes: $commit {$ocm:.0f} µs, this tree {$ncm:.0f} µs, ratio {$ncm/$ocm:.2f}x')"
