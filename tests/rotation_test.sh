#!/usr/bin/env bash
# rotation_test.sh BAYGATE FED_ATTACK WORKDIR - a city's certificate rotated
# without an outage (docs/OPERATIONS.md, "Rotating a city's certificate"), on
# two real gateways on loopback (Guangzhou 440100, Shenzhen 440300):
# Shenzhen makes a new key and CSR (baygate rekey), the CA issues the new
# certificate, a roster pinning it as next_certificate goes to both gateways,
# Shenzhen activates it (baygate rekey --activate: SIGHUP, reloaded without a
# restart), and a roster pinning only the new one follows. All the while
# Guangzhou pings Shenzhen and queries it (membership, and grades with their
# attestations) in loops: not one request may fail. Then a key and certificate
# that do not match are refused with the identity in use kept, and a roster
# that pins neither of Shenzhen's certificates is warned about, in the log
# and in status, after a reload and at start.
#
# FED_ATTACK is only used for free ports. Deadlines are polled and generous
# (the same script runs the ASan build); every process started here is
# stopped on exit.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=rotation
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

READY_S=60
EVENT_S=30
LOOP_MAX=1500 # bound on each loop's requests (about 5 minutes at 200 ms)

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen)
cities=(440100 440300)
loop_pids=()

cleanup() {
  touch loops.stop
  stop_procs "${loop_pids[@]}" "${pid[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# expect_in NAME FILE FIXED-STRING
expect_in() {
  if grep -qF -- "$3" "$2"; then ok "$1"; else
    bad "$1" "'$3' not in $2:" "$(tail -c 600 "$2")"
  fi
}
log_count() { grep -cF -- " $2 " "gw$1.log"; }
log_grew() { (($(log_count "$1" "$2") > $3)); }
# status_field CITY NAME: a string or number field of status --json.
status_field() {
  "$bg" status --dir "gw$1" --json 2>/dev/null | grep -o "\"$2\":[^,}]*" | head -1 |
    cut -d: -f2 | tr -d '"'
}
field_is() { [[ "$(status_field "$1" "$2")" == "$3" ]]; }
# fp FILE: the SHA-256 of a PEM certificate's DER, as rosters and status give it.
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
publish() { cp "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }

# roster_ini SERIAL [SZ-EXTRA-LINE]: both members (certificate = gwCITY/city.crt as it
# is when signed), the extra line in Shenzhen's section; everyone may ask everyone.
roster_ini() {
  roster_federation "$1" 4194304
  roster_purpose supervision false
  roster_members "${cities[@]}" |
    awk -v extra="${2:-}" '{ print } /^certificate = gw440300\// && extra != "" { print extra }'
  roster_permission 440100 440300 supervision "serious-dishonesty, abnormal-operation" 1000000000
  roster_permission 440300 440100 supervision "serious-dishonesty, abnormal-operation" 1000000000
}
# sign_roster SERIAL [SZ-EXTRA-LINE]: rosterSERIAL.pb.
sign_roster() {
  roster_ini "$@" >"roster$1.ini"
  run "$bg" roster sign --ca CA --out "roster$1.pb" "roster$1.ini"
}
# distribute SERIAL CITY...: rosterSERIAL.pb into each directory; waits for each to use it.
distribute() {
  local s=$1 c
  shift
  for c in "$@"; do publish "roster$s.pb" "gw$c/roster.pb"; done
  for c in "$@"; do
    if wait_for "$EVENT_S" field_is "$c" roster_serial "$s"; then
      ok "  $c took roster serial $s"
    else
      bad "  $c took roster serial $s" "$(tail -3 "gw$c.log")"
    fi
  done
}

# ------------------------------------------------------------- PKI, data

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do setup_city "$c"; done
run "$bg" ca crl --dir CA --out crl.pem
sign_roster 1
for c in "${cities[@]}"; do run cp crl.pem roster1.pb "gw$c/" && run mv "gw$c/roster1.pb" "gw$c/roster.pb"; done
run "$bg" gen --city 440100 --count 300 --seed 21 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count 300 --seed 22 --share 440100.csv --share-rate 0.5 \
  --out 440300.csv --quiet
for c in "${cities[@]}"; do run "$bg" import --data-dir "gw$c/data" --city "$c" "$c.csv"; done
awk -F, 'NR > 1 { print $1 }' 440100.csv | tr -d '"' >ask.txt

published() { (($(grep -c " psi.published " "gw$1.log") >= $2)); }
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  if wait_for "$READY_S" "$bg" status --dir "gw$c" && wait_for "$READY_S" published "$c" 3; then
    ok "gateway $c (${name[$c]}) is up and has published its lists"
  else
    bad "gateway $c did not come up" "$(tail -5 "gw$c.log")"
    echo "rotation: $pass passed, $fail failed"
    exit 1
  fi
done
old_fp=$(fp gw440300/city.crt)
expect_eq "Shenzhen's status: its certificate" "$(status_field 440300 cert_sha256)" "$old_fp"
expect_eq "Shenzhen's status: pinned by the roster as" "$(status_field 440300 cert_pinned)" current

# The loops' baselines: what Guangzhou's queries of Shenzhen answer before the rotation.
# (The last CSV column, request_id, is new with every exchange: left out.)
q_member() {
  local out rc=0
  out=$("$bg" query --dir gw440100 --peer 440300 --list serious-dishonesty --purpose supervision \
    --in ask.txt --csv --timeout-ms 15000 2>&1) || rc=$?
  sed 's/,[^,]*$//' <<<"$out"
  return $rc
}
q_grades() {
  "$bg" query --dir gw440100 --peer 440300 --grades --purpose supervision --in ask.txt \
    --csv --timeout-ms 15000 | awk -F, '$2 == "true" && $4 != "" { print $4, $5, $13 }' | sort
}
q_member >member.want 2>&1 || setup_fail "first membership query: $(cat member.want)"
q_grades >grades.want 2>&1 || setup_fail "first graded query"
n_attested=$(grep -c ' true$' grades.want)
if ((n_attested > 10)) && ! grep -qv ' true$' grades.want; then
  ok "baseline: $n_attested graded matches, every one attested"
else
  bad "baseline: graded matches, attested" "$(head -5 grades.want)"
fi

# ------------------------------------------------------------- the loops

# Every ~200 ms until loops.stop (at most LOOP_MAX): one request, one line of outcome.
ping_loop() {
  local i
  for ((i = 0; i < LOOP_MAX; i++)); do
    [[ -e loops.stop ]] && break
    if out=$("$bg" ping --dir gw440100 --peer 440300 --timeout-ms 15000 2>&1); then
      echo "ok" >>ping.log
    else
      echo "FAILED $(date +%T.%N) $out" | tr '\n' ' ' >>ping.log && echo >>ping.log
    fi
    sleep 0.2
  done
}
query_loop() {
  local i kind
  for ((i = 0; i < LOOP_MAX; i++)); do
    [[ -e loops.stop ]] && break
    kind=member
    ((i % 2)) && kind=grades
    if "q_$kind" >"q.$kind.got" 2>&1 && cmp -s "q.$kind.got" "$kind.want"; then
      echo "ok $kind" >>query.log
    else
      echo "FAILED $kind $(date +%T.%N) $(diff "q.$kind.got" "$kind.want" | head -3)" |
        tr '\n' ' ' >>query.log && echo >>query.log
    fi
    sleep 0.2
  done
}
rm -f loops.stop ping.log query.log
ping_loop &
loop_pids+=($!)
query_loop &
loop_pids+=($!)
# let_loops_run: until both loops have made 3 more requests (each phase of the rotation
# sees traffic, however fast the machine).
lines() { if [[ -e $1 ]]; then wc -l <"$1"; else echo 0; fi; }
loops_grew() { (($(lines ping.log) >= $1 + 3 && $(lines query.log) >= $2 + 3)); }
let_loops_run() {
  wait_for 60 loops_grew "$(lines ping.log)" "$(lines query.log)" ||
    bad "the loops keep running" "$(tail -2 ping.log query.log 2>/dev/null)"
}
let_loops_run

# ------------------------------------------------------------- rotation

# 1. Shenzhen: a new key and CSR beside the current ones.
"$bg" rekey --dir gw440300 >rekey.out 2>&1
expect_eq "1. rekey: exit" "$?" 0
expect_eq "1. city.next.key is mode 0600" "$(stat -c %a gw440300/city.next.key)" 600
if openssl req -in gw440300/city.next.csr -noout -subject 2>/dev/null | grep -q 440300; then
  ok "1. city.next.csr is a request for 440300"
else
  bad "1. city.next.csr is a request for 440300" "$(cat rekey.out)"
fi
expect_in "1. rekey says what the operator does next" rekey.out \
  "baygate ca issue --dir CA --csr"
key1=$(sha256sum <gw440300/city.next.key)
"$bg" rekey --dir gw440300 >rekey2.out 2>&1
expect_eq "1. a second rekey refuses to overwrite the pending key: exit" "$?" 2
expect_in "1. ... and says why" rekey2.out "a rotation is pending"
expect_eq "1. ... the pending key is untouched" "$(sha256sum <gw440300/city.next.key)" "$key1"
"$bg" rekey --dir gw440300 --force >rekey3.out 2>&1
expect_eq "1. rekey --force starts again: exit" "$?" 0
if [[ "$(sha256sum <gw440300/city.next.key)" != "$key1" ]] &&
  [[ "$(stat -c %a gw440300/city.next.key)" == 600 ]]; then
  ok "1. ... with a new key, mode 0600"
else
  bad "1. rekey --force makes a new key" "$(cat rekey3.out)"
fi
let_loops_run

# 2. The operator issues city.next.crt; Shenzhen cannot activate it before a roster pins it.
run "$bg" ca issue --dir CA --csr gw440300/city.next.csr --out gw440300/city.next.crt
new_fp=$(fp gw440300/city.next.crt)
"$bg" rekey --dir gw440300 --activate >act0.out 2>&1
expect_eq "2. activate before any roster pins it: refused, exit" "$?" 1
expect_in "2. ... naming the roster" act0.out "does not pin"
expect_eq "2. ... city.crt unchanged" "$(fp gw440300/city.crt)" "$old_fp"

# 3. A roster pinning both of Shenzhen's certificates, to both gateways.
sign_roster 2 "next_certificate = gw440300/city.next.crt"
"$bg" roster show roster2.pb >show2.out 2>&1
expect_in "3. roster show prints the next certificate" show2.out "next cert    sha256 $new_fp"
distribute 2 440100 440300
let_loops_run

# 4. Shenzhen activates: files renamed, the gateway told, the new certificate in use.
n=$(log_count 440300 identity.reloaded)
"$bg" rekey --dir gw440300 --activate >act.out 2>&1
expect_eq "4. rekey --activate: exit" "$?" 0
expect_in "4. ... the gateway was asked to reload" act.out "asked the gateway (pid ${pid[440300]}) to reload"
expect_in "4. ... and uses the new certificate" act.out "the gateway now uses certificate sha256 $new_fp"
expect_eq "4. city.crt is the new certificate" "$(fp gw440300/city.crt)" "$new_fp"
expect_eq "4. city.prev.crt is the old one" "$(fp gw440300/city.prev.crt)" "$old_fp"
expect_eq "4. city.key is mode 0600" "$(stat -c %a gw440300/city.key)" 600
if [[ ! -e gw440300/city.next.key && ! -e gw440300/city.next.crt ]]; then
  ok "4. no next files are left"
else
  bad "4. no next files are left" "$(ls gw440300)"
fi
if wait_for "$EVENT_S" log_grew 440300 identity.reloaded "$n"; then
  ok "4. Shenzhen logs identity.reloaded: $(grep -F ' identity.reloaded ' gw440300.log | tail -1 | cut -c1-120)"
else
  bad "4. Shenzhen logs identity.reloaded" "$(tail -5 gw440300.log)"
fi
expect_in "4. ... with the new fingerprint" gw440300.log "identity.reloaded cert_sha256=$new_fp"
expect_eq "4. Shenzhen's status: the new certificate" "$(status_field 440300 cert_sha256)" "$new_fp"
expect_eq "4. ... pinned as" "$(status_field 440300 cert_pinned)" next
"$bg" ping --dir gw440100 --peer 440300 --timeout-ms 15000 >ping.out 2>&1
expect_eq "4. Guangzhou pings Shenzhen under its new certificate: exit" "$?" 0
let_loops_run

# 5. A roster without the old pin: only the new certificate is Shenzhen's.
sign_roster 3
distribute 3 440100 440300
expect_eq "5. Shenzhen's status: pinned as" "$(status_field 440300 cert_pinned)" current
let_loops_run

# 6. The loops: not one failed request all along.
touch loops.stop
for p in "${loop_pids[@]}"; do wait "$p" 2>/dev/null; done
loop_pids=()
n_ping=$(grep -c '^ok' ping.log)
n_query=$(grep -c '^ok' query.log)
if ((n_ping >= 20)) && ! grep -q FAILED ping.log; then
  ok "6. Guangzhou pinged Shenzhen $n_ping times during the rotation: none failed"
else
  bad "6. pings during the rotation" "$n_ping ok; $(grep FAILED ping.log | head -3)"
fi
if ((n_query >= 10)) && ! grep -q FAILED query.log; then
  ok "6. Guangzhou queried Shenzhen $n_query times (membership, attested grades): none failed"
else
  bad "6. queries during the rotation" "$n_query ok; $(grep FAILED query.log | head -3)"
fi
if ! grep -qE " (identity.refused|identity.not_pinned) " gw440300.log; then
  ok "6. no refusal and no pin warning during the rotation"
else
  bad "6. no refusal and no pin warning during the rotation" \
    "$(grep -E " (identity.refused|identity.not_pinned) " gw440300.log | head -2)"
fi

# The evidence log's heads, signed under the old key and the new, all verify.
n_heads=$(grep -c " audit.head_signed " gw440300.log)
"$bg" audit verify --dir gw440300 >verify.out 2>&1
expect_eq "6. Shenzhen's evidence log verifies after the rotation ($n_heads heads signed): exit" "$?" 0
expect_in "6. ... every signed head" verify.out "every signed head verified"

# 7. A key and certificate that do not match: refused, the identity in use kept.
n=$(log_count 440300 identity.refused)
cp gw440300/city.crt good.crt
publish gw440300/city.prev.crt gw440300/city.crt
kill -HUP "${pid[440300]}"
if wait_for "$EVENT_S" log_grew 440300 identity.refused "$n"; then
  ok "7. a mismatched pair: Shenzhen logs identity.refused"
else
  bad "7. a mismatched pair is refused" "$(tail -3 gw440300.log)"
fi
expect_in "7. ... saying why" gw440300.log "does not match the certificate"
expect_eq "7. ... and keeps the new certificate" "$(status_field 440300 cert_sha256)" "$new_fp"
"$bg" ping --dir gw440100 --peer 440300 --timeout-ms 15000 >ping.out 2>&1
expect_eq "7. ... still answering Guangzhou: exit" "$?" 0
n=$(log_count 440300 identity.reloaded)
publish good.crt gw440300/city.crt
kill -HUP "${pid[440300]}"
sleep 2
expect_eq "7. the right certificate back: nothing to reload" "$(log_count 440300 identity.reloaded)" "$n"

# 8. A roster that pins neither of Shenzhen's certificates: warned about.
sign_roster 4
sed -i 's|^certificate = gw440300/city.crt$|certificate = gw440300/city.prev.crt|' roster4.ini
run "$bg" roster sign --ca CA --out roster4.pb --force roster4.ini
n=$(log_count 440300 identity.not_pinned)
publish roster4.pb gw440300/roster.pb
if wait_for "$EVENT_S" log_grew 440300 identity.not_pinned "$n"; then
  ok "8. a roster not pinning it: Shenzhen warns identity.not_pinned"
else
  bad "8. Shenzhen warns identity.not_pinned" "$(tail -3 gw440300.log)"
fi
expect_in "8. ... after the roster reload" gw440300.log "identity.not_pinned after=roster"
expect_eq "8. status: cert_pinned" "$(status_field 440300 cert_pinned)" ""
"$bg" status --dir gw440300 >status.out 2>&1
expect_in "8. status text warns" status.out "WARNING: the roster pins it neither as current nor as next"
kill -TERM "${pid[440300]}"
wait "${pid[440300]}"
start_gw 440300
if wait_for "$READY_S" "$bg" status --dir gw440300; then
  ok "8. Shenzhen starts with that roster (and warns)"
else
  bad "8. Shenzhen starts with a roster not pinning it" "$(tail -3 gw440300.log)"
fi
expect_in "8. ... warning at start" gw440300.log "identity.not_pinned after=start"

# Stopped first: leaks are reported when a process exits.
for c in "${cities[@]}"; do kill -TERM "${pid[$c]}"; done
for c in "${cities[@]}"; do wait "${pid[$c]}"; done
pid=()
if grep -lE "AddressSanitizer|LeakSanitizer|runtime error:" ./*.out; then
  bad "sanitizers: the commands' output is clean" "$(grep -m3 -hE "AddressSanitizer|LeakSanitizer|runtime error:" ./*.out)"
else
  ok "sanitizers: the commands' output is clean"
fi
for c in "${cities[@]}"; do
  if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log"; then
    bad "sanitizers: gw$c.log is clean" "$(grep -m3 -E "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log")"
  else
    ok "sanitizers: gw$c.log is clean"
  fi
done

echo "# total: $((SECONDS - t_start)) s"
echo "rotation: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
