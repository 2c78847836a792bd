#!/usr/bin/env bash
# scripts/bench.sh SUITE [--json FILE] [extra benchmark args]
# Runs one benchmark suite pinned to a core, with repetitions, reporting median and spread (stddev,
# cv) for HyperGate and its baseline in the same run. Suites: the *_bench executables in tests/bench
# (kv, hist, pipeline, valves, ...) and the tests/bench/<suite>.sh drivers (http, echo, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: scripts/bench.sh SUITE [--json FILE] [benchmark args]"
  echo "suites:"; for f in tests/bench/*_bench.cpp tests/bench/*.sh; do
    [ -e "$f" ] && b=$(basename "$f") && echo "  ${b%%_bench.cpp}" | sed 's/\.sh$//'; done
  exit 2
fi
suite=$1; shift
json=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
scripts/setup.sh >/dev/null
cmake --preset release >/dev/null
if [ -x "tests/bench/$suite.sh" ]; then
  exec "tests/bench/$suite.sh" ${json:+--json "$json"} "${args[@]}"
fi
if [ ! -f "tests/bench/${suite}_bench.cpp" ]; then
  echo "bench.sh: unknown suite '$suite' (see scripts/bench.sh --help)" >&2; exit 2
fi
cmake --build --preset release --target "${suite}_bench" >/dev/null
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -r)"
# Pin to the last core; benchmarks that start a second thread pin it to core 0 themselves.
cpu=$(( $(nproc) - 1 ))
exec taskset -c "$cpu" "build/release/tests/bench/${suite}_bench" \
  --benchmark_repetitions="${HG_BENCH_REPS:-5}" --benchmark_report_aggregates_only=true \
  --benchmark_display_aggregates_only=true \
  ${json:+--benchmark_out="$json" --benchmark_out_format=json} "${args[@]}"
