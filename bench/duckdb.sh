#!/usr/bin/env bash
# cep backtest against DuckDB: the same windowed-aggregation rules over the
# same JSONL, results compared row by row, both wall times printed
# (bench/duckdb/README.md). Installs DuckDB's Node.js client from the npm
# registry into bench/duckdb/node_modules on first use.
#   bash bench/duckdb.sh [BUILD_DIR] [EVENTS] [RULES]    (defaults: build-release 10000000 300)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
EVENTS=${2:-10000000}
RULES=${3:-300}
command -v node > /dev/null || { echo "bench/duckdb.sh needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
[ -d bench/duckdb/node_modules/@duckdb/node-api ] || (cd bench/duckdb && npm ci --no-audit --no-fund)
DATA=${CEP_BENCH_DATA:-/tmp}/cep-duckdb-$EVENTS.jsonl
[ -s "$DATA" ] || "$BUILD/cep" gen --domain gaming --events "$EVENTS" --seed 1 --output "$DATA"
cd bench/duckdb
node --max-old-space-size=16384 compare.mjs --events "$DATA" --rules "$RULES" --cep "../../$BUILD/cep"
