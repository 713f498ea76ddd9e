#!/usr/bin/env bash
# ops_status_test.sh BAYGATE FED_ATTACK WORKDIR - what an operator asks of a
# running gateway, with two real gateways (Guangzhou 440100, Shenzhen 440300)
# on loopback:
#  - `status` shows each published list with the entries that were imported,
#    its epoch and key generation (a new one after psi-rotate), the status list,
#    the items a peer asked today against its quota, the evidence log with its
#    last signed head and the peer's cosignature, and the certificate's and
#    CRL's number and expiry, with a WARNING when the CRL is inside
#    crl_warn_hours;
#  - a CRL file that does not load keeps the CRL in force and is tried again
#    every tick: fixed in place with nothing its stat shows (as a transient
#    EMFILE leaves it), it is taken without a new signal;
#  - a gateway killed with -9 leaves its socket behind: status, ping, query,
#    lookup and psi-rotate say at once that it is not running (exit 2);
#  - SIGTERM while a call waits on that dead peer: the gateway stops within
#    3 s (not at the call's timeout) and its log says what it waited for;
#  - an answer that never left (Guangzhou's requests expire after 100 ms, and
#    40,000 ids take longer than that to evaluate): its evidence says
#    answer-not-sent, Shenzhen's quota is not charged for it, and Shenzhen's
#    output marks every id of that peer as an error, none as "not matched".
#
# FED_ATTACK is only used for free ports. Readiness is polled against
# deadlines; the two time bounds are behaviour bounds (the old behaviour was
# 30 s and 10-20 s), far above what a loaded ASan build needs.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=ops_status
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2

READY_S=60
EVENT_S=60
BOUND_MS=3000 # "at once" / "within ~2 s", with room for a loaded machine

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen)
cities=(440100 440300)
cleanup() { stop_procs "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# expect_in NAME FILE FIXED-STRING
expect_in() {
  if grep -qF -- "$3" "$2"; then ok "$1"; else
    bad "$1" "'$3' not in $2:" "$(head -c 800 "$2")"
  fi
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }
# st CITY: status --json of CITY's gateway into st.json.
st() { "$bg" status --dir "gw$1" --json >st.json 2>st.err; }
# field REGEX: the first match of REGEX in st.json.
field() { grep -oE -- "$1" st.json | head -1; }
num() { field "$1" | grep -oE '[0-9]+$'; }

# ------------------------------------------------------------- set-up

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do
  setup_city "$c"
  # Heads signed and witnessed every second, so the evidence section fills soon.
  sed -i 's/^head_interval_s = .*/head_interval_s = 1/; s/^witness_interval_s = .*/witness_interval_s = 1/' \
    "gw$c/baygate.ini"
done
# Shenzhen wants a year's warning of the CRL: its 7-day CRL is inside that.
sed -i 's/^crl_warn_hours = .*/crl_warn_hours = 8760/' gw440300/baygate.ini
# Shenzhen takes answers of at most 1 MiB while the roster allows 4 MiB messages.
sed -i 's/^recv_max_bytes = .*/recv_max_bytes = 1048576/' gw440300/baygate.ini
grep -q '^recv_max_bytes = 1048576$' gw440300/baygate.ini || setup_fail "no recv_max_bytes in baygate.ini"
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 4194304
  roster_purpose supervision false
  roster_members "${cities[@]}"
  roster_permission 440300 440100 supervision "serious-dishonesty, abnormal-operation" 100000
  roster_permission 440100 440300 supervision "serious-dishonesty, abnormal-operation" 7000
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done

# Guangzhou's data: 40 enterprises, 12 graded (current), 7 on serious-dishonesty
# (open-ended), none on abnormal-operation.
run "$bg" gen --city 440100 --count 40 --seed 5 --dirty 0 --out base.csv --quiet
since=$(date -u -d '-30 days' +%F)
until=$(date -u -d '+300 days' +%F)
{
  echo "uscc,name,grade,evaluated_at,valid_until,serious-dishonesty:reason,serious-dishonesty:listed_at"
  tail -n +2 base.csv | cut -d, -f1 | awk -v s="$since" -v u="$until" '{
    g = NR <= 12 ? "A," s "," u : ",,"
    l = NR <= 7 ? "court ruling," s : ","
    print $1 ",Enterprise " NR "," g "," l }'
} >gz.csv
run "$bg" import --dir gw440100 --strict gz.csv
tail -n +2 base.csv | cut -d, -f1 >ids.txt
n_ids=$(wc -l <ids.txt)

published() { (($(grep -c " psi.published " "gw$1.log") >= $2)); }
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  wait_for "$READY_S" "$bg" status --dir "gw$c" || setup_fail "gateway $c did not come up: $(tail -5 "gw$c.log")"
done
wait_for "$EVENT_S" published 440100 3 || setup_fail "Guangzhou did not publish: $(tail -5 gw440100.log)"

# ------------------------------------------------------------- status

# Shenzhen asks Guangzhou about all 40 ids: 40 items charged to Shenzhen today.
"$bg" query --dir gw440300 --peer 440100 --list serious-dishonesty --purpose supervision \
  --in ids.txt --csv --quiet >q.csv 2>q.err
expect_eq "setup: Shenzhen's query of Guangzhou answers (exit)" "$?" 0
expect_eq "setup: ... with the 7 listed enterprises" "$(awk -F, '$2 == "true" && $4 != ""' q.csv | wc -l)" 7
# recv_max_bytes below the roster's max_message_bytes: said at start, and only there.
expect_eq "setup: Shenzhen warns that its recv_max_bytes is below max_message_bytes" \
  "$(grep -c ' config.recv_max_small recv_max_bytes=1048576 max_message_bytes=4194304 ' gw440300.log)" 1
expect_eq "setup: ... Guangzhou (recv_max_bytes = max_message_bytes) does not" \
  "$(grep -c ' config.recv_max_small ' gw440100.log)" 0

st 440100
expect_eq "1. status --json exits 0" "$?" 0
expect_eq "1. serious-dishonesty: entries = the 7 imported" \
  "$(num '"list":"serious-dishonesty","generation":[0-9]+,"epoch":[0-9]+,"entries":[0-9]+')" 7
expect_eq "1. grades: entries = the 12 current evaluations" \
  "$(num '"list":"grades","generation":[0-9]+,"epoch":[0-9]+,"entries":[0-9]+')" 12
expect_eq "1. abnormal-operation: published, 0 entries" \
  "$(num '"list":"abnormal-operation","generation":[0-9]+,"epoch":[0-9]+,"entries":[0-9]+')" 0
expect_eq "1. serious-dishonesty: epoch 1 of generation 1" \
  "$(field '"list":"serious-dishonesty","generation":[0-9]+,"epoch":[0-9]+' | cut -d, -f2-)" \
  '"generation":1,"epoch":1'
t=$(num '"list":"serious-dishonesty",[^}]*"published_ms":[0-9]+')
if [[ -n $t ]] && ((t > 0 && t <= $(ms_now))); then ok "1. published_ms is a past time ($t)"; else
  bad "1. published_ms is a past time" "$(field '"lists":\[[^]]*')"
fi
if (($(num '"status_list":\{"number":[0-9]+' || echo 0) >= 1)); then ok "1. status list number >= 1"; else
  bad "1. status list number >= 1" "$(field '"status_list":\{[^}]*')"
fi
expect_eq "1. quota: Shenzhen asked $n_ids items today, of 100000" \
  "$(field '"quotas":\[\{"peer":"440300","used_today":[0-9]+,"quota_per_day":[0-9]+')" \
  "\"quotas\":[{\"peer\":\"440300\",\"used_today\":$n_ids,\"quota_per_day\":100000"
days=$(num '"certificate":\{"not_after":"[^"]+","days_left":[0-9]+')
if [[ -n $days ]] && ((days > 300 && days <= 366)); then ok "1. certificate: $days days left"; else
  bad "1. certificate days left (a 365-day certificate)" "$(field '"certificate":\{[^}]*')"
fi
expect_in "1. certificate: no warning (30 days)" st.json '"warn_days":30,"warning":false}'
crl_days=$(num '"crl":\{"next_update":"[^"]+","days_left":[0-9]+')
if [[ -n $crl_days ]] && ((crl_days >= 6 && crl_days <= 7)); then ok "1. CRL: $crl_days days left"; else
  bad "1. CRL days left (a 7-day CRL)" "$(field '"crl":\{[^}]*')"
fi
expect_in "1. CRL: no warning at crl_warn_hours 72" st.json '"warn_hours":72,"warning":false}'
expect_in "1. the old fields stay" st.json '"crl_next_update_ms":'

# The evidence log: the query's exchanges logged, a head signed and cosigned by Shenzhen.
cosigned() {
  st 440100 && (($(num '"witnesses":\[\{"witness":"440300","size":[0-9]+' || echo 0) > 0))
}
if wait_for "$EVENT_S" cosigned; then ok "1. Shenzhen's cosignature of Guangzhou's log shows"; else
  bad "1. Shenzhen's cosignature shows" "$(field '"evidence":.*')"
fi
size=$(num '"evidence":\{"size":[0-9]+')
head=$(num '"head":\{"size":[0-9]+')
wsize=$(num '"witness":"440300","size":[0-9]+')
size=${size:-0} head=${head:-0} wsize=${wsize:-0}
if ((size >= head && head >= wsize && wsize > 0)); then
  ok "1. evidence: log $size >= signed head $head >= cosigned $wsize > 0"
else
  bad "1. evidence sizes" "$(field '"evidence":.*')"
fi
if field '"evidence":\{"size":[0-9]+,"root":"[0-9a-f]{64}"' >/dev/null &&
  (($(num '"head":\{[^}]*"time_ms":[0-9]+' || echo 0) > 0)) &&
  (($(num '"witness":"440300",[^}]*"cosigned_ms":[0-9]+' || echo 0) > 0)); then
  ok "1. evidence: a 64-hex root, head and cosignature times"
else
  bad "1. evidence: root and times" "$(field '"evidence":.*')"
fi

# Text: the same, and Shenzhen's WARNING for the CRL inside its year's warn period.
"$bg" status --dir gw440100 >st.txt 2>&1
expect_in "1. text: the list line" st.txt "serious-dishonesty   generation 1  epoch 1  entries 7"
expect_in "1. text: the quota line" st.txt "440300 $n_ids of 100000"
expect_in "1. text: the witness line" st.txt "440300 size $wsize at "
if grep -q "WARNING" st.txt; then bad "1. text: no WARNING at Guangzhou" "$(cat st.txt)"; else
  ok "1. text: no WARNING at Guangzhou"
fi
"$bg" status --dir gw440300 >st.txt 2>&1
expect_in "1. Shenzhen (crl_warn_hours 8760): text WARNING for the CRL" st.txt \
  "WARNING      the CRL expires soon (warned under crl_warn_hours = 8760)"
st 440300
expect_in "1. Shenzhen: --json crl warning true" st.json '"warn_hours":8760,"warning":true}'
"$bg" status --help >help.txt
expect_in "1. status --help names the new fields" help.txt "OPRF key generation, epoch, entries"

# A new key generation shows as generation 2; --wait returns once it is published.
"$bg" psi-rotate --dir gw440100 --list serious-dishonesty --wait --timeout-ms 60000 >rot.out 2>rot.err
expect_eq "1. psi-rotate --wait exits 0" "$?" 0
expect_in "1. ... and says what it published" rot.out \
  "serious-dishonesty published: generation 2, epoch "
expect_eq "1. ... nothing on stderr off a terminal" "$(wc -c <rot.err)" 0
gen2() { st 440100 && grep -q '"list":"serious-dishonesty","generation":2,' st.json; }
if gen2; then ok "1. after psi-rotate --wait: serious-dishonesty at generation 2"; else
  bad "1. after psi-rotate --wait: generation 2" "$(field '"lists":\[[^]]*')"
fi
"$bg" psi-rotate --dir gw440100 --list serious-dishonesty --wait --timeout-ms 0 >/dev/null 2>rot.err
expect_eq "1. psi-rotate --timeout-ms 0: usage error (exit 2)" "$?" 2

# ------------------------------------------------------------- the CRL in force

st 440100
expect_in "1. status --json: crl_number 1" st.json '"crl_number":1,'
"$bg" status --dir gw440100 >st.txt 2>&1
expect_in "1. text: the CRL line names its number" st.txt "CRL          #1, next update"
run "$bg" ca crl --dir CA --out crl2.pem
head -c "$(stat -c %s crl2.pem)" /dev/zero | tr '\0' x >half.pem
# in_place FILE [TO]: FILE's bytes into Guangzhou's TO (crl.pem), same inode, the
# mtime pinned, while Guangzhou is stopped (so it sees no state in between).
in_place() {
  local to=gw440100/${2:-crl.pem}
  kill -STOP "${pid[440100]}"
  cat "$1" >"$to"
  touch -d @1700000000 "$to"
  kill -CONT "${pid[440100]}"
}
log_n() { grep -c "$1" gw440100.log; }
log_grew() { (($(log_n "$1") > $2)); }
n_failed=$(log_n crl.reload_failed)
in_place half.pem
if wait_for "$EVENT_S" log_grew crl.reload_failed "$n_failed"; then
  ok "1. a CRL file that does not parse: crl.reload_failed"
else
  bad "1. a CRL file that does not parse: crl.reload_failed" "$(tail -3 gw440100.log)"
fi
st 440100
expect_in "1. meanwhile the CRL in force stays (number 1)" st.json '"crl_number":1,'
in_place crl2.pem
crl2() { st 440100 && grep -q '"crl_number":2,' st.json; }
if wait_for "$EVENT_S" crl2; then ok "1. the file fixed in place: CRL 2 in force, no signal sent"; else
  bad "1. the file fixed in place: CRL 2 in force, no signal sent" "$(tail -3 gw440100.log)"
fi
expect_in "1. the log says so" gw440100.log "crl.reloaded number=2"
n=$(log_n crl.reload_failed)
if ((n - n_failed == 1)); then ok "1. the failure logged once, not once per try"; else
  bad "1. the failure logged once, not once per try" "$((n - n_failed)) lines"
fi

# ------------------------------------------------------------- the roster in use

# The same for the roster: a half-written roster.pb is refused, the one in use
# stays, and the file fixed in place is taken with no signal (its stat unchanged).
sed 's/^serial = 1$/serial = 2/' roster.ini >roster2.ini
run "$bg" roster sign --ca CA --out roster2.pb roster2.ini
head -c "$(stat -c %s roster2.pb)" /dev/zero | tr '\0' x >half.pb
n_refused=$(log_n roster.refused)
in_place half.pb roster.pb
if wait_for "$EVENT_S" log_grew roster.refused "$n_refused"; then
  ok "1. a roster file that does not parse: roster.refused"
else
  bad "1. a roster file that does not parse: roster.refused" "$(tail -3 gw440100.log)"
fi
st 440100
expect_in "1. meanwhile the roster in use stays (serial 1)" st.json '"roster_serial":1,'
in_place roster2.pb roster.pb
roster2() { st 440100 && grep -q '"roster_serial":2,' st.json; }
if wait_for "$EVENT_S" roster2; then ok "1. the roster fixed in place: serial 2 in use, no signal sent"; else
  bad "1. the roster fixed in place: serial 2 in use, no signal sent" "$(tail -3 gw440100.log)"
fi
n=$(log_n roster.refused)
if ((n - n_refused == 1)); then ok "1. the roster's failure logged once, not once per try"; else
  bad "1. the roster's failure logged once, not once per try" "$((n - n_refused)) lines"
fi

# ------------------------------------------------------------- kill -9

kill -KILL "${pid[440300]}"
wait "${pid[440300]}" 2>/dev/null
unset "pid[440300]"
if [[ -S gw440300/local.ipc ]]; then ok "2. kill -9 leaves the socket behind"; else
  bad "2. kill -9 leaves the socket behind" "$(ls -l gw440300)"
fi
# timed NAME CMD...: CMD must exit 2 within BOUND_MS saying "not running".
timed() {
  local title=$1 t0 rc ms
  shift
  t0=$(ms_now)
  timeout 60 "$@" >out.txt 2>&1
  rc=$?
  ms=$(($(ms_now) - t0))
  if ((rc == 2 && ms < BOUND_MS)) && grep -q "the 440300 gateway in gw440300 is not running (stale socket" out.txt; then
    ok "2. $title: exit 2 in $ms ms, not running (stale socket)"
  else
    bad "2. $title: exit 2 within $BOUND_MS ms saying not running" "exit $rc after $ms ms: $(cat out.txt)"
  fi
}
timed "status" "$bg" status --dir gw440300
timed "status --json" "$bg" status --dir gw440300 --json
timed "ping" "$bg" ping --dir gw440300 --peer 440100
timed "query" "$bg" query --dir gw440300 --peer 440100 --list serious-dishonesty --purpose supervision --in ids.txt
timed "lookup" "$bg" lookup --dir gw440300 --purpose supervision "$(head -1 ids.txt)"
timed "psi-rotate" "$bg" psi-rotate --dir gw440300 --list grades

# ------------------------------------------------------------- SIGTERM

# A ping waits on the dead peer (up to 20 s), and so does the witness thread's
# round (request_ms, 10 s); a second for both to be in their calls.
"$bg" ping --dir gw440100 --peer 440300 --timeout-ms 20000 >ping.out 2>&1 &
ping_pid=$!
sleep 1
t0=$(ms_now)
kill -TERM "${pid[440100]}"
wait_for 30 bash -c "! kill -0 ${pid[440100]}"
ms=$(($(ms_now) - t0))
wait "${pid[440100]}"
rc=$?
unset "pid[440100]"
if ((rc == 0 && ms < BOUND_MS)); then ok "3. SIGTERM with the peer down: exit 0 in $ms ms"; else
  bad "3. SIGTERM with the peer down: exit 0 within $BOUND_MS ms" "exit $rc after $ms ms" "$(tail -5 gw440100.log)"
fi
expect_in "3. the log says what the stop waited for" gw440100.log \
  "gateway.stopping signal=SIGTERM waiting_for=peer-call:440300"
if grep -qE " gateway.stopped dir=gw440100 elapsed_ms=[0-9]+" gw440100.log; then
  ok "3. the log says how long the stop took: $(grep -oE 'elapsed_ms=[0-9]+' gw440100.log | tail -1)"
else
  bad "3. gateway.stopped with elapsed_ms" "$(tail -3 gw440100.log)"
fi
if wait_for 5 bash -c "! kill -0 $ping_pid"; then
  wait "$ping_pid"
  ok "3. the waiting ping returned at the stop (exit $?): $(head -c 200 ping.out)"
else
  kill "$ping_pid"
  bad "3. the waiting ping returned at the stop" "still running"
fi

# ------------------------------------------------------------- an answer never sent

sed -i 's/^request_ms = .*/request_ms = 100/' gw440100/baygate.ini
grep -q '^request_ms = 100$' gw440100/baygate.ini || bad "4. request_ms = 100 set" "$(cat gw440100/baygate.ini)"
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  wait_for "$READY_S" "$bg" status --dir "gw$c" || bad "4. gateway $c restarts" "$(tail -5 "gw$c.log")"
done
used_of() { st 440100 && num '"quotas":\[\{"peer":"440300","used_today":[0-9]+'; }
used0=$(used_of)
run "$bg" gen --city 440100 --count 40000 --seed 9 --dirty 0 --out big.csv --quiet
tail -n +2 big.csv | cut -d, -f1 >big.txt
"$bg" query --dir gw440300 --peer 440100 --list serious-dishonesty --purpose supervision \
  --in big.txt --csv --quiet --timeout-ms 5000 >bigq.csv 2>bigq.err
expect_eq "4. the query says a peer failed (exit 1)" "$?" 1
if wait_for "$EVENT_S" grep -q " answer.not_sent " gw440100.log; then
  ok "4. Guangzhou logs answer.not_sent: $(grep -m1 -o 'answer.not_sent .*' gw440100.log | head -c 160)"
else
  bad "4. Guangzhou logs answer.not_sent" "$(grep -E 'psi\.|answer' gw440100.log | tail -4)"
fi
"$bg" audit find --dir gw440100 --peer 440300 >find.txt 2>&1
expect_in "4. Guangzhou's evidence has an answer-not-sent leaf" find.txt "answer-not-sent"
expect_eq "4. Shenzhen's quota at Guangzhou not charged for it" "$(used_of)" "$used0"
expect_eq "4. Shenzhen's output: one row per id, every one an error for 440100" \
  "$(tail -n +2 bigq.csv | grep -c 'error')" "$(wc -l <big.txt)"
expect_eq "4. ... none says matched or not matched" "$(tail -n +2 bigq.csv | grep -c ',matched,\|,not matched,')" 0
stop_procs "${pid[@]}"
pid=()

for c in "${cities[@]}"; do
  if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log"; then
    bad "sanitizers: gw$c.log is clean" "$(grep -m3 -E "AddressSanitizer|LeakSanitizer|runtime error:" "gw$c.log")"
  else
    ok "sanitizers: gw$c.log is clean"
  fi
done

echo "$SUITE: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
