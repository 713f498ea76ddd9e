#!/usr/bin/env bash
# Configures and builds one variant: scripts/build.sh [plain|asan]
# plain -> build/, asan -> build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-plain}
case "$variant" in
  plain) dir=build; flags=(-DBG_SANITIZE=OFF) ;;
  asan)  dir=build-asan; flags=(-DBG_SANITIZE=ON) ;;
  *) echo "build: unknown variant '$variant' (plain|asan)" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" >/dev/null
echo "build: $variant ready in $dir/"
