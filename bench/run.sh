#!/usr/bin/env bash
# Runs blindcast's benchmarks beside their peers in one run and prints ratios.
# Usage: bench/run.sh BUILD_DIR   (make bench)
set -euo pipefail
build=${1:-build}
bench="$build/blindcast_bench"
py=/usr/bin/python3
work=$(mktemp -d /tmp/blindcast-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

echo "== render + compose, one thread, 100,000 messages (example campaign, 5 locales)"
"$bench" gen "$work/c" 20000 >/dev/null
ours=$("$bench" render "$work/c" 100000)
peer=$("$py" bench/python_compose.py "$work/c/audience.csv" 5000)
echo "blindcast:            $ours"
echo "python EmailMessage:  $peer"
"$py" -c 'import sys; print("ratio: blindcast is %.1fx the Python peer" % (float(sys.argv[1]) / float(sys.argv[2])))' \
  "$(field "$ours" per_second)" "$(field "$peer" per_second)"

echo "== audience import, 1,000,000 rows into SQLite (WAL)"
"$bench" gen "$work/big" 1000000 >/dev/null
ls -l "$work/big/audience.csv" | awk '{printf "file: %.1f MB\n", $5/1048576}'
"$bench" import "$work/big"

echo "== privacy guard, one thread, against a 1,000,000-address index"
"$bench" guard 1000000 300000
