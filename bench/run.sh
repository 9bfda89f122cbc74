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

echo "== SMTP: full pipeline vs smtp-source vs Python smtplib, all against one Postfix smtp-sink on 127.0.0.1"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -u nobody "127.0.0.1:$port" 1024 &
sink=$!
trap 'kill $sink 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
# A 50,000-recipient campaign with ~4 KB text bodies.
"$bench" gen "$work/smtp" 50000 >/dev/null
rm -f "$work/smtp/templates/body.html"
filler=$("$py" -c 'print(("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 30).strip())')
for i in $(seq 1 43); do
  printf '%s\n' "${filler:0:76}" >> "$work/smtp/templates/body.txt"
done
"$bench" render "$work/smtp" 1 | "$py" -c 'import json,sys; print("message size: %d bytes" % json.load(sys.stdin)["avg_bytes"])'
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$work/cpu" build/blindcast send "$work/smtp" --stage full --transport "smtp://127.0.0.1:$port" \
  > "$work/send.out" 2>/dev/null
end=$(date +%s.%N)
whole=$("$py" -c 'import sys; print(50000/(float(sys.argv[2])-float(sys.argv[1])))' "$start" "$end")
ours=$(sed -n 's/.*(\([0-9]*\) messages\/s.*/\1/p' "$work/send.out")
cpu=$(awk '{print ($1+$2)*1e6/50000}' "$work/cpu")
grep "sent this run" "$work/send.out"
printf 'blindcast (render+compose+guard+journal+SMTP): %s msg/s sending; %.0f msg/s for the whole command incl. importing the audience; %.1f µs CPU per message (whole command)\n' "$ours" "$whole" "$cpu"
start=$(date +%s.%N)
smtp-source -d -s 20 -l 4096 -m 50000 -f noreply@example.com -t user@example.com "127.0.0.1:$port"
end=$(date +%s.%N)
theirs=$("$py" -c 'import sys; print(50000/(float(sys.argv[2])-float(sys.argv[1])))' "$start" "$end")
printf 'smtp-source -d -s 20 -l 4096 -m 50000: %.0f msg/s\n' "$theirs"
pyrate=$("$py" bench/python_smtplib.py "$port" 5000 4096)
echo "python smtplib loop (5,000 messages): $pyrate"
"$py" -c 'import sys; o,w,t,p=map(float,sys.argv[1:]); print("ratio: sending %.2fx smtp-source (whole command %.2fx) and %.1fx Python smtplib" % (o/t, w/t, o/p))' \
  "$ours" "$whole" "$theirs" "$(field "$pyrate" per_second)"
