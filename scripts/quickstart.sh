#!/usr/bin/env bash
# The main job on the embedded default: sets up what is missing, builds cep,
# generates labeled gaming events, runs the demo pack over them and shows
# the alerts with a summary per rule.
#   bash scripts/quickstart.sh [EVENTS]      (default 200000 events)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-200000}
PKGS="build-essential cmake pkg-config libpcre2-dev libjemalloc-dev libjansson-dev librdkafka-dev libhiredis-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "== installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
echo "== building cep (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCEP_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target cep >/dev/null
mkdir -p out
echo "== generating $EVENTS gaming events (seed 42) into out/gaming.events.jsonl"
build/cep gen --domain gaming --events "$EVENTS" --seed 42 \
  --output out/gaming.events.jsonl --labels out/gaming.labels.jsonl
echo "== checking the demo pack"
build/cep check rules/demo
echo "== running rules/demo over the events; alerts in out/alerts.jsonl"
build/cep run --rules rules/demo --input out/gaming.events.jsonl \
  --output out/alerts.jsonl --dead-letters out/dead-letters.jsonl --summary
echo "== first alerts"
head -n 5 out/alerts.jsonl
