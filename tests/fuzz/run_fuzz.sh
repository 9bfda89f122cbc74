#!/usr/bin/env bash
# Builds the reply-parser fuzz target with clang's libFuzzer and runs it briefly.
# Usage: run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS
set -euo pipefail
src=$1 build=$2 seconds=${3:-20}
out="$build/fuzz"
mkdir -p "$out/corpus"
if ! command -v clang++ >/dev/null; then echo "clang++ not found (package clang)"; exit 1; fi
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I "$src/src" "$src/src/smtp/reply.cpp" "$src/tests/fuzz/fuzz_reply_parser.cpp" -o "$out/fuzz_reply_parser"
# Seeds: real reply shapes.
printf '\x05220 mx ESMTP\r\n' > "$out/corpus/greeting"
printf '\x09250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n' > "$out/corpus/ehlo"
printf '\x03421 4.7.0 slow down\r\n550 5.1.1 no\r\n' > "$out/corpus/errors"
"$out/fuzz_reply_parser" -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 "$out/corpus" 2>&1 | tail -5
