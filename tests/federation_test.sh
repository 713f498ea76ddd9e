#!/usr/bin/env bash
# federation_test.sh BAYGATE FED_ATTACK WORKDIR - three real gateways
# (Guangzhou 440100, Shenzhen 440300, Foshan 440600) on loopback, attacked by
# fed_attack (tests/fed_attack.c): rogue, missing, expired and revoked
# certificates, a city outside the roster, forged, replayed, misaddressed,
# stale, oversize and garbage requests, raw TCP garbage and a client that
# never finishes its handshake. After every hostile case a good ping to the
# attacked gateway must still succeed. Then CRL and roster hot reload, and
# SIGTERM.
#
# Ports are ephemeral (fed_attack freeport), readiness and log events are
# polled against deadlines (no fixed sleeps, nothing tighter than seconds:
# the same script runs the ASan build), everything lives in WORKDIR, and
# every process started here is stopped on exit.
set -uo pipefail
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=federation
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

# expect_in NAME FILE FIXED-STRING
expect_in() {
  if grep -qF -- "$3" "$2"; then ok "$1"; else
    bad "$1" "'$3' not in $2:" "$(head -c 600 "$2")"
  fi
}

# Generous deadlines: the ASan build is several times slower.
READY_S=60    # a gateway answering its local API
EVENT_S=30    # a reload showing up in a gateway's log
COUNTER_S=15  # a status counter catching up
ANSWER_MS=15000 # a call that should be answered (returns as soon as it is)
SILENT_MS=4000  # a call that should get no answer (dropped, TLS refused): waited in full

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
stall_pid=""
cities=(440100 440300 440600)

cleanup() { stop_procs ${stall_pid:+"$stall_pid"} "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# log_count CITY EVENT: how many times EVENT is in the gateway's log.
log_count() { grep -cF -- " $2 " "gw$1.log"; }
log_grew() { (($(log_count "$1" "$2") > $3)); }
# counter CITY NAME: a federation request counter from status --json (0 if absent).
counter() {
  local v
  v=$("$bg" status --dir "gw$1" --json 2>/dev/null | grep -o "\"$2\":[0-9]*")
  echo "${v##*:}" | grep -E '^[0-9]+$' || echo 0
}
counter_is() { [[ "$(counter "$1" "$2")" == "$3" ]]; }
roster_serial() {
  "$bg" status --dir "gw$1" --json 2>/dev/null | grep -o '"roster_serial":[0-9]*' | head -1 |
    cut -d: -f2
}

# attack DIR FROM TO [fed_attack options]: one fed_attack ping with the key and
# certificate in DIR against TO's gateway; prints its result line.
attack() { fa_call ping "$@"; }
# good_ping TO [FROM]: the daemon path: FROM's gateway pings TO (exit 0, "ok").
good_ping() {
  local to=$1 from=${2:-}
  if [[ -z "$from" ]]; then [[ $to == 440100 ]] && from=440300 || from=440100; fi
  "$bg" ping --dir "gw$from" --peer "$to" --timeout-ms "$ANSWER_MS" >ping.out 2>&1
  local rc=$?
  if [[ $rc -eq 0 ]] && grep -q " ok " ping.out; then
    ok "  then a good ping $from -> $to succeeds"
  else
    bad "  then a good ping $from -> $to succeeds" "exit $rc: $(cat ping.out)"
  fi
}
# hostile NAME WANT TO-CITY COUNTER|- DIR FROM [fed_attack options]: one attack
# on TO's gateway, its result line asserted; the counter (if not -) must grow
# by one; then a good ping to TO.
hostile() {
  local title=$1 want=$2 to=$3 cname=$4 dir=$5 from=$6
  shift 6
  local before=0
  [[ $cname != - ]] && before=$(counter "$to" "$cname")
  local got
  got=$(attack "$dir" "$from" "$to" "$@")
  expect_eq "$title" "$got" "$want"
  if [[ $cname != - ]]; then
    if wait_for "$COUNTER_S" counter_is "$to" "$cname" $((before + 1)); then
      ok "  counter $cname on $to: $before -> $((before + 1))"
    else
      bad "  counter $cname on $to" "was $before, now $(counter "$to" "$cname"), expected $((before + 1))"
    fi
  fi
  good_ping "$to"
}

# ------------------------------------------------------------- the PKI


run "$bg" ca init --dir CA
for c in "${cities[@]}"; do setup_city "$c"; done
# Scratch identities, each with a fresh key: a 440100 certificate from a
# same-DN rogue CA; an expired 440100 certificate and a valid one the roster
# does not pin, both from the real CA; Zhuhai 440400 (real CA, not in the
# roster).
run "$bg" ca init --dir ROGUE
run "$bg" init --city 440100 --name Guangzhou --dir rogue
run "$bg" ca issue --dir ROGUE --csr rogue/city.csr --out rogue/city.crt
run "$bg" init --city 440100 --name Guangzhou --dir expired
run "$bg" ca issue --dir CA --csr expired/city.csr --out expired/city.crt --expired
run "$bg" init --city 440100 --name Guangzhou --dir unpinned
run "$bg" ca issue --dir CA --csr unpinned/city.csr --out unpinned/city.crt
run "$bg" init --city 440400 --name Zhuhai --dir zhuhai
run "$bg" ca issue --dir CA --csr zhuhai/city.csr --out zhuhai/city.crt
run "$bg" ca crl --dir CA --out crl.pem
if [[ "$(openssl x509 -in CA/ca.crt -noout -subject)" == "$(openssl x509 -in ROGUE/ca.crt -noout -subject)" ]]; then
  ok "setup: the rogue CA has the federation CA's DN"
else
  bad "setup: the rogue CA has the federation CA's DN"
fi

# roster_ini SERIAL SUPERVISION-QUOTA: the federation's roster source.
roster_ini() {
  roster_federation "$1" 4194304
  roster_purpose supervision false
  roster_members "${cities[@]}"
  local c d
  for c in "${cities[@]}"; do
    for d in "${cities[@]}"; do
      [[ $c == "$d" ]] || roster_permission "$c" "$d" supervision \
        "serious-dishonesty, abnormal-operation" "$2"
    done
  done
}
roster_ini 1 100000 >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
roster_ini 2 200000 >roster2.ini
run "$bg" roster sign --ca CA --out roster2.pb roster2.ini
for c in "${cities[@]}"; do
  run cp crl.pem roster.pb "gw$c/"
done

# publish SRC DEST: replace DEST atomically (a gateway may read it any time).
publish() { cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }

# ------------------------------------------------------------- gateways

for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  if wait_for "$READY_S" "$bg" status --dir "gw$c"; then
    ok "gateway $c (${name[$c]}) is up on ${url[$c]}"
  else
    bad "gateway $c did not come up within ${READY_S}s" "$(tail -5 "gw$c.log")"
    echo "federation: $pass passed, $fail failed"
    exit 1
  fi
done
echo "# setup and start: $((SECONDS - t_start)) s"

# 1. Mutual pings, all six directions, through the daemons.
for c in "${cities[@]}"; do
  "$bg" ping --dir "gw$c" --peer all --json --timeout-ms "$ANSWER_MS" >ping.json 2>&1
  rc=$?
  n_ok=$(grep -c '"ok":true' ping.json)
  if [[ $rc -eq 0 && $n_ok -eq 2 ]]; then
    ok "1. $c pings both peers: exit 0, 2 x ok:true"
  else
    bad "1. $c pings both peers" "exit $rc, $n_ok ok:true" "$(cat ping.json)"
  fi
done
"$bg" ping --dir gw440300 --peer 440100 --timeout-ms "$ANSWER_MS" >ping.out 2>&1
if grep -qE "^440100 Guangzhou +ok +roster 1 " ping.out; then
  ok "1. text output: $(head -1 ping.out)"
else
  bad "1. text output names the peer, ok and the roster" "$(cat ping.out)"
fi

# The hostile client itself, honest: a baseline for everything below.
expect_eq "fed_attack, honest, Shenzhen -> Guangzhou" \
  "$(attack gw440300 440300 440100 --timeout-ms "$ANSWER_MS")" "answer ok"

# 14. Clients that connect over TCP and never start TLS, held open while the
# rest of the suite runs against Guangzhou.
"$fa" stall --host 127.0.0.1 --port "${port[440100]}" --seconds 600 --conns 8 >stall.out 2>&1 &
stall_pid=$!
if wait_for 10 grep -q "^connected 8" stall.out; then
  ok "14. 8 TCP connections to Guangzhou held open without a TLS handshake"
else
  bad "14. stalled connections" "$(cat stall.out)"
fi
good_ping 440100
expect_eq "14. fed_attack honest ping to Guangzhou while stalled" \
  "$(attack gw440300 440300 440100 --timeout-ms "$ANSWER_MS")" "answer ok"

# 2. A 440100 certificate from a rogue CA with the same DN.
hostile "2. rogue-CA certificate (same DN) -> Shenzhen" "transport tls-refused" 440300 - \
  rogue 440100 --timeout-ms "$SILENT_MS"

# 3. No client certificate at all.
hostile "3. no client certificate -> Guangzhou" "transport tls-refused" 440100 - \
  gw440300 440300 --no-client-cert --timeout-ms "$SILENT_MS"

# 5. An expired certificate from the real CA.
hostile "5. expired certificate -> Shenzhen" "transport tls-refused" 440300 - \
  expired 440100 --timeout-ms "$SILENT_MS"

# 6. A valid federation certificate of a city the roster does not list.
hostile "6. Zhuhai 440400, not in the roster -> Guangzhou" "answer refused not-member 14" 440100 \
  refused:not-member zhuhai 440400 --timeout-ms "$ANSWER_MS"

# 6b. A valid, current 440100 certificate from the real CA that the roster does not pin.
hostile "6b. valid 440100 certificate the roster does not pin -> Shenzhen" \
  "answer refused pin-mismatch 15" 440300 refused:pin-mismatch unpinned 440100 \
  --timeout-ms "$ANSWER_MS"

# 7. Tampering after signing: dropped without a word.
hostile "7. flipped bit in the envelope body -> Guangzhou" "timeout" 440100 \
  dropped:bad-signature gw440300 440300 --mutate flip-body --timeout-ms "$SILENT_MS"
hostile "7. flipped bit in the signature -> Guangzhou" "timeout" 440100 \
  dropped:bad-signature gw440300 440300 --mutate flip-signature --timeout-ms "$SILENT_MS"

# 8.-10. What an honest peer can get wrong: typed refusals.
hostile "8. replayed envelope (second copy) -> Guangzhou" "answer refused replay 19" 440100 \
  refused:replay gw440300 440300 --mutate replay --timeout-ms "$ANSWER_MS"
hostile "9. envelope for another city -> Guangzhou" "answer refused wrong-recipient 16" 440100 \
  refused:wrong-recipient gw440300 440300 --mutate wrong-recipient --timeout-ms "$ANSWER_MS"
hostile "10. issued an hour ago -> Guangzhou" "answer refused stale 17" 440100 \
  refused:stale gw440300 440300 --mutate stale --timeout-ms "$ANSWER_MS"
hostile "10. issued an hour ahead -> Guangzhou" "answer refused future 18" 440100 \
  refused:future gw440300 440300 --mutate future --timeout-ms "$ANSWER_MS"

# 11. Shenzhen's certificate, envelope claiming Foshan.
hostile "11. sender claims 440600 with Shenzhen's certificate -> Guangzhou" "timeout" 440100 \
  dropped:certificate-wrong-city gw440300 440300 --mutate claim-sender=440600 \
  --timeout-ms "$SILENT_MS"

# 12. A request above the gateway's limit (the roster's max_message_bytes).
got=$(attack gw440300 440300 440100 --mutate oversize --timeout-ms "$SILENT_MS")
case "$got" in
timeout | "transport reset" | "transport failed")
  ok "12. oversize request -> Guangzhou: the client gets '$got'" ;;
*) bad "12. oversize request -> Guangzhou" "got '$got', expected a timeout or transport error" ;;
esac
good_ping 440100

# 13. Garbage: raw bytes on the TLS port, and garbage inside TLS.
got=$("$fa" raw-garbage --host 127.0.0.1 --port "${port[440100]}" --bytes 8192 2>&1)
if [[ "$got" == sent* ]]; then ok "13. raw TCP garbage -> Guangzhou ($got bytes)"; else
  bad "13. raw TCP garbage" "$got"
fi
good_ping 440100
hostile "13. garbage instead of an envelope, inside TLS -> Guangzhou" "timeout" 440100 \
  dropped:malformed gw440300 440300 --mutate garbage --timeout-ms "$SILENT_MS"

if kill -0 "$stall_pid" 2>/dev/null; then ok "14. the stalled connections were held throughout"; else
  bad "14. the stalled connections were held throughout" "$(cat stall.out)"
fi
good_ping 440300 440600
good_ping 440600 440300
echo "# hostile cases done: $((SECONDS - t_start)) s"

# 4. Revocation: Foshan revoked, the new CRL dropped into Guangzhou's directory.
run "$bg" ca revoke --dir CA --city 440600
run "$bg" ca crl --dir CA --out crl2.pem
n=$(log_count 440100 crl.reloaded)
publish crl2.pem gw440100/crl.pem
if wait_for "$EVENT_S" log_grew 440100 crl.reloaded "$n"; then
  ok "4. Guangzhou logs crl.reloaded"
else
  bad "4. Guangzhou logs crl.reloaded" "$(tail -5 gw440100.log)"
fi
hostile "4. Foshan's (revoked) certificate -> Guangzhou" "transport tls-refused" 440100 - \
  gw440600 440600 --timeout-ms "$SILENT_MS"
"$bg" ping --dir gw440600 --peer 440100 --timeout-ms "$SILENT_MS" >ping.out 2>&1
rc=$?
expect_eq "4. Foshan's gateway can no longer ping Guangzhou (exit)" "$rc" 1
expect_in "4. ... and says why" ping.out "FAILED"
# The failure must be diagnosed from Foshan's dialer to Guangzhou, not its dialer to
# another peer (nng 1.5.2's nng_stat_find_dialer returns the first dialer: nng#1577).
if grep -q "tls-refused" ping.out; then
  ok "4. Foshan's ping of Guangzhou names the cause: tls-refused"
else
  bad "4. Foshan's ping of Guangzhou names the cause tls-refused" "$(cat ping.out)"
fi
"$bg" ping --dir gw440100 --peer 440600 --timeout-ms "$SILENT_MS" >ping.out 2>&1
rc=$?
expect_eq "4. Guangzhou no longer accepts Foshan as a server either (exit)" "$rc" 1
# Guangzhou holds Foshan's certificate (from its answers) and its CRL revokes it:
# not asked at all, said at once (tests/membership_test.sh times it).
if grep -qE "^440600 Foshan +REVOKED +440600 revoked, not asked" ping.out; then
  ok "4. Guangzhou's ping of revoked Foshan says REVOKED"
else
  bad "4. Guangzhou's ping of revoked Foshan says REVOKED" "$(cat ping.out)"
fi
# Guangzhou hands the CRL on (relay_test.sh): Shenzhen takes it and cuts Foshan too.
if wait_for "$EVENT_S" cmp -s crl2.pem gw440300/crl.pem; then
  ok "4. the new CRL reached Shenzhen through Guangzhou"
else
  bad "4. the new CRL reached Shenzhen through Guangzhou" "$(grep -F crl. gw440300.log | tail -3)"
fi
no_ping_600_300() { ! "$bg" ping --dir gw440300 --peer 440600 --timeout-ms "$SILENT_MS" >/dev/null 2>&1; }
if wait_for "$EVENT_S" no_ping_600_300; then
  ok "4. ... and Shenzhen no longer talks to Foshan"
else
  bad "4. ... and Shenzhen no longer talks to Foshan"
fi
good_ping 440100 440300

# 16. Roster hot reload on Shenzhen: serial 2 taken, serial 1 afterwards refused.
n=$(log_count 440300 roster.reloaded)
publish roster2.pb gw440300/roster.pb
if wait_for "$EVENT_S" log_grew 440300 roster.reloaded "$n"; then
  ok "16. Shenzhen logs roster.reloaded"
else
  bad "16. Shenzhen logs roster.reloaded" "$(tail -5 gw440300.log)"
fi
expect_eq "16. Shenzhen status: roster_serial" "$(roster_serial 440300)" 2
"$bg" ping --dir gw440100 --peer 440300 --json --timeout-ms "$ANSWER_MS" >ping.json 2>&1
if grep -q '"ok":true' ping.json && grep -q '"roster_serial":2[,}]' ping.json; then
  ok "16. Guangzhou's ping of Shenzhen: ok, peer roster_serial 2"
else
  bad "16. Guangzhou's ping of Shenzhen: ok, peer roster_serial 2" "$(cat ping.json)"
fi
n=$(log_count 440300 roster.refused)
publish roster.pb gw440300/roster.pb
if wait_for "$EVENT_S" log_grew 440300 roster.refused "$n"; then
  ok "16. an older roster (serial 1) dropped in: Shenzhen logs roster.refused"
else
  bad "16. Shenzhen logs roster.refused" "$(tail -5 gw440300.log)"
fi
expect_eq "16. Shenzhen keeps roster_serial" "$(roster_serial 440300)" 2
good_ping 440300 440100

# 17. SIGTERM: every gateway exits 0 promptly (Guangzhou with the stalled
# connections still open); its local socket is gone or harmless.
stop_gw() {
  local c=$1 t0=$SECONDS rc
  kill -TERM "${pid[$c]}"
  if ! wait_for 30 bash -c "! kill -0 ${pid[$c]}"; then
    bad "17. $c exits on SIGTERM" "still running after 30 s"
    return
  fi
  wait "${pid[$c]}"
  rc=$?
  unset "pid[$c]"
  expect_eq "17. $c exits on SIGTERM within $((SECONDS - t0)) s, status" "$rc" 0
  expect_in "17. $c logs gateway.stopped" "gw$c.log" " gateway.stopped "
  if [[ -e "gw$c/local.ipc" ]]; then
    if "$bg" status --dir "gw$c" >status.out 2>&1; then
      bad "17. $c: a stopped gateway still answers status" "$(cat status.out)"
    else
      ok "17. $c: socket file left behind, but nobody answers on it"
    fi
  else
    ok "17. $c: local socket file removed"
  fi
}
for c in "${cities[@]}"; do stop_gw "$c"; done
kill -TERM "$stall_pid" 2>/dev/null
wait "$stall_pid" 2>/dev/null
stall_pid=""
# Harmless: the same directory serves again, then stops cleanly again.
start_gw 440100
if wait_for "$READY_S" "$bg" status --dir gw440100; then
  ok "17. Guangzhou restarts in the same directory"
else
  bad "17. Guangzhou restarts in the same directory" "$(tail -5 gw440100.log)"
fi
stop_gw 440100

for c in "${cities[@]}"; do
  if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log"; then
    bad "sanitizers: gw$c.log is clean" "$(grep -m3 -E "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log")"
  else
    ok "sanitizers: gw$c.log is clean"
  fi
done
if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" attack.log; then
  bad "sanitizers: fed_attack is clean" "$(grep -m3 -E "AddressSanitizer|LeakSanitizer|runtime error:" attack.log)"
else
  ok "sanitizers: fed_attack is clean"
fi

echo "# total: $((SECONDS - t_start)) s"
echo "federation: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
