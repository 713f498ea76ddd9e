#!/usr/bin/env bash
# membership_test.sh BAYGATE FED_ATTACK WORKDIR - adding and removing a city on a
# running federation (docs/OPERATIONS.md, "Adding and removing a city"), with
# real gateways on loopback. It checks:
#   1. Guangzhou 440100 and Shenzhen 440300 run from a roster whose permissions
#      are one [permission default] section: they ping and query each other.
#   2. Zhuhai 440400 added with init, ca issue, roster add-member and roster sign;
#      the new roster.pb dropped into the running gateways' directories: both
#      reload it (no restart: same processes, one gateway.ready each), Zhuhai
#      pings both, both ping Zhuhai, and Guangzhou's query reaches it.
#   3. Zhuhai revoked (ca revoke, a new CRL dropped in) while it is still in the
#      roster: Guangzhou's `ping --peer all` and `query --peer all` report it
#      REVOKED (code 116) at once, in under 3 s where its request timeout is
#      15 s (without the check each waits that timeout on its TLS handshake),
#      while Shenzhen still answers.
#   4. roster remove-member + sign + drop-in: the gateways reload, Zhuhai is gone
#      from `roster show` and from the peers Guangzhou pings.
# Ports are ephemeral, every wait polls against a deadline, everything lives in
# WORKDIR and every process started here is stopped on exit.
set -uo pipefail
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=membership
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

READY_S=60       # a gateway answering its local API (ASan is slow)
EVENT_S=30       # a reload showing up in a gateway's log
ANSWER_MS=15000  # the request timeout of every ping and query here
REVOKED_MAX_MS=3000

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440400]=Zhuhai)
cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log_count() { grep -cF -- " $2 " "gw$1.log"; }
log_grew() { (($(log_count "$1" "$2") > $3)); }
roster_serial() {
  "$bg" status --dir "gw$1" --json 2>/dev/null | grep -o '"roster_serial":[0-9]*' | head -1 |
    cut -d: -f2
}
serial_is() { [[ "$(roster_serial "$1")" == "$2" ]]; }
# publish SRC DEST: replace DEST atomically (a gateway may read it any time).
publish() { cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }
now_ms() { date +%s%3N; }
# ping_all FROM: FROM's gateway pings every peer; output in ping.out, exit in $prc,
# milliseconds taken in $pms.
ping_all() {
  local t0
  t0=$(now_ms)
  "$bg" ping --dir "gw$1" --peer all --timeout-ms "$ANSWER_MS" >ping.out 2>&1
  prc=$?
  pms=$(($(now_ms) - t0))
}
# query_all: Guangzhou asks every peer about its ids; JSON in q.json, exit in $qrc,
# milliseconds taken in $qms.
query_all() {
  local t0
  t0=$(now_ms)
  "$bg" query --dir gw440100 --peer all --list serious-dishonesty --purpose supervision \
    --in ids.txt --timeout-ms "$ANSWER_MS" --json >q.json 2>q.err
  qrc=$?
  qms=$(($(now_ms) - t0))
}
# peer_line CITY: CITY's line of ping.out.
peer_line() { grep -E "^$1 " ping.out; }
# expect_ping_ok TITLE FROM TO
expect_ping_ok() {
  if "$bg" ping --dir "gw$2" --peer "$3" --timeout-ms "$ANSWER_MS" >ping1.out 2>&1 &&
    grep -qE "^$3 +[A-Za-z]+ +ok " ping1.out; then
    ok "$1"
  else
    bad "$1" "$(cat ping1.out)"
  fi
}
# wait_reload CITY SERIAL BEFORE: CITY logs roster.reloaded (more than BEFORE times) and
# reports SERIAL.
wait_reload() {
  if wait_for "$EVENT_S" log_grew "$1" roster.reloaded "$3" && wait_for "$EVENT_S" serial_is "$1" "$2"; then
    ok "  $1 (${name[$1]}) reloads the roster: serial $2, no restart"
  else
    bad "  $1 reloads the roster, serial $2" "status serial $(roster_serial "$1")" "$(tail -5 "gw$1.log")"
  fi
}

# ------------------------------------------------------- two cities, a default

run "$bg" ca init --dir CA
for c in 440100 440300; do setup_city "$c"; done
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 4194304
  roster_purpose supervision false
  roster_members 440100 440300
  cat <<'EOT'

; every ordered pair of members, the cities that join later included
[permission default]
purposes = supervision
lists = *
quota_items_per_day = 1000000
min_count_batch = 16
EOT
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
"$bg" roster show roster.pb >show.out 2>&1
if grep -q "440100 -> 440300" show.out && grep -q "440300 -> 440100" show.out &&
  grep -q "^permissions (2):" show.out; then
  ok "1. the default section compiles to both ordered pairs"
else
  bad "1. the default section compiles to both ordered pairs" "$(cat show.out)"
fi
for c in 440100 440300; do run cp crl.pem roster.pb "gw$c/"; done
run "$bg" gen --city 440100 --count 200 --seed 21 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count 200 --seed 22 --share 440100.csv --share-rate 0.3 \
  --out 440300.csv --quiet
for c in 440100 440300; do run "$bg" import --data-dir "gw$c/data" --city "$c" --strict "$c.csv"; done
awk -F, 'NR > 1 { print $1 }' 440100.csv >ids.txt

for c in 440100 440300; do start_gw "$c"; done
for c in 440100 440300; do
  if wait_for "$READY_S" "$bg" status --dir "gw$c"; then
    ok "1. gateway $c (${name[$c]}) is up"
  else
    bad "1. gateway $c did not come up within ${READY_S}s" "$(tail -5 "gw$c.log")"
    echo "$SUITE: $pass passed, $fail failed"
    exit 1
  fi
done
expect_ping_ok "1. Guangzhou pings Shenzhen" 440100 440300
expect_ping_ok "1. Shenzhen pings Guangzhou" 440300 440100
echo "# two cities up: $((SECONDS - t_start)) s"

# ------------------------------------------------------------- add Zhuhai

port[440400]=$("$fa" freeport) || setup_fail "freeport"
url[440400]="tls+tcp://127.0.0.1:${port[440400]}"
run "$bg" init --city 440400 --name Zhuhai --dir gw440400 --listen "${url[440400]}"
run "$bg" ca issue --dir CA --csr gw440400/city.csr --out gw440400/city.crt
run "$bg" ca cert --dir CA --out gw440400/ca.crt
cp roster.ini roster.ini.before
"$bg" roster add-member --ini roster.ini --city 440400 --name Zhuhai \
  --endpoint "${url[440400]}" --certificate gw440400/city.crt \
  --lists "serious-dishonesty, abnormal-operation" --scale ABCD=A,B,C,D \
  --grade-map "A:1, B:2, C:3, D:4" --ca CA >add.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && grep -q "serial 2; it may ask 2 members and be asked by 2" add.out &&
  grep -q "next: baygate roster sign" add.out; then
  ok "2. roster add-member: exit 0, serial 2, Zhuhai's four pairs from the default"
else
  bad "2. roster add-member" "exit $rc" "$(cat add.out)"
fi
# Only the serial line changed and lines were added: every other line is kept.
if diff roster.ini.before roster.ini | grep -E '^[<>]' | grep -vE '^> |^< serial = 1$' |
  grep -q .; then
  bad "2. add-member keeps the rest of roster.ini" "$(diff roster.ini.before roster.ini)"
elif grep -q "^; every ordered pair of members" roster.ini; then
  ok "2. add-member keeps the rest of roster.ini (comments too)"
else
  bad "2. add-member keeps the comments of roster.ini" "$(cat roster.ini)"
fi
run "$bg" roster sign --ca CA --out roster.pb roster.ini
n_gz=$(log_count 440100 roster.reloaded)
n_sz=$(log_count 440300 roster.reloaded)
pid_before="${pid[440100]} ${pid[440300]}"
for c in 440100 440300; do publish roster.pb "gw$c/roster.pb"; done
run cp crl.pem roster.pb gw440400/
run "$bg" gen --city 440400 --count 200 --seed 23 --share 440100.csv --share-rate 0.3 \
  --out 440400.csv --quiet
run "$bg" import --data-dir gw440400/data --city 440400 --strict 440400.csv
wait_reload 440100 2 "$n_gz"
wait_reload 440300 2 "$n_sz"
start_gw 440400
if wait_for "$READY_S" "$bg" status --dir gw440400; then
  ok "2. Zhuhai's gateway is up"
else
  bad "2. Zhuhai's gateway did not come up" "$(tail -5 gw440400.log)"
fi
ping_all 440400
if [[ $prc -eq 0 ]] && peer_line 440100 | grep -q " ok " && peer_line 440300 | grep -q " ok "; then
  ok "2. Zhuhai pings both: exit 0, 440100 ok, 440300 ok"
else
  bad "2. Zhuhai pings both" "exit $prc" "$(cat ping.out)"
fi
expect_ping_ok "2. Guangzhou pings Zhuhai" 440100 440400
expect_ping_ok "2. Shenzhen pings Zhuhai" 440300 440400
query_all
if [[ $qrc -eq 0 ]] && grep -qF '{"peer":"440400","name":"Zhuhai","ok":true' q.json &&
  grep -qF '{"peer":"440300","name":"Shenzhen","ok":true' q.json; then
  ok "2. Guangzhou's query --peer all reaches Zhuhai"
else
  bad "2. Guangzhou's query --peer all reaches Zhuhai" "exit $qrc" "$(head -c 600 q.json)" "$(cat q.err)"
fi
expect_eq "2. the others were not restarted (same processes)" "${pid[440100]} ${pid[440300]}" "$pid_before"
expect_eq "2. ... and each was ready once" "$(log_count 440100 gateway.ready) $(log_count 440300 gateway.ready)" "1 1"
echo "# Zhuhai added: $((SECONDS - t_start)) s"

# ------------------------------------------------- revoke Zhuhai, still listed

run "$bg" ca revoke --dir CA --city 440400
run "$bg" ca crl --dir CA --out crl2.pem
n_gz=$(log_count 440100 crl.reloaded)
n_sz=$(log_count 440300 crl.reloaded)
for c in 440100 440300 440400; do publish crl2.pem "gw$c/crl.pem"; done
for c in 440100 440300; do
  n=n_sz
  [[ $c == 440100 ]] && n=n_gz
  if wait_for "$EVENT_S" log_grew "$c" crl.reloaded "${!n}"; then
    ok "3. $c logs crl.reloaded"
  else
    bad "3. $c logs crl.reloaded" "$(tail -5 "gw$c.log")"
  fi
done
if wait_for "$EVENT_S" grep -qF " peer.revoked " gw440100.log; then
  ok "3. Guangzhou logs peer.revoked for Zhuhai"
else
  bad "3. Guangzhou logs peer.revoked" "$(tail -5 gw440100.log)"
fi
ping_all 440100
if [[ $prc -eq 1 ]] && peer_line 440400 | grep -q " REVOKED .*440400 revoked, not asked: certificate revoked at" &&
  peer_line 440300 | grep -q " ok "; then
  ok "3. Guangzhou's ping --peer all: Zhuhai REVOKED, Shenzhen ok, exit 1"
else
  bad "3. Guangzhou's ping --peer all: Zhuhai REVOKED, Shenzhen ok" "exit $prc" "$(cat ping.out)"
fi
if ((pms < REVOKED_MAX_MS)); then
  ok "3. ... in $pms ms (< $REVOKED_MAX_MS; the request timeout is $ANSWER_MS)"
else
  bad "3. ping --peer all with a revoked peer took $pms ms" "expected < $REVOKED_MAX_MS ms"
fi
query_all
if grep -qF '{"peer":"440400","name":"Zhuhai","ok":false,"request_id":null,"error_code":116,"error":"440400 revoked, not asked' q.json &&
  grep -qF '{"peer":"440300","name":"Shenzhen","ok":true' q.json; then
  ok "3. Guangzhou's query --peer all: Zhuhai refused as revoked (116), Shenzhen answers"
else
  bad "3. query --peer all with Zhuhai revoked" "exit $qrc" "$(head -c 800 q.json)" "$(cat q.err)"
fi
if ((qms < REVOKED_MAX_MS)); then
  ok "3. ... in $qms ms (< $REVOKED_MAX_MS)"
else
  bad "3. query --peer all with a revoked peer took $qms ms" "expected < $REVOKED_MAX_MS ms"
fi
"$bg" query --dir gw440100 --peer all --list serious-dishonesty --purpose supervision \
  --in ids.txt --timeout-ms "$ANSWER_MS" >q.txt 2>&1
if grep -qE "^440400 Zhuhai +REVOKED \(116\): 440400 revoked, not asked" q.txt; then
  ok "3. the query's table says REVOKED: $(grep -E '^440400 ' q.txt | cut -c1-60)..."
else
  bad "3. the query's table says REVOKED" "$(head -c 600 q.txt)"
fi
ping_all 440300
if peer_line 440400 | grep -q " REVOKED " && ((pms < REVOKED_MAX_MS)); then
  ok "3. Shenzhen's ping --peer all: Zhuhai REVOKED too, in $pms ms"
else
  bad "3. Shenzhen's ping --peer all: Zhuhai REVOKED" "$pms ms" "$(cat ping.out)"
fi

# ---------------------------------------------------------- remove Zhuhai

"$bg" roster remove-member --ini roster.ini --city 440400 >rm.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && grep -q "removed member 440400 .*(1 section), serial 3; 2 members left" rm.out; then
  ok "4. roster remove-member: exit 0, serial 3, 2 members left"
else
  bad "4. roster remove-member" "exit $rc" "$(cat rm.out)"
fi
if diff -q <(sed 's/^serial = 3$/serial = 1/' roster.ini) roster.ini.before >/dev/null; then
  ok "4. roster.ini is as it was before Zhuhai, but for the serial"
else
  bad "4. roster.ini is as it was before Zhuhai" "$(diff roster.ini.before roster.ini)"
fi
run "$bg" roster sign --ca CA --out roster.pb roster.ini
n_gz=$(log_count 440100 roster.reloaded)
n_sz=$(log_count 440300 roster.reloaded)
for c in 440100 440300; do publish roster.pb "gw$c/roster.pb"; done
wait_reload 440100 3 "$n_gz"
wait_reload 440300 3 "$n_sz"
"$bg" roster show --ca CA roster.pb >show.out 2>&1
if grep -q "^members (2):" show.out && ! grep -q "440400" show.out; then
  ok "4. roster show: 2 members, no 440400"
else
  bad "4. roster show: Zhuhai gone" "$(cat show.out)"
fi
ping_all 440100
if [[ $prc -eq 0 ]] && ! grep -q "^440400 " ping.out && peer_line 440300 | grep -q " ok "; then
  ok "4. Guangzhou's ping --peer all: Shenzhen only, exit 0"
else
  bad "4. Guangzhou's ping --peer all after the removal" "exit $prc" "$(cat ping.out)"
fi

stop_procs "${pid[@]}"
pid=()
for c in 440100 440300 440400; do
  if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log"; then
    bad "sanitizers: gw$c.log is clean" "$(grep -m3 -E "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log")"
  else
    ok "sanitizers: gw$c.log is clean"
  fi
done
echo "# total: $((SECONDS - t_start)) s"
echo "$SUITE: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
