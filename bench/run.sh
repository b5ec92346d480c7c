#!/usr/bin/env bash
# Prints Warden's benchmark figures (see docs/benchmarks.md and bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
"$BUILD/bench/bench_agent" "$@"
echo
"$BUILD/bench/bench_api"
echo
exec "$BUILD/bench/bench_ws"
