#!/usr/bin/env bash
# Kafka in -> alerts out through the embedded broker, against the same
# events replayed from a file, same pack. Prints both rates and their ratio.
#   bash bench/kafka.sh [BUILD_DIR] [EVENTS]     (defaults: build-release 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
EVENTS=${2:-100000}
CEP=$BUILD/cep
TMP=$(mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; rm -rf "$TMP"' EXIT
$CEP broker --partitions 8 > "$TMP/addr" 2>/dev/null &
BROKER=$!
for _ in $(seq 50); do [ -s "$TMP/addr" ] && break; sleep 0.1; done
B=$(head -n 1 "$TMP/addr")
# the embedded broker keeps ~5 MB per partition: 100k events (31 MB) over 8 partitions fit
$CEP gen --domain gaming --events "$EVENTS" --seed 1 --kafka "$B" 2>/dev/null
$CEP gen --domain gaming --events "$EVENTS" --seed 1 --output "$TMP/events.jsonl" 2>/dev/null
$CEP run --rules rules/demo --kafka "$B" --group bench --idle-exit-ms 1000 2> "$TMP/kafka.log"
KRATE=$(sed -n 's/.*first to last record [0-9.]* s, \([0-9]*\) records\/s/\1/p' "$TMP/kafka.log")
START=$(date +%s.%N)
$CEP run --rules rules/demo --input "$TMP/events.jsonl" --output /dev/null 2> "$TMP/file.log"
END=$(date +%s.%N)
FRATE=$(awk -v n="$EVENTS" -v a="$START" -v b="$END" 'BEGIN { printf "%.0f", n / (b - a) }')
grep "cep run" "$TMP/kafka.log"
grep "cep run" "$TMP/file.log"
awk -v k="$KRATE" -v f="$FRATE" 'BEGIN { printf "kafka: %d events/s, file: %d events/s, ratio kafka/file: %.3f\n", k, f, k / f }'
