#!/usr/bin/env bash
# Builds blindcast and blindcast_bench at an earlier revision, for before/after
# comparisons in one bench run. Prints the directory holding both binaries.
# Usage: bench/baseline.sh BUILD_DIR [REV]   (REV default: $BASELINE_REV or 16088eb,
# the last revision before the second-generation guard and the send engine)
set -euo pipefail
build=${1:-build}
rev=${2:-${BASELINE_REV:-16088eb}}
top=$(git rev-parse --show-toplevel)
full=$(git -C "$top" rev-parse --verify "$rev^{commit}")
dir="$top/$build/baseline-${full:0:12}"
if [[ ! -x "$dir/build/blindcast" || ! -x "$dir/build/blindcast_bench" ]]; then
  rm -rf "$dir"
  mkdir -p "$dir/src"
  git -C "$top" archive "$full" | tar -x -C "$dir/src"
  cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$dir/build" -j "$(nproc)" --target blindcast blindcast_bench >/dev/null
fi
echo "$dir/build"
