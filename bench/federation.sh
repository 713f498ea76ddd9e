#!/usr/bin/env bash
# Federation benchmark: builds the plain variant, makes a two-city federation
# in a scratch directory with the operator commands, starts Shenzhen's
# gateway, and measures from Guangzhou's material against it.
# usage: bench/federation.sh [SECONDS per throughput run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh >/dev/null
./scripts/build.sh plain >/dev/null
B=$PWD/build/baygate
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
port_of() { # a free loopback port, from the kernel
  local p
  p=$(bash -c 'for p in $(shuf -i 20000-60000 -n 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; break; }; done')
  echo "$p"
}
"$B" ca init --dir CA >/dev/null
p1=$(port_of); p2=$(port_of)
"$B" init --city 440100 --name Guangzhou --dir gz --listen "tls+tcp://127.0.0.1:$p1" >/dev/null
"$B" init --city 440300 --name Shenzhen --dir sz --listen "tls+tcp://127.0.0.1:$p2" >/dev/null
for g in gz sz; do
  "$B" ca issue --dir CA --csr $g/city.csr --out $g/city.crt >/dev/null
  "$B" ca cert --dir CA --out $g/ca.crt >/dev/null
done
"$B" ca crl --dir CA --out crl.pem >/dev/null
cat >roster.ini <<INI
[federation]
name = Bench Federation
serial = 1
max_message_bytes = 4194304
common_scale = 1,2,3,4
[purpose supervision]
needs_authorisation = false
[member 440100]
name = Guangzhou
endpoint = tls+tcp://127.0.0.1:$p1
certificate = gz/city.crt
lists = serious-dishonesty
scale = ABCD=A,B,C,D
grade_map = A:1, B:2, C:3, D:4
[member 440300]
name = Shenzhen
endpoint = tls+tcp://127.0.0.1:$p2
certificate = sz/city.crt
lists = serious-dishonesty
scale = ABCD=A,B,C,D
grade_map = A:1, B:2, C:3, D:4
[permission 440100 -> 440300]
purposes = supervision
lists = serious-dishonesty
quota_items_per_day = 1000000
min_count_batch = 16
INI
"$B" roster sign --ca CA --out roster.pb roster.ini >/dev/null
for g in gz sz; do cp crl.pem roster.pb $g/; done
"$B" serve --dir sz --log-level warn 2>sz.log &
pid=$!
for _ in $(seq 100); do "$B" status --dir sz >/dev/null 2>&1 && break; sleep 0.1; done
"$(dirname "$B")/bench/bench_federation" --dir gz --peer 440300 --seconds "${1:-5}"
