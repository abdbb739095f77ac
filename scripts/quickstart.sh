#!/usr/bin/env bash
# The main job on the embedded default: sets up what is missing, builds cep,
# starts the embedded Kafka broker, generates labeled gaming events into
# gaming.events, runs the demo pack on them with its state checkpointed to a
# local redis-server (alerts to cep.alerts, bad records to cep.dlq) and shows
# the alerts arriving from cep.alerts with a summary per rule.
#   bash scripts/quickstart.sh [EVENTS]      (default 100000 events)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-100000}
PKGS="build-essential cmake pkg-config libpcre2-dev libjemalloc-dev libjansson-dev librdkafka-dev libhiredis-dev redis-server"
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
echo "== checking the demo pack"
build/cep check rules/demo

# The embedded broker keeps about 5 MB per partition (librdkafka's mock
# cluster): 8 partitions, and cep consumes while the generator produces.
echo "== starting redis-server for the engine's state (loopback, no persistence)"
RPORT=16379
while (exec 3<>/dev/tcp/127.0.0.1/$RPORT) 2>/dev/null; do RPORT=$((RPORT + 1)); done
mkdir -p out/redis
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/out/redis" > out/redis.log 2>&1 &
REDIS=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$RPORT) 2>/dev/null && break; sleep 0.1; done
echo "   state: redis://127.0.0.1:$RPORT"

echo "== starting the embedded Kafka broker"
rm -f out/broker.addr
build/cep broker --partitions 8 > out/broker.addr 2> out/broker.log &
BROKER=$!
trap 'kill $BROKER $REDIS 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s out/broker.addr ] && break; sleep 0.1; done
B=$(head -n 1 out/broker.addr)
echo "   bootstrap: $B"

echo "== running rules/demo on gaming.events (alerts to cep.alerts, bad records to cep.dlq)"
build/cep run --rules rules/demo --kafka "$B" --group cep-quickstart --state "redis://127.0.0.1:$RPORT" \
  --idle-exit-ms 3000 --summary 2> out/run.log &
RUN=$!
echo "== generating $EVENTS gaming events (seed 42) into gaming.events"
build/cep gen --domain gaming --events "$EVENTS" --seed 42 --kafka "$B" --topic gaming.events \
  --labels out/gaming.labels.jsonl
wait $RUN
cat out/run.log
echo "== the first alerts on cep.alerts"
build/cep consume --kafka "$B" --topic cep.alerts --max 8 --idle-exit-ms 2000
