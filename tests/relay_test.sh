#!/usr/bin/env bash
# relay_test.sh BAYGATE FED_ATTACK WORKDIR - the roster and the CRL reach every city
# by themselves (gateway/daemon/relay.h). Three real gateways on loopback (Guangzhou
# 440100, Shenzhen 440300, Foshan 440600); the operator's files go into Guangzhou's
# directory only. What it checks:
#   1. a new CRL (revoking nobody, a higher number) dropped at Guangzhou: within
#      RELAY_S Shenzhen's and Foshan's crl.pem are byte-identical to it, each logs
#      crl.received once, and all three run on it (crl.reloaded); the time it took is
#      printed (docs/OPERATIONS.md quotes it);
#   2. the same for a new roster serial (roster.received, status roster_serial);
#   3. an older roster and an older CRL offered by a peer (fed_attack relay, with
#      Shenzhen's key) are refused (relay_refused verdict=older), not written, and the
#      answer hands back the newer ones;
#   4. a roster signed by another CA (a `ca init` of its own, same DN), a CRL of that
#      CA with a higher number, garbage, and a roster over 1 MiB are refused and
#      nothing is written;
#   5. a city that was down catches up when it starts again (its first offer round);
#   6. Foshan revoked, the CRL dropped at Guangzhou: Foshan receives it before it is
#      cut off, logs gw.self_revoked and shows standing "revoked" in status; Shenzhen
#      stops talking to Foshan, and says what it can see of the refused handshakes.
# Deadlines are generous (the ASan build runs the same script); the one timing
# asserted is the RELAY_S bound.
set -uo pipefail
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=relay
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2

READY_S=60   # a gateway answering its local API
RELAY_S=30   # an artefact dropped at one city reaching the others
EVENT_S=30   # a log line showing up
SILENT_MS=4000
ANSWER_MS=15000

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
cities=(440100 440300 440600)
cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log_count() { grep -cF -- "$2" "gw$1.log"; }
in_log() { grep -qF -- "$2" "gw$1.log"; }
status_field() {
  "$bg" status --dir "gw$1" --json 2>/dev/null | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2 |
    tr -d '"'
}
status_is() { [[ "$(status_field "$1" "$2")" == "$3" ]]; }
# same_everywhere FILE NAME: FILE byte-identical to NAME in every gateway directory.
same_everywhere() {
  local c
  for c in "${cities[@]}"; do cmp -s "$1" "gw$c/$2" || return 1; done
}
publish() { cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# relay_offer FROM-DIR FROM TO [fed_attack relay options]: one offer, its result line.
relay_offer() { fa_call relay "$@" --timeout-ms "$ANSWER_MS"; }
expect_file() {
  if cmp -s "$2" "$3"; then ok "$1"; else bad "$1" "$3 differs from $2"; fi
}
expect_line() {
  if [[ "$2" == *"$3"* ]]; then ok "$1: $2"; else bad "$1" "got '$2', expected it to hold '$3'"; fi
}

# ------------------------------------------------------------- PKI, roster

run "$bg" ca init --dir CA
run "$bg" ca init --dir ROGUE # the same DN as CA, another key
for c in "${cities[@]}"; do
  setup_city "$c"
  # Offer rounds every 10 s: a push that fails is retried well within RELAY_S.
  sed -i 's/^relay_interval_s = .*/relay_interval_s = 10/' "gw$c/baygate.ini"
done
grep -q '^relay_interval_s = 10$' gw440100/baygate.ini || setup_fail "relay_interval_s not in baygate.ini"
run "$bg" ca crl --dir CA --out crl1.pem

# roster_ini SERIAL QUOTA: every city may ask every other for supervision.
roster_ini() {
  roster_federation "$1" 4194304
  roster_purpose supervision false
  roster_members "${cities[@]}"
  local c d
  for c in "${cities[@]}"; do
    for d in "${cities[@]}"; do
      [[ $c == "$d" ]] || roster_permission "$c" "$d" supervision serious-dishonesty "$2"
    done
  done
}
for s in 1 2 3; do
  roster_ini "$s" "${s}000" >"roster$s.ini"
  run "$bg" roster sign --ca CA --out "roster$s.pb" "roster$s.ini"
done
# The forgery: serial 9, the same members pinned by fingerprint, signed by ROGUE.
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
sed_fp=()
for c in "${cities[@]}"; do sed_fp+=(-e "s|^certificate = gw$c/city.crt|fingerprint = $(fp "gw$c/city.crt")|"); done
roster_ini 9 9000 | sed "${sed_fp[@]}" >rogue.ini
run "$bg" roster sign --ca ROGUE --out rogue.pb rogue.ini
for _ in 1 2 3 4 5; do run "$bg" ca crl --dir ROGUE --out rogue-crl.pem; done
head -c 3000 /dev/urandom >garbage.bin
head -c $((1024 * 1024 + 1)) /dev/zero >big.bin
for c in "${cities[@]}"; do
  run cp crl1.pem "gw$c/crl.pem"
  run cp roster1.pb "gw$c/roster.pb"
done

# ------------------------------------------------------------- gateways

for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  if ! wait_for "$READY_S" "$bg" status --dir "gw$c"; then
    bad "gateway $c did not come up within ${READY_S}s" "$(tail -5 "gw$c.log")"
    echo "relay: $pass passed, $fail failed"
    exit 1
  fi
done
ok "three gateways up"
for c in "${cities[@]}"; do
  if "$bg" ping --dir "gw$c" --peer all --timeout-ms "$ANSWER_MS" >/dev/null 2>&1; then
    ok "$c pings both peers"
  else
    bad "$c pings both peers"
  fi
  expect_eq "$c standing at start" "$(status_field "$c" standing)" ok
done

# 1. A new CRL, dropped at Guangzhou only.
run "$bg" ca crl --dir CA --out crl2.pem
t0=$(now)
publish crl2.pem gw440100/crl.pem
if wait_for "$RELAY_S" same_everywhere crl2.pem crl.pem; then
  t1=$(now)
  ok "1. CRL 2 in every city's crl.pem, byte for byte, $(secs "$t0" "$t1") s after the drop at Guangzhou"
  echo "# propagation: a new CRL reached all 3 cities' crl.pem $(secs "$t0" "$t1") s after it reached one"
else
  bad "1. CRL 2 reaches every city within ${RELAY_S}s" "$(grep -hF crl. gw*.log | tail -6)"
fi
all_reloaded() {
  local c
  for c in "${cities[@]}"; do in_log "$c" "crl.reloaded number=2" || return 1; done
}
if wait_for "$EVENT_S" all_reloaded; then
  echo "# propagation: ... and every gateway ran on it $(secs "$t0" "$(now)") s after"
  ok "1. every gateway runs on CRL 2 (crl.reloaded number=2)"
else
  bad "1. every gateway runs on CRL 2" "$(grep -hF crl.reloaded gw*.log)"
fi
for c in 440300 440600; do
  expect_eq "1. $c logs crl.received number=2 exactly once" \
    "$(grep -cE ' crl\.received from=[0-9]{6} number=2 ' "gw$c.log")" 1
done
expect_eq "1. Guangzhou, whose operator dropped it, received it from nobody" \
  "$(log_count 440100 " crl.received ")" 0

# 2. A new roster serial, dropped at Guangzhou only.
t0=$(now)
publish roster2.pb gw440100/roster.pb
if wait_for "$RELAY_S" same_everywhere roster2.pb roster.pb; then
  ok "2. roster 2 in every city's roster.pb, byte for byte, $(secs "$t0" "$(now)") s after the drop"
  echo "# propagation: a new roster reached all 3 cities $(secs "$t0" "$(now)") s after it reached one"
else
  bad "2. roster 2 reaches every city within ${RELAY_S}s" "$(grep -hF roster. gw*.log | tail -6)"
fi
for c in 440300 440600; do
  if wait_for "$EVENT_S" status_is "$c" roster_serial 2; then ok "2. $c runs on roster 2"; else
    bad "2. $c runs on roster 2" "$(status_field "$c" roster_serial)"
  fi
  expect_eq "2. $c logs roster.received serial=2 exactly once" \
    "$(grep -cE ' roster\.received from=[0-9]{6} serial=2 ' "gw$c.log")" 1
done

# 3. Older artefacts offered by a peer (Shenzhen's key): refused, not written.
n_r=$(log_count 440100 "roster.relay_refused from=440300 verdict=older")
n_c=$(log_count 440100 "crl.relay_refused from=440300 verdict=older")
got=$(relay_offer gw440300 440300 440100 --roster roster2.pb --crl crl2.pem \
  --roster-file roster1.pb --crl-file crl1.pem)
expect_line "3. roster 1 and CRL 1 offered to Guangzhou: refused" "$got" \
  "answer ok roster 2 crl 2 +roster +crl roster-refused crl-refused"
expect_file "3. Guangzhou's roster.pb is still roster 2" roster2.pb gw440100/roster.pb
expect_file "3. Guangzhou's crl.pem is still CRL 2" crl2.pem gw440100/crl.pem
expect_eq "3. Guangzhou logs roster.relay_refused verdict=older" \
  "$(log_count 440100 "roster.relay_refused from=440300 verdict=older")" $((n_r + 1))
expect_eq "3. Guangzhou logs crl.relay_refused verdict=older" \
  "$(log_count 440100 "crl.relay_refused from=440300 verdict=older")" $((n_c + 1))
got=$(relay_offer gw440300 440300 440100 --roster roster2.pb --crl crl2.pem --roster-serial 2 \
  --crl-number 2)
expect_eq "3. an offer of the same numbers: nothing handed back" "$got" "answer ok roster 2 crl 2"

# 4. Forgeries and garbage.
n=$(log_count 440100 "verdict=invalid")
got=$(relay_offer gw440300 440300 440100 --roster roster2.pb --crl crl2.pem \
  --roster-file rogue.pb --crl-file rogue-crl.pem --roster-serial 9 --crl-number 5)
expect_line "4. roster 9 and CRL 5 of a same-DN rogue CA: refused" "$got" \
  "answer ok roster 2 crl 2 roster-refused crl-refused"
got=$(relay_offer gw440300 440300 440100 --roster roster2.pb --crl crl2.pem \
  --roster-file garbage.bin --crl-file garbage.bin --roster-serial 9 --crl-number 9)
expect_line "4. garbage as roster and CRL: refused" "$got" "roster-refused crl-refused"
expect_eq "4. Guangzhou logs four refusals verdict=invalid" \
  "$(log_count 440100 "verdict=invalid")" $((n + 4))
if grep -F "roster.relay_refused from=440300 verdict=invalid" gw440100.log | grep -qi "ca\|signature"; then
  ok "4. the rogue roster's refusal names the CA or the signature"
else
  bad "4. the rogue roster's refusal names the CA or the signature" "$(grep -F relay_refused gw440100.log)"
fi
if grep -F "crl.relay_refused from=440300 verdict=invalid" gw440100.log | grep -q "not signed by the federation CA"; then
  ok "4. the rogue CRL's refusal: not signed by the federation CA"
else
  bad "4. the rogue CRL's refusal: not signed by the federation CA" "$(grep -F crl.relay_refused gw440100.log)"
fi
got=$(relay_offer gw440300 440300 440100 --roster roster2.pb --crl crl2.pem --roster-file big.bin)
expect_eq "4. a roster of 1 MiB + 1 byte: the offer is refused whole (bad body)" "$got" \
  "answer refused 101"
expect_file "4. Guangzhou's roster.pb is still roster 2" roster2.pb gw440100/roster.pb
expect_file "4. Guangzhou's crl.pem is still CRL 2" crl2.pem gw440100/crl.pem
expect_eq "4. Guangzhou still runs on roster 2" "$(status_field 440100 roster_serial)" 2

# 5. Shenzhen down while roster 3 goes out; it catches up when it starts again.
kill -TERM "${pid[440300]}"
wait_for 30 bash -c "! kill -0 ${pid[440300]}" || bad "5. Shenzhen stops on SIGTERM"
wait "${pid[440300]}" 2>/dev/null
unset "pid[440300]"
publish roster3.pb gw440100/roster.pb
if wait_for "$RELAY_S" cmp -s roster3.pb gw440600/roster.pb; then
  ok "5. roster 3 reached Foshan while Shenzhen was down"
else
  bad "5. roster 3 reached Foshan while Shenzhen was down" "$(grep -F roster. gw440600.log | tail -3)"
fi
expect_file "5. Shenzhen's directory still holds roster 2" roster2.pb gw440300/roster.pb
start_gw 440300
wait_for "$READY_S" "$bg" status --dir gw440300 || bad "5. Shenzhen restarts" "$(tail -5 gw440300.log)"
if wait_for "$RELAY_S" cmp -s roster3.pb gw440300/roster.pb && wait_for "$EVENT_S" status_is 440300 roster_serial 3; then
  ok "5. Shenzhen caught up by itself: roster 3 in its directory and in use"
else
  bad "5. Shenzhen caught up by itself" "$(grep -F roster. gw440300.log | tail -4)"
fi
if in_log 440300 "roster.received from="; then ok "5. ... and logged roster.received"; else
  bad "5. ... and logged roster.received" "$(grep -F roster. gw440300.log | tail -4)"
fi

# 6. Foshan revoked; the CRL dropped at Guangzhou only.
"$bg" ping --dir gw440300 --peer 440600 --timeout-ms "$ANSWER_MS" >/dev/null 2>&1 ||
  bad "6. before: Shenzhen pings Foshan"
run "$bg" ca revoke --dir CA --city 440600
run "$bg" ca crl --dir CA --out crl-revoke.pem
publish crl-revoke.pem gw440100/crl.pem
if wait_for "$RELAY_S" in_log 440600 " gw.self_revoked "; then
  ok "6. Foshan logs gw.self_revoked"
else
  bad "6. Foshan logs gw.self_revoked" "$(tail -5 gw440600.log)"
fi
if grep -qE "^[^ ]+ error +gw\.self_revoked " gw440600.log; then ok "6. ... at ERROR"; else
  bad "6. ... at ERROR" "$(grep -F gw.self_revoked gw440600.log | head -1)"
fi
expect_file "6. Foshan received the CRL that revokes it" crl-revoke.pem gw440600/crl.pem
expect_eq "6. Foshan's status: standing" "$(status_field 440600 standing)" revoked
"$bg" status --dir gw440600 >status.out 2>&1
if grep -qE "^  standing +revoked" status.out; then ok "6. ... also in the text status"; else
  bad "6. ... also in the text status" "$(cat status.out)"
fi
expect_eq "6. Shenzhen's standing" "$(status_field 440300 standing)" ok
if wait_for "$RELAY_S" cmp -s crl-revoke.pem gw440300/crl.pem; then
  ok "6. the CRL reached Shenzhen"
else
  bad "6. the CRL reached Shenzhen" "$(grep -F crl. gw440300.log | tail -3)"
fi
no_ping() { ! "$bg" ping --dir "gw$1" --peer "$2" --timeout-ms "$SILENT_MS" >/dev/null 2>&1; }
if wait_for "$EVENT_S" no_ping 440300 440600; then ok "6. Shenzhen no longer talks to Foshan"; else
  bad "6. Shenzhen no longer talks to Foshan"
fi
if no_ping 440600 440300; then ok "6. ... nor Foshan to Shenzhen"; else bad "6. ... nor Foshan to Shenzhen"; fi
if "$bg" ping --dir gw440300 --peer 440100 --timeout-ms "$ANSWER_MS" >/dev/null 2>&1; then
  ok "6. Shenzhen and Guangzhou still talk"
else
  bad "6. Shenzhen and Guangzhou still talk"
fi
# Foshan's dialers keep trying: Shenzhen counts the refused handshakes (nng tells no more).
if wait_for "$EVENT_S" in_log 440300 " tls.handshakes_failed "; then
  ok "6. Shenzhen logs $(grep -F tls.handshakes_failed gw440300.log | tail -1 | grep -o 'count=[0-9]* total=[0-9]* auth=[0-9]*')"
else
  bad "6. Shenzhen logs tls.handshakes_failed" "$(tail -3 gw440300.log)"
fi

# Nothing circulates: each CRL was received at most once per city.
for c in "${cities[@]}"; do
  dup=$(grep -oE ' crl\.received from=[0-9]{6} number=[0-9]+' "gw$c.log" | awk '{print $NF}' |
    sort | uniq -d)
  expect_eq "no loop: $c received no CRL number twice" "${dup:-none}" none
done

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
echo "relay: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
