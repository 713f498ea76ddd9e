#!/usr/bin/env bash
# backup_test.sh BAYGATE FED_ATTACK WORKDIR - backups and restores that lose no
# evidence, with three real gateways on loopback (Guangzhou 440100 is backed up and
# restored; Shenzhen 440300 and Foshan 440600 witness its evidence log).
#
#  a. A backup taken while the gateway serves and queries run, then kill -9, then a
#     restore: the gateway serves, its store answers as before, and no witness logs
#     audit.fork_detected over several witness rounds (an honest restore that lost
#     nothing witnessed does not look like a fork).
#  b. A backup, then more exchanges witnessed, then a restore of that backup: the
#     gateway refuses to serve and names the missing leaves; after
#     'restore --accept-loss' it serves and the witnesses log an acknowledged loss,
#     not a fork, and go on cosigning.
#  c. A real fork (the log cut and different leaves appended by hand, no statement)
#     is still audit.fork_detected; so is a shrink without a statement, shown to
#     witnesses that were down when the gateway started.
#
# FED_ATTACK is only used for free ports. Deadlines are polled and generous (the same
# script runs the ASan build); every process started here is stopped on exit.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
fa=$(realpath "$2") || exit 2
work=$3
SUITE=backup
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
t_start=$SECONDS

READY_S=60
WITNESS_S=45 # a witness round seen (intervals are 1 s; the ASan build is slower)
COUNT=300
GZ=440100

declare -A pid=() port=() url=() name=([440100]=Guangzhou [440300]=Shenzhen [440600]=Foshan)
cities=(440100 440300 440600)
peers=(440300 440600)
loop_pid=""

cleanup() { stop_procs ${loop_pid:+"$loop_pid"} "${pid[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ini CITY KEY VALUE: sets an [audit] interval in the city's baygate.ini.
ini() { sed -i "s/^$2 = .*/$2 = $3/" "gw$1/baygate.ini"; }
# count CITY EVENT [FILTER]: lines of EVENT (with FILTER) in the city's log.
count() { grep -F -- " $2 " "gw$1.log" | grep -cF -- "${3:-}"; }
# wsize WITNESS ORIGIN: the size of ORIGIN's last head WITNESS cosigned (0: none).
wsize() {
  local v
  # (the first: the "peers" list comes before any conflict's refused head)
  v=$("$bg" audit witness --dir "gw$1" --json 2>/dev/null | grep -o "\"peer\":\"$2\",\"size\":[0-9]*" | sed -n 1p)
  echo "${v##*:}" | grep -E '^[0-9]+$' || echo 0
}
wsize_above() { (($(wsize "$1" "$2") > $3)); }
grew() { (($(count "$1" "$2" "${4:-}") > $3)); }
up() { wait_for "$READY_S" "$bg" status --dir "gw$1"; }
# ask FROM TO OUT: FROM's gateway asks TO which of FROM's ids are on its list (CSV).
ask() {
  timeout 60 "$bg" query --dir "gw$1" --peer "$2" --list serious-dishonesty --purpose supervision \
    --in "$1.ids" --csv --quiet --timeout-ms 30000 >"$3" 2>>query.err
}
matches() { awk -F, '$2 == "true" && $4 != "" { print $4 }' "$1" | sort; }
# backup_of ARCHIVE: backs up Guangzhou (JSON summary in ARCHIVE.json); its log size.
backup_of() {
  "$bg" backup --dir gw$GZ --out "$1" --json >"$1.json" 2>"$1.err" || return 1
  grep -o '"log_leaves":[0-9]*' "$1.json" | cut -d: -f2
}

# ------------------------------------------------------------- set-up

run "$bg" ca init --dir CA
for c in "${cities[@]}"; do
  setup_city "$c"
  ini "$c" head_interval_s 1
  ini "$c" witness_interval_s 1
done
# (a) needs to know the last head witnesses can hold of Guangzhou: after its first
# head, the next one is 600 s away (the restored copy is set back to 1 s).
ini $GZ head_interval_s 600
run "$bg" ca crl --dir CA --out crl.pem
{
  roster_federation 1 1048576
  roster_purpose supervision false
  roster_members "${cities[@]}"
  for c in "${cities[@]}"; do
    for d in "${cities[@]}"; do
      [[ $c == "$d" ]] || roster_permission "$c" "$d" supervision "serious-dishonesty, abnormal-operation" 100000000
    done
  done
} >roster.ini
run "$bg" roster sign --ca CA --out roster.pb roster.ini
for c in "${cities[@]}"; do run cp crl.pem roster.pb "gw$c/"; done
run "$bg" gen --city 440100 --count "$COUNT" --seed 21 --out 440100.csv --quiet
run "$bg" gen --city 440300 --count "$COUNT" --seed 22 --share 440100.csv --share-rate 0.4 --out 440300.csv --quiet
run "$bg" gen --city 440600 --count "$COUNT" --seed 23 --share 440100.csv --share-rate 0.4 --out 440600.csv --quiet
for c in "${cities[@]}"; do
  run "$bg" import --data-dir "gw$c/data" --city "$c" --strict "$c.csv"
  cut -d, -f1 "$c.csv" | tail -n +2 | tr -d '"' >"$c.ids"
done
published() { (($(grep -c " psi.published " "gw$1.log") >= 3)); }
for c in "${cities[@]}"; do start_gw "$c"; done
for c in "${cities[@]}"; do
  up "$c" && wait_for "$READY_S" published "$c" || setup_fail "gateway $c did not come up: $(tail -3 "gw$c.log")"
done
echo "# set-up: $((SECONDS - t_start)) s"

# ------------------------------------------------ a. backup while serving

ask 440300 $GZ before.csv || setup_fail "Shenzhen's first query of Guangzhou"
ask $GZ all gz.csv || setup_fail "Guangzhou's first query"
for w in "${peers[@]}"; do
  wait_for "$WITNESS_S" wsize_above "$w" $GZ 0 || setup_fail "$w never cosigned Guangzhou's first head"
done
h1=$(wsize 440300 $GZ)
# Queries both ways while the backup runs.
(for _ in 1 2 3; do ask 440300 $GZ loop.csv; ask $GZ all loop2.csv; done) &
loop_pid=$!
mkdir bk && chmod 700 bk
sleep 0.5 # the first queries are under way
a_size=$(backup_of bk/a.tar.gz)
a_rc=$?
kill9_gw $GZ
# A query already sent to the killed gateway's socket may wait out its timeout: end the
# loop and its query now.
kill -KILL $(ps -o pid= --ppid "$loop_pid") "$loop_pid" 2>/dev/null
wait "$loop_pid" 2>/dev/null
loop_pid=""
if ((a_rc == 0)) && [[ $(stat -c %a bk/a.tar.gz) == 600 ]]; then
  ok "a. backup while serving and answering: $(head -c 160 bk/a.tar.gz.json)..., archive mode 0600"
else
  bad "a. backup while serving" "exit $a_rc: $(cat bk/a.tar.gz.err)"
fi
tar -tzf bk/a.tar.gz >a.list
if [[ $(sed -n 2p a.list) == "gw$GZ/backup.manifest" ]] &&
  tar -xzOf bk/a.tar.gz "gw$GZ/backup.manifest" | grep -q "^file 0600 [0-9]* [0-9a-f]\{64\} city.key$"; then
  ok "a. a plain tar reads it; its manifest comes first and lists city.key 0600 with its SHA-256"
else
  bad "a. archive layout" "$(tar -tzvf bk/a.tar.gz | head -4)"
fi
# What the witnesses hold must be in the backup for (a) to be (a): its last head came
# well before the 600 s interval could pass.
for w in "${peers[@]}"; do
  (($(wsize "$w" $GZ) <= a_size)) || setup_fail "$w holds more than backup a ($(wsize "$w" $GZ) > $a_size)"
done

mv gw$GZ gw$GZ.crashed
"$bg" restore --from bk/a.tar.gz --dir gw$GZ >restore.out 2>&1
expect_eq "a. restore exit" "$?" 0
expect_eq "a. the restored key keeps mode 0600" "$(stat -c %a gw$GZ/city.key)" 600
if cmp -s gw$GZ/city.key gw$GZ.crashed/city.key && [[ ! -e gw$GZ/data/credit.db-wal ]]; then
  ok "a. the key is the one backed up; the store came back as one file"
else
  bad "a. restored files" "$(ls -la gw$GZ gw$GZ/data)"
fi
ini $GZ head_interval_s 1
mv gw$GZ.log gw$GZ.log.a # each start of Guangzhou in a log of its own from here
forks0=$(($(count 440300 audit.fork_detected "peer=$GZ") + $(count 440600 audit.fork_detected "peer=$GZ")))
start_gw $GZ
if up $GZ && grew $GZ audit.witnesses_checked 0 "behind=0"; then
  ok "a. the restored gateway serves: $(grep -F ' audit.witnesses_checked ' gw$GZ.log | tail -1 | cut -d' ' -f3-)"
else
  bad "a. restored gateway serves" "$(tail -5 gw$GZ.log)"
fi
wait_for "$READY_S" published $GZ || bad "a. the restored gateway publishes its lists" "$(tail -3 gw$GZ.log)"
# Backup a's latest head is older than its leaves (heads every 600 s, queries during
# the backup); a witness may have cosigned a later head of those same leaves, so the
# restored gateway signs one over every leaf before it serves (else the witness would
# see its older head as a shrink).
a_leaves=$(grep -o 'evidence log: [0-9]* leaves' restore.out | grep -o '[0-9]*')
a_head=$(grep -o 'latest head size [0-9]*' restore.out | grep -o '[0-9]*$')
first_head=$(grep -F ' audit.head_signed ' gw$GZ.log | head -1 | grep -o 'size=[0-9]*')
if ((a_head < a_leaves)) && [[ $first_head == "size=$a_leaves" ]] &&
  (($(grep -n -F ' audit.head_signed ' gw$GZ.log | head -1 | cut -d: -f1) < $(grep -n -F ' gateway.ready ' gw$GZ.log | head -1 | cut -d: -f1))); then
  ok "a. backup a's latest head covers $a_head of its $a_leaves leaves: the restored gateway signs one of all $a_leaves before it serves"
else
  bad "a. a head over every restored leaf before serving" "backup head $a_head, leaves $a_leaves, first signed $first_head: $(grep -E 'head_signed|gateway.ready' gw$GZ.log | head -3)"
fi
# (Shenzhen's first call may meet the connection the killed gateway left: asked again.)
wait_for "$READY_S" ask 440300 $GZ after.csv
if [[ -s before.csv ]] && cmp -s <(matches before.csv) <(matches after.csv); then
  ok "a. the restored store answers Shenzhen as before ($(matches after.csv | wc -l) matches)"
else
  bad "a. restored store" "before $(matches before.csv | wc -l), after $(matches after.csv | wc -l): $(tail -2 query.err)"
fi
ask $GZ all gz2.csv
for w in "${peers[@]}"; do
  if wait_for "$WITNESS_S" wsize_above "$w" $GZ "$a_size"; then
    ok "a. $w cosigns the restored log's new heads (size $(wsize "$w" $GZ), backup $a_size, before it $h1)"
  else
    bad "a. $w cosigns after the restore" "$(grep -F "peer=$GZ" "gw$w.log" | grep audit | tail -3)"
  fi
done
sleep 4 # several witness rounds
forks=$(($(count 440300 audit.fork_detected "peer=$GZ") + $(count 440600 audit.fork_detected "peer=$GZ")))
expect_eq "a. audit.fork_detected of Guangzhou in the witnesses' logs" "$forks" "$forks0"

# ------------------------------------ b. a restore behind its witnesses

b_size=$(backup_of bk/b.tar.gz) || setup_fail "backup b: $(cat bk/b.tar.gz.err)"
ask $GZ all gz3.csv
ask 440300 $GZ sz3.csv
for w in "${peers[@]}"; do
  wait_for "$WITNESS_S" wsize_above "$w" $GZ "$b_size" || setup_fail "$w never cosigned beyond backup b"
done
halt_gw $GZ
w_sz=$(wsize 440300 $GZ)
mv gw$GZ gw$GZ.b
mv gw$GZ.log gw$GZ.log.b
"$bg" restore --from bk/b.tar.gz --dir gw$GZ >restore.out 2>&1 || setup_fail "restore b: $(cat restore.out)"
timeout 120 "$bg" serve --dir gw$GZ >serve.out 2>>gw$GZ.log
rc=$?
if ((rc != 0 && rc != 124)) && grep -q "leaves $b_size\.\.[0-9]* are missing" gw$GZ.log &&
  grep -q "restore --accept-loss" gw$GZ.log && grep -q "Restore a backup taken after" gw$GZ.log; then
  ok "b. the restored gateway refuses to serve (exit $rc): $(grep -o 'the evidence log holds[^.]*\.[^.]*\.' gw$GZ.log | tail -1)"
else
  bad "b. refuses to serve" "exit $rc: $(tail -3 gw$GZ.log)"
fi
want="peer=440300 their_size=$w_sz our_size=$b_size missing=$b_size..$((w_sz - 1))"
if grep -F " audit.behind_witness " gw$GZ.log | grep -qF "$want"; then
  ok "b. it logs what Shenzhen holds: audit.behind_witness $want"
else
  bad "b. audit.behind_witness" "want '$want': $(grep -F audit.behind gw$GZ.log | tail -2)"
fi
if ! "$bg" status --dir gw$GZ >/dev/null 2>&1; then ok "b. nothing answers on its local socket"; else bad "b. not serving" "status answered"; fi

"$bg" restore --accept-loss --dir gw$GZ >accept.out 2>&1
if [[ $? == 0 ]] && grep -q "giving up: 440300 cosigned a head of size $w_sz" accept.out; then
  ok "b. restore --accept-loss names what is given up: $(head -1 accept.out)"
else
  bad "b. accept-loss" "$(cat accept.out)"
fi
forks0=$(($(count 440300 audit.fork_detected "peer=$GZ") + $(count 440600 audit.fork_detected "peer=$GZ")))
mv gw$GZ.log gw$GZ.log.refused
start_gw $GZ
if up $GZ && grep -qF " audit.loss_accepted peer=440300 their_size=$w_sz base=$b_size" gw$GZ.log; then
  ok "b. with the loss accepted it serves: $(grep -F ' audit.loss_accepted ' gw$GZ.log | tail -1 | cut -d' ' -f3-)"
else
  bad "b. serves after accept-loss" "$(tail -4 gw$GZ.log)"
fi
for w in "${peers[@]}"; do
  if wait_for "$WITNESS_S" grew "$w" audit.loss_acknowledged 0 "peer=$GZ"; then
    ok "b. $w: $(grep -F ' audit.loss_acknowledged ' "gw$w.log" | tail -1 | cut -d' ' -f3-)"
  else
    bad "b. $w acknowledges the loss" "$(grep -F "peer=$GZ" "gw$w.log" | grep audit | tail -3)"
  fi
done
ask $GZ all gz4.csv
for w in "${peers[@]}"; do
  wait_for "$WITNESS_S" wsize_above "$w" $GZ "$b_size" ||
    bad "b. $w goes on cosigning" "$(grep -F "peer=$GZ" "gw$w.log" | grep audit | tail -3)"
done
sleep 3
forks=$(($(count 440300 audit.fork_detected "peer=$GZ") + $(count 440600 audit.fork_detected "peer=$GZ")))
expect_eq "b. no audit.fork_detected of Guangzhou after the acknowledged loss" "$forks" "$forks0"
if "$bg" audit verify --dir gw$GZ >verify.out 2>&1; then ok "b. the log verifies: $(head -1 verify.out)"; else bad "b. verify" "$(tail -2 verify.out)"; fi

# ------------------------------------------------------- c. real forks

# offsets FILE: the byte offset of every record of an audit file, then its end.
offsets() {
  local f=$1 off=8 size len
  size=$(stat -c %s "$f")
  while ((off < size)); do
    echo "$off"
    len=$(od -An -tu1 -j"$off" -N4 "$f" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    off=$((off + 4 + len + 32))
  done
  echo "$off"
}
halt_gw $GZ
w=$(wsize 440300 $GZ)
log=gw$GZ/data/audit/leaves.log
mapfile -t offs < <(offsets "$log")
k=$((w - 2))
# Cut to k leaves, then append copies of leaves 0..2: valid records, another history,
# one leaf more than Shenzhen cosigned; the heads the owner signed go with it.
head -c "${offs[$k]}" "$log" >forged.log
tail -c +9 "$log" | head -c $((offs[3] - 8)) >>forged.log
cp forged.log "$log"
rm -f gw$GZ/data/audit/heads.log
forks0=$(count 440300 audit.fork_detected "peer=$GZ")
mv gw$GZ.log gw$GZ.log.accepted
start_gw $GZ
up $GZ || setup_fail "forged gateway did not start: $(tail -3 gw$GZ.log)"
if wait_for "$WITNESS_S" grew 440300 audit.fork_detected "$forks0" "peer=$GZ"; then
  ok "c. another history at Shenzhen's size + 1: $(grep -F " audit.fork_detected peer=$GZ" gw440300.log | tail -1 | grep -o 'verdict=[a-z]*')"
else
  bad "c. fork detected" "$(grep -F "peer=$GZ" gw440300.log | grep audit | tail -3)"
fi
if grep -qF " audit.diverged_from_witness " gw$GZ.log; then
  ok "c. the forged gateway was told at start: $(grep -F ' audit.diverged_from_witness ' gw$GZ.log | tail -1 | cut -d' ' -f3-5)"
else
  bad "c. diverged at start" "$(grep audit.witness gw$GZ.log | tail -3)"
fi

# A shrink without a statement, while the witnesses were down at the start.
halt_gw $GZ
for c in "${peers[@]}"; do halt_gw "$c"; done
w=$(wsize 440300 $GZ)
mapfile -t offs < <(offsets "$log")
head -c "${offs[$((w / 2))]}" "$log" >short.log
cp short.log "$log"
rm -f gw$GZ/data/audit/heads.log
mv gw$GZ.log gw$GZ.log.forked
start_gw $GZ
up $GZ || setup_fail "shrunk gateway did not start: $(tail -3 gw$GZ.log)"
forks0=$(count 440300 audit.fork_detected "peer=$GZ verdict=shrunk")
start_gw 440300
up 440300 || setup_fail "Shenzhen did not come back"
if wait_for "$WITNESS_S" grew 440300 audit.fork_detected "$forks0" "peer=$GZ verdict=shrunk"; then
  ok "c. a shrink without a statement is a fork: $(grep -F " audit.fork_detected peer=$GZ verdict=shrunk" gw440300.log | tail -1 | grep -o 'log shrank[^;]*')"
else
  bad "c. shrink detected" "$(grep -F "peer=$GZ" gw440300.log | grep audit | tail -3)"
fi
if wait_for "$WITNESS_S" grew $GZ audit.behind_witness 0 "peer=440300 their_size=$w our_size=$((w / 2))"; then
  ok "c. and the shrunk gateway says so: $(grep -F ' audit.behind_witness ' gw$GZ.log | tail -1 | cut -d' ' -f3-6)"
else
  bad "c. behind noticed while serving" "want: peer=440300 their_size=$w our_size=$((w / 2))" "$(grep -F ' audit.behind' gw$GZ.log | tail -2)"
fi

echo "# total: $((SECONDS - t_start)) s"
echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
