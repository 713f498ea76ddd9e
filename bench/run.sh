#!/usr/bin/env bash
# Builds the plain variant and prints the foundation benchmark table.
# usage: bench/run.sh [ROWS]   (default 1000000). Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh >/dev/null
./scripts/build.sh plain >/dev/null
exec ./build/bench/bench_foundation "${1:-1000000}"
