#!/usr/bin/env bash
# Builds a fuzz target with clang's libFuzzer (ASan + UBSan) and runs it.
# Usage: run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS [reply_parser|guard|csv_reader|bounce]
set -euo pipefail
src=$1 build=$2 seconds=${3:-20} target=${4:-reply_parser}
out="$build/fuzz/$target"
mkdir -p "$out/corpus"
if ! command -v clang++ >/dev/null; then echo "clang++ not found (package clang)"; exit 1; fi
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I "$src/src")
case "$target" in
  reply_parser)
    clang++ "${flags[@]}" "$src/src/smtp/reply.cpp" "$src/tests/fuzz/fuzz_reply_parser.cpp" -o "$out/fuzz"
    # Seeds: real reply shapes.
    printf '\x05220 mx ESMTP\r\n' > "$out/corpus/greeting"
    printf '\x09250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n' > "$out/corpus/ehlo"
    printf '\x03421 4.7.0 slow down\r\n550 5.1.1 no\r\n' > "$out/corpus/errors"
    ;;
  guard)
    # The guard links nothing of blindcast but itself (ICU, libidn2 and fmt).
    clang++ "${flags[@]}" -std=c++2b "$src"/src/guard/*.cpp "$src/tests/fuzz/fuzz_guard.cpp" -o "$out/fuzz" \
      $(pkg-config --cflags --libs icu-uc icu-i18n libidn2) -lfmt
    # Seeds: every leak and clean payload of the corpora, as HTML and as plain text.
    i=0
    while IFS=$'\t' read -r a b c _; do
      [[ -z "$a" || "$a" == \#* ]] && continue
      payload=$c; [[ "$a" == *@* ]] && payload=$b
      printf '\x01%s' "$payload" > "$out/corpus/html-$i"
      printf '\x00%s' "$payload" > "$out/corpus/plain-$i"
      i=$((i + 1))
    done < <(cat "$src/tests/data/guard/leaks.tsv" "$src/tests/data/guard/clean.tsv")
    ;;
  csv_reader)
    # tests/fuzz/shim first: clang 14 cannot compile std::expected (see the shim).
    clang++ -I "$src/tests/fuzz/shim" "${flags[@]}" -std=c++2b "$src/src/audience/csv_reader.cpp" \
      "$src/tests/fuzz/fuzz_csv_reader.cpp" -o "$out/fuzz" -lfmt
    # Seeds: an audience, quoted fields across lines, a BOM, and rows far wider than any audience.
    printf 'email,name,locale\r\nana@example.com.br,"Souza, Ana",pt-BR\r\n' > "$out/corpus/audience"
    printf '\xef\xbb\xbfemail,note\n"li@example.cn","line one\nline ""two"""\n"open' > "$out/corpus/quoted"
    head -c 6000 /dev/zero | tr '\0' ',' > "$out/corpus/wide-commas"
    { printf 'email'; for i in $(seq 1 1500); do printf ',c%d' "$i"; done; printf '\n'; } > "$out/corpus/wide-header"
    ;;
  bounce)
    # The bounce layer and the util pieces it uses; GMime reads the MIME.
    clang++ -I "$src/tests/fuzz/shim" -I "$src/tests/unit" "${flags[@]}" -std=c++2b "$src"/src/bounce/*.cpp "$src/src/util/strings.cpp" \
      "$src/src/util/utf8.cpp" "$src/src/util/sha256.cpp" "$src/tests/fuzz/fuzz_bounce.cpp" -o "$out/fuzz" \
      $(pkg-config --cflags --libs gmime-3.0) -lcrypto -lfmt
    # Seeds: the hand-written samples and, when installed, the flufl.bounce corpus.
    cp "$src"/tests/data/bounces/samples/*.eml "$out/corpus/"
    flufl=/usr/lib/python3/dist-packages/flufl/bounce/tests/data
    if [[ -d $flufl ]]; then cp "$flufl"/*.txt "$out/corpus/"; fi
    ;;
  *) echo "unknown fuzz target $target"; exit 2 ;;
esac
"$out/fuzz" -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
  -rss_limit_mb=2048 "$out/corpus" 2>&1 | tail -5
