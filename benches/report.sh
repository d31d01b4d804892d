#!/usr/bin/env bash
# The benchmark report of docs/benchmarks.md: builds and runs the criterion benches (benches/compare),
# then prints each ratio as `name ratio=X.XX` and which targets are met.
#
#   benches/report.sh                       # SQLite only
#   TENANT_SCOPE_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test benches/report.sh
#
# The full criterion output goes to target/bench-report.log; this prints the machine, the medians,
# the ratios and the targets. Extra arguments go to criterion (e.g. a filter: `benches/report.sh sqlite_get`).
set -euo pipefail
cd "$(dirname "$0")/.."
log=target/bench-report.log
mkdir -p target
start=$(date +%s)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --bench compare -- "$@" >"$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
grep -E '^bench: |median=|ratio=|^target ' "$log"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - start)) s (log: $log)"
