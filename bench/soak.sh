#!/usr/bin/env bash
# Soak: a live three-city federation (baygate demo's directories) under load while
# hostile connections are held against the answering city, Shenzhen:
#   - an authenticated flood of signed pings from Foshan's material (a member gone
#     rogue: most of it refused by Shenzhen's rate limit and Foshan's share of the
#     replay cache, as a member's flood should be);
#   - CONNS silent TCP connections that never start TLS, from 10 loopback addresses of
#     their own (127.0.1.x: an attacker is not at a member's address), held and re-made;
#   - QUERIES private set intersection queries of 50 ids each from Guangzhou's gateway
#     (the members that behave), one after another, each timed.
# Every INTERVAL seconds it prints Shenzhen's resident memory, open descriptors and the
# query latency percentiles so far; flat memory and descriptors are the goal. Then one
# line of totals. A benchmark: it asserts nothing and is not part of the tests.
# usage: bench/soak.sh [SECONDS (120)] [QUERIES (1000)] [CONNS (200)] [INTERVAL (10)]
#        (SOAK_KEEP=1: keep the scratch directory with the gateways' logs)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120} queries=${2:-1000} conns=${3:-200} every=${4:-10}
./scripts/deps.sh >/dev/null
./scripts/build.sh plain >/dev/null
B=$PWD/build/baygate FA=$PWD/build/tests/fed_attack
work=$(mktemp -d)
declare -a pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n ${SOAK_KEEP:-} ]]; then echo "soak: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"
"$B" demo --dir fed --count 2000 >demo.log 2>&1 || { echo "soak: baygate demo failed (demo.log)" >&2; exit 1; }
for c in 440100 440300 440600; do
  "$B" serve --dir "fed/$c" --log-level warn 2>"$c.log" &
  pids+=($!)
done
sz_pid=${pids[1]}
for c in 440100 440300 440600; do
  for _ in $(seq 100); do "$B" status --dir "fed/$c" >/dev/null 2>&1 && break; sleep 0.1; done
done
sz_url=$(sed -n 's/^listen = //p' fed/440300/baygate.ini)
sz_port=${sz_url##*:}
head -n 50 fed/data/440100.ids >ids.txt

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$sz_pid/status"; }
fds() { ls "/proc/$sz_pid/fd" | wc -l; }
# pct FILE P: the P-th percentile of the numbers in FILE (one a line), "-" if none.
pct() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {if (NR == 0) print "-"; else {
  i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}}'; }

# one query, timed into FILE (ms), or "fail" into qfail.txt
ask() {
  local t0
  t0=$(date +%s%N)
  if "$B" query --dir fed/440100 --peer 440300 --list serious-dishonesty --purpose supervision \
    --in ids.txt --json --quiet >/dev/null 2>>query.err; then
    echo $((($(date +%s%N) - t0) / 1000000)) >>"$1"
  else
    echo fail >>qfail.txt
  fi
}
: >base.txt
for _ in $(seq 50); do ask base.txt; done # the same queries with nothing else going on
rss0=$(rss_mib) fds0=$(fds)
"$FA" flood --key fed/440600/city.key --cert fed/440600/city.crt --ca fed/440600/ca.crt \
  --crl fed/440600/crl.pem --roster fed/440600/roster.pb --from 440600 --to 440300 \
  --url "$sz_url" --conns 4 --seconds "$secs" >flood.out 2>flood.err &
pids+=($!)
flood_pid=$!
( # silent connections, made again as the guard cuts them
  end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    "$FA" stall --host 127.0.0.1 --port "$sz_port" --seconds 6 --conns "$conns" --sources 10 \
      >/dev/null 2>&1 || true
  done
) &
pids+=($!)
: >lat.txt
( # the queries, one after another
  for _ in $(seq "$queries"); do ask lat.txt; done
) &
pids+=($!)
query_pid=$!

printf '%6s %9s %5s %8s %7s %7s %7s %7s\n' s rss_MiB fds queries p50_ms p95_ms p99_ms max_ms
printf '%6s %9s %5s %8s %7s %7s %7s %7s\n' 0 "$rss0" "$fds0" 0 - - - -
start=$SECONDS
while kill -0 "$flood_pid" 2>/dev/null || kill -0 "$query_pid" 2>/dev/null; do
  sleep "$every"
  printf '%6s %9s %5s %8s %7s %7s %7s %7s\n' $((SECONDS - start)) "$(rss_mib)" "$(fds)" \
    "$(wc -l <lat.txt)" "$(pct lat.txt 50)" "$(pct lat.txt 95)" "$(pct lat.txt 99)" "$(pct lat.txt 100)"
done
wait "$flood_pid" 2>/dev/null || true
b50=$(pct base.txt 50) l50=$(pct lat.txt 50) l99=$(pct lat.txt 99)
echo "query latency: p50 $l50 ms under load, $b50 ms alone before it ($(awk -v a="$l50" -v b="$b50" \
  'BEGIN { printf "%.2f", a / b }')x); p99 $l99 ms"
echo "flood: $(cat flood.out) $(grep -m1 'first other outcome' flood.err || true)"
echo "queries: $(wc -l <lat.txt) answered, $(cat qfail.txt 2>/dev/null | wc -l) failed;" \
  "Shenzhen at the end: $(rss_mib) MiB resident (from $rss0), $(fds) descriptors (from $fds0)"
"$B" status --dir fed/440300 | sed -n '/federation requests/,$p'
