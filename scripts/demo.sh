#!/usr/bin/env bash
# Quick start, first command: install what is missing, build, run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh plain
exec ./build/baygate demo "$@"
