#!/usr/bin/env bash
# Installs the Debian 12 packages baygate needs, only those that are missing.
# Idempotent: a second run installs nothing and makes no network request.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libssl-dev          # OpenSSL 3: PKI, ECDSA signatures
  libsodium-dev       # ristretto255, SHA-512, AEAD, randomness
  libnng-dev          # transport (TLS through mbedTLS 2.28)
  libmbedtls-dev      # nng's CMake config names mbedTLS targets
  libprotobuf-c-dev protobuf-c-compiler   # wire messages
  check libsubunit-dev                    # unit tests (Check links subunit)
  libsqlite3-dev      # the embedded credit store
  libinih-dev         # INI configuration
  zlib1g-dev          # gzip for the archives of 'baygate backup'
  clang               # the build matrix builds with gcc and clang
  libclang-rt-14-dev  # fuzzing: libFuzzer (scripts/fuzz.sh)
  debhelper           # the Debian package (debian/; provides dh-sequence-installsysusers)
  help2man            # man pages from the commands' own --help
  bash-completion     # where completions go; the completion test uses it
  lintian man-db      # package checks in the test command
  libmicrohttpd-dev   # the HTTP API's server (thread pool, connection limits)
  curl                # tests: the HTTP API's client
  sqlite3             # tests only: PRAGMA integrity_check and the stores' contents (crash)
  prometheus          # tests only: promtool check metrics
  chromium            # tests only: the web console in a real browser (headless)
  fonts-wqy-microhei  # tests only: CJK glyphs for the console's screenshots
)
# tests only: node and npm validate the OpenAPI document (tests/openapi/) and drive
# chromium through the console (tests/console/), each pinned by its lockfile; a node that
# brings its own npm is kept.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages: ${missing[*]} (run this script as root)" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
