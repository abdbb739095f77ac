#!/usr/bin/env bash
# Sets up what is missing, builds cep twice (optimised, and ASan+UBSan) and
# runs the whole suite with ctest in both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential cmake pkg-config libpcre2-dev libjemalloc-dev libjansson-dev libcriterion-dev librdkafka-dev libhiredis-dev redis-server"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
JOBS=$(nproc)
for variant in release asan; do
  dir=build-$variant
  opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
  [ $variant = asan ] && opts="-DCMAKE_BUILD_TYPE=Debug -DCEP_SANITIZE=ON"
  cmake -S . -B $dir $opts >/dev/null
  cmake --build $dir -j "$JOBS"
  echo "== tests: $variant build =="
  (cd $dir && ctest --output-on-failure -j "$JOBS")
done
