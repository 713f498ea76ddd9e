#!/usr/bin/env bash
# crash_test.sh BAYGATE WORKDIR - kill -9 and a full disk during the
# gateway's writes (issue 16, "Faults"), with real gateways on loopback made by
# 'baygate demo': Guangzhou 440100 asks, Shenzhen 440300 answers.
#
#  a. kill -9 at many points (a delay that varies over the operation's measured
#     length, several rounds each) during: an import into Shenzhen's store (the
#     importer and the gateway killed together, as a power cut would); Shenzhen
#     publishing its lists after an import; Shenzhen appending evidence under a
#     burst of pings and queries; a large query on the asking side (Guangzhou
#     killed). After every kill, before the restart: PRAGMA integrity_check is
#     ok, 'audit verify' passes, the store holds the whole import or none of it
#     (its data compared with a reference import of the same file into a copy),
#     no import report is left half-made; after the restart no temporary file of
#     an atomic write is left in the gateway's directory, a query gives the
#     answers the store holds, and after a publishing round the generator's
#     ground truth.
#  b. The same operations with the disk full: each fails with an error naming the
#     disk (not the quota, not a generic one), loses nothing committed, leaves the
#     stores and logs intact, and works again once space is back. The asking side
#     never shows results whose evidence it could not write.
#
# The full disk: a tmpfs mounted for each gateway directory (we run as root),
# filled to the last page by a file that is removed to give space back. Where
# mount is not permitted (a container without CAP_SYS_ADMIN), the gateway runs
# with a file size limit instead (prlimit RLIMIT_FSIZE on the running process,
# SIGXFSZ ignored), so its writes past the limit fail with EFBIG ("File too
# large"), which the checks accept in that mode only; the first line says which.
#
# Deadlines are polled and generous (the same script runs the ASan build); every
# process and mount made here is undone on exit. BG_CRASH_ROUNDS (default 8) sets
# the kills per operation, BG_CRASH_DISK=tmpfs|fsize forces a way to fill the disk.
set -uo pipefail
export LC_ALL=C
bg=$(realpath "$1") || exit 2
work=$2
SUITE=crash
# shellcheck source=lib.sh
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/lib.sh" || exit 2
[[ -d $work ]] && for m in "$work"/full*; do umount "$m" 2>/dev/null; done
rm -rf "$work" && mkdir -p "$work" || exit 2
cd "$work" || exit 2
work=$(pwd)
t_start=$SECONDS

READY_S=60
PUBLISH_S=60
QUERY_S=120
ROUNDS=${BG_CRASH_ROUNDS:-8}
GZ=440100
SZ=440300
declare -A pid=() dir=([440100]=demo/440100 [440300]=demo/440300)
mounts=()
burst_pid=""

cleanup() {
  [[ -n $burst_pid ]] && kill_tree "$burst_pid"
  stop_procs "${pid[@]}"
  local m
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- helpers

db() { echo "${dir[$1]}/data/credit.db"; }
# start CITY: its gateway, its log lines through a pipe (a file size limit on the
# gateway must not silence its own log, as the journal would not be).
start() {
  (
    trap '' XFSZ # inherited: a file size limit gives EFBIG, not a dead gateway
    exec "$bg" serve --dir "${dir[$1]}" 2> >(exec cat >>"$1.log")
  ) &
  pid[$1]=$!
}
up() { wait_for "$READY_S" "$bg" status --dir "${dir[$1]}"; }
# published CITY N: the city's log has N psi.published lines since it started.
published() { (($(grep -c " psi.published " "$1.log") >= $2)); }
restart() {
  : >"$1.log.new"
  cat "$1.log" >>"$1.all.log" 2>/dev/null
  mv "$1.log.new" "$1.log"
  start "$1"
  up "$1" && wait_for "$PUBLISH_S" published "$1" 3
}
# sleep_ms N
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# ask FROM TO IDS OUT: FROM's gateway asks TO about IDS (serious-dishonesty, CSV).
ask() {
  timeout "$QUERY_S" "$bg" query --dir "${dir[$1]}" --peer "$2" --list serious-dishonesty \
    --purpose supervision --in "$3" --csv --quiet --timeout-ms 30000 >"$4" 2>"$4.err"
}
matches() { awk -F, '$2 == "true" && $4 != "" { print $4 }' "$1" | sort; }
# store_truth CITY IDS: the ids of IDS the city's store lists as serious-dishonesty
# and in force today (UTC, as the gateway decides).
store_truth() {
  sqlite3 "$(db "$1")" "SELECT uscc FROM list_entries WHERE list = 'serious-dishonesty'
      AND (expires_at IS NULL OR expires_at > date('now'))" | sort | comm -12 <(sort -u "$2") -
}
# data_sum DB: a digest of what the store holds (not its import log or epochs).
data_sum() {
  sqlite3 "$1" "SELECT uscc, name, division FROM enterprises ORDER BY uscc;
    SELECT list, uscc, reason, listed_at, expires_at FROM list_entries ORDER BY list, uscc;
    SELECT uscc, grade, evaluated_at, valid_until FROM evaluations ORDER BY uscc;" | sha256sum |
    cut -c1-16
}
integrity() { [[ $(sqlite3 "$(db "$1")" 'PRAGMA integrity_check' 2>&1) == ok ]]; }
verify_log() { "$bg" audit verify --dir "${dir[$1]}" >"verify.$1.out" 2>&1; }
# strays PATH...: temporary files left behind (import reports, atomic writes).
strays() { find "$@" \( -name '*.tmp' -o -name '*.tmp.*' -o -name '*.tmp-*' \) -print 2>/dev/null; }
# ids_of CSV OUT: the valid ids of a generated file.
ids_of() {
  cut -d, -f1 "$1" | tail -n +2 | tr -d '"' | "$bg" uscc check --file - 2>/dev/null |
    awk '$1 == "OK" { print $2 }' >"$2"
}
# cols_sd CSV: the ids a generated file lists as serious-dishonesty in force today
# (UTC, as the gateway decides), read by sqlite3's own RFC 4180 reader.
cols_sd() {
  sqlite3 :memory: -cmd ".import --csv $1 g" "SELECT uscc FROM g
      WHERE \"serious-dishonesty:listed_at\" != '' AND (\"serious-dishonesty:expires_at\" = ''
      OR \"serious-dishonesty:expires_at\" > date('now'))" | sort -u
}
# after_kill CITY WHAT: the checks every kill is followed by (before the restart): no
# import leaves a temporary report beside its file (nothing would remove it later).
after_kill() {
  local c=$1 what=$2 s
  integrity "$c" || bad "$what: store integrity" "$(sqlite3 "$(db "$c")" 'PRAGMA integrity_check' 2>&1 | head -3)"
  verify_log "$c" || bad "$what: audit verify" "$(head -3 "verify.$c.out")"
  s=$(strays "$work"/*.csv*)
  [[ -z $s ]] || bad "$what: temporary files left" "$s"
}
# restart_clean CITY WHAT: restarts the city's gateway; none of the temporary files a
# kill left in its directory (an atomic write cut short) is there once it is up.
restart_clean() {
  local s
  restart "$1" || setup_fail "$2: the gateway did not come back: $(tail -3 "$1.log")"
  s=$(strays "${dir[$1]}")
  [[ -z $s ]] || bad "$2: temporary files left after the restart" "$s"
}

# -------------------------------------------------------------- set-up

command -v sqlite3 >/dev/null || setup_fail "sqlite3 is not installed (scripts/deps.sh)"
run "$bg" demo --dir demo --count 400
for c in $GZ $SZ; do
  # One head a second, so every round's log has heads to verify against.
  sed -i 's/^head_interval_s = .*/head_interval_s = 1/' "${dir[$c]}/baygate.ini"
  start "$c"
done
for c in $GZ $SZ; do
  restart_ok=0
  up "$c" && wait_for "$PUBLISH_S" published "$c" 3 && restart_ok=1
  ((restart_ok)) || setup_fail "gateway $c did not come up: $(tail -3 "$c.log")"
done
cp demo/data/440100.ids gz.ids
echo "# set-up: $((SECONDS - t_start)) s"

# --------------------------------------------- a1. kill -9 during an import

# A file per round (an import already done is skipped), with bad rows, so the
# import writes a rejects report while it runs; each the lists' and grades' full
# state (--replace all), so the import both removes and adds, and the store (and
# with it every later publication) stays the size of one file.
IMPORT_ROWS=${BG_CRASH_IMPORT_ROWS:-4000}
IMPORT_OPTS=(--replace all --yes)
atomic_ok=0 whole=0 none=0
for r in $(seq "$ROUNDS"); do
  f=imp$r.csv
  run "$bg" gen --city $SZ --count "$IMPORT_ROWS" --seed $((500 + r)) --dirty 0.01 --out "$f" --quiet
  # The reference: the same import into a copy of the store as it is now.
  rm -rf ref && mkdir -p ref/data
  sqlite3 "$(db $SZ)" ".backup ref/data/credit.db" || setup_fail "backup for round $r"
  before=$(data_sum ref/data/credit.db)
  t0=$(now_ms)
  run "$bg" import --data-dir ref/data --city $SZ "${IMPORT_OPTS[@]}" --report ref/rejects.csv "$f"
  t_ref=$(($(now_ms) - t0))
  after=$(data_sum ref/data/credit.db)
  # Kill points from 5 % to 125 % of the import's length (the last ones after it).
  delay=$((t_ref * (5 + 120 * (r - 1) / (ROUNDS > 1 ? ROUNDS - 1 : 1)) / 100))
  "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" "$f" >"imp$r.out" 2>&1 &
  ip=$!
  sleep_ms "$delay"
  kill -KILL "$ip" 2>/dev/null
  kill9_gw $SZ
  wait "$ip" 2>/dev/null
  got=$(data_sum "$(db $SZ)")
  after_kill $SZ "a1 import round $r (kill at ${delay} of ${t_ref} ms)"
  if [[ $got == "$before" ]]; then
    none=$((none + 1)) atomic_ok=$((atomic_ok + 1))
  elif [[ $got == "$after" ]]; then
    whole=$((whole + 1)) atomic_ok=$((atomic_ok + 1))
  else
    bad "a1 import round $r: the store holds part of the import" "kill at $delay of $t_ref ms"
  fi
  restart_clean $SZ "a1 import round $r"
  ids_of "$f" "imp$r.ids"
  head -600 "imp$r.ids" | cat gz.ids - >asked.ids
  if ask $GZ $SZ asked.ids q.csv && [[ $(matches q.csv) == "$(store_truth $SZ asked.ids)" ]]; then
    :
  else
    bad "a1 import round $r: query after the restart" "$(head -3 q.csv.err) $(grep -c true q.csv) rows"
  fi
done
expect_eq "a1. $ROUNDS imports killed at points from 5 % to 125 %: store whole or untouched" \
  "$atomic_ok ($whole whole, $none none)" "$ROUNDS ($whole whole, $none none)"
if ((ROUNDS < 3 || (whole > 0 && none > 0))); then
  ok "a1. kills landed both before and after the commit"
else
  bad "a1. kill points" "$whole whole, $none none: the delays do not span the import"
fi

echo "# a1: $((SECONDS - t_start)) s"

# ------------------------------ a2. kill -9 while the gateway publishes its lists

# import_id CITY: the store's newest committed import.
import_id() { sqlite3 "$(db "$1")" 'SELECT max(id) FROM imports'; }
# published_import CITY ID: the gateway logged all three lists built from import ID.
published_import() { (($(grep " psi.published " "$1.log" | grep -c " import=$2 ") >= 3)); }
# A clean file (no bad rows): its generated data is the ground truth of the answers.
# Shenzhen grades on its own scale (AAA..C, as the demo set it up): the generator's D
# becomes C (the third column; a quoted name may hold commas), so no row is refused
# and the file is the whole truth.
sz_scale() { sed -E 's/^([^,]*,("([^"]|"")*"|[^,"]*)),D,/\1,C,/' "$1"; }
pubfile() {
  run "$bg" gen --city $SZ --count "$IMPORT_ROWS" --seed $((700 + $1)) --out "pub$1.gen" --quiet
  sz_scale "pub$1.gen" >"pub$1.csv"
  run "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" --json "pub$1.csv"
}
# The length of one publication after an import (noticed at a tick, then built).
pubfile 0
t0=$(now_ms)
wait_for "$PUBLISH_S" published_import $SZ "$(import_id $SZ)" || setup_fail "no publication after an import"
t_pub=$(($(now_ms) - t0))
pub_ok=0
for r in $(seq "$ROUNDS"); do
  pubfile "$r"
  delay=$((t_pub * (10 + 110 * (r - 1) / (ROUNDS > 1 ? ROUNDS - 1 : 1)) / 100))
  sleep_ms "$delay"
  kill9_gw $SZ
  after_kill $SZ "a2 publishing round $r (kill at $delay of $t_pub ms)"
  restart_clean $SZ "a2 publishing round $r"
  ids_of "pub$r.csv" "pub$r.all.ids"
  head -1000 "pub$r.all.ids" >"pub$r.ids"
  cols_sd "pub$r.csv" | comm -12 - <(sort -u "pub$r.ids") >truth.ids
  [[ -e pub$r.csv.rejects.csv ]] && grep -q ',rejected,' "pub$r.csv.rejects.csv" &&
    bad "a2 publishing round $r: rows refused, the file is not the whole truth" \
      "$(grep -m2 ',rejected,' "pub$r.csv.rejects.csv")"
  if ! published_import $SZ "$(import_id $SZ)"; then
    bad "a2 publishing round $r: the restarted gateway did not publish the last import"
  elif ask $GZ $SZ "pub$r.ids" q.csv && [[ $(matches q.csv) == "$(cat truth.ids)" ]] &&
    [[ $(matches q.csv) == "$(store_truth $SZ "pub$r.ids")" ]]; then
    pub_ok=$((pub_ok + 1))
  else
    bad "a2 publishing round $r: answers after the restart" \
      "$(head -3 q.csv.err) got $(matches q.csv | wc -l), generator says $(wc -l <truth.ids)"
  fi
done
expect_eq "a2. $ROUNDS publications killed at 10 % to 120 % of ${t_pub} ms: answers = the generator's truth" \
  "$pub_ok" "$ROUNDS"
echo "# a2: $((SECONDS - t_start)) s"

# ---------------------------------- a3. kill -9 while evidence is being appended

# kill_tree PID: PID and every process below it (started here), by their ids.
kill_tree() {
  local c
  kill -STOP "$1" 2>/dev/null # no new child while its own are ended
  for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done
  kill -KILL "$1" 2>/dev/null
}
# A burst against Shenzhen: pings and queries from Guangzhou, back to back.
burst() {
  while :; do
    "$bg" ping --dir "${dir[$GZ]}" --peer $SZ >/dev/null 2>&1
    ask $GZ $SZ gz.ids burst.csv
  done
}
log_ok=0
for r in $(seq "$ROUNDS"); do
  burst 2>/dev/null &
  burst_pid=$!
  sleep_ms $((150 + 1200 * (r - 1) / ROUNDS))
  kill9_gw $SZ
  # The burst's calls to the dead gateway would wait out their timeouts.
  kill_tree "$burst_pid"
  wait "$burst_pid" 2>/dev/null
  burst_pid=""
  after_kill $SZ "a3 log round $r"
  # A kill inside the quota's atomic write (charged per chunk answered) leaves its temp;
  # the kill points rarely hit it, so the first round makes one as it would be left.
  ((r == 1)) && printf '440100 0 1\n' >"${dir[$SZ]}/data/quota.tmp.0123456789ab"
  verify_log $GZ || bad "a3 log round $r: Guangzhou's audit verify" "$(head -3 verify.$GZ.out)"
  restart_clean $SZ "a3 log round $r"
  if ask $GZ $SZ gz.ids q.csv && [[ $(matches q.csv) == "$(store_truth $SZ gz.ids)" ]]; then
    log_ok=$((log_ok + 1))
  else
    bad "a3 log round $r: query after the restart" "$(head -3 q.csv.err)"
  fi
done
size_now=$("$bg" audit head --dir "${dir[$SZ]}" --json 2>/dev/null | grep -o '"log_size":[0-9]*')
expect_eq "a3. $ROUNDS kills during a burst of pings and queries: logs verify, answers right (Shenzhen's log ${size_now#*:} leaves)" \
  "$log_ok" "$ROUNDS"
echo "# a3: $((SECONDS - t_start)) s"

# ----------------------------------- a4. kill -9 the asker during a large query

# The asker's ids: its own and a few thousand of Shenzhen's (several chunks each way).
cat gz.ids imp*.ids | sort -u | head -4000 >large.ids
t0=$(now_ms)
ask $GZ $SZ large.ids large.csv || setup_fail "the first large query: $(head -3 large.csv.err)"
t_q=$(($(now_ms) - t0))
q_ok=0
for r in $(seq "$ROUNDS"); do
  delay=$((t_q * (5 + 90 * (r - 1) / (ROUNDS > 1 ? ROUNDS - 1 : 1)) / 100))
  ask $GZ $SZ large.ids killed.csv &
  qp=$!
  sleep_ms "$delay"
  kill9_gw $GZ
  wait "$qp" 2>/dev/null
  after_kill $GZ "a4 query round $r (kill at $delay of $t_q ms)"
  restart_clean $GZ "a4 query round $r"
  if ask $GZ $SZ large.ids q.csv && [[ $(matches q.csv) == "$(store_truth $SZ large.ids)" ]]; then
    q_ok=$((q_ok + 1))
  else
    bad "a4 query round $r: the query again after the restart" "$(head -3 q.csv.err)"
  fi
done
expect_eq "a4. $ROUNDS queries of $(wc -l <large.ids) ids, the asker killed at 5 % to 95 % of ${t_q} ms: answers right" \
  "$q_ok" "$ROUNDS"
echo "# a4: $((SECONDS - t_start)) s"

# ------------------------------------------------------- b. the disk full

# Each gateway directory onto a file system of its own that can be filled.
disk=${BG_CRASH_DISK:-}
if [[ -z $disk ]]; then
  mkdir -p probe
  if mount -t tmpfs -o size=1m tmpfs probe 2>/dev/null; then
    umount probe
    disk=tmpfs
  else
    disk=fsize
  fi
fi
if [[ $disk == tmpfs ]]; then
  full_re='No space left on device|database or disk is full'
else
  command -v prlimit >/dev/null || setup_fail "neither mount nor prlimit: no way to fill a disk"
  # A write past RLIMIT_FSIZE fails with EFBIG, which SQLite reports as an I/O error.
  full_re='No space left on device|database or disk is full|File too large'
fi
echo "# disk full by: $disk"
for c in $GZ $SZ; do
  halt_gw "$c"
  if [[ $disk == tmpfs ]]; then
    mkdir -p "full$c"
    mount -t tmpfs -o size=256m,mode=0700 tmpfs "full$c" || setup_fail "mount for $c"
    mounts+=("$work/full$c")
    cp -a "${dir[$c]}/." "full$c/" || setup_fail "copy of $c"
    dir[$c]=full$c
  fi
  restart "$c" || setup_fail "gateway $c on its own disk: $(tail -3 "$c.log")"
done
# fill CITY: no room left for the city's gateway (and, tmpfs, for anything in its
# directory); unfill CITY gives it back.
fill() {
  if [[ $disk == tmpfs ]]; then
    dd if=/dev/zero of="${dir[$1]}/fill" bs=1M 2>/dev/null
    dd if=/dev/zero of="${dir[$1]}/fill.small" bs=4k 2>/dev/null
    return 0
  fi
  prlimit --pid "${pid[$1]}" --fsize=1:unlimited
}
unfill() {
  if [[ $disk == tmpfs ]]; then
    rm -f "${dir[$1]}/fill" "${dir[$1]}/fill.small"
  else
    prlimit --pid "${pid[$1]}" --fsize=unlimited:unlimited
  fi
}
# limited CMD...: a command as the full disk finds it (fsize: a limit of its own).
limited() {
  if [[ $disk == tmpfs ]]; then
    "$@"
  else
    (
      trap '' XFSZ
      exec prlimit --fsize=1:unlimited -- "$@"
    )
  fi
}
# names_disk FILE: FILE's error names the disk, and not the quota.
names_disk() { grep -qE "$full_re" "$1" && ! grep -qi 'quota' "$1"; }
# leaves CITY: the leaves its evidence log holds (signed or not yet).
leaves() { "$bg" audit head --dir "${dir[$1]}" --json 2>/dev/null | grep -o '"log_size":[0-9]*' | cut -d: -f2; }

# b1. An import into a full store fails naming the disk; nothing changes; with
# space back the same import goes in whole.
run "$bg" gen --city $SZ --count "$IMPORT_ROWS" --seed 901 --out b1.gen --quiet
sz_scale b1.gen >b1.csv
sum0=$(data_sum "$(db $SZ)")
fill $SZ
limited "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" b1.csv 2>&1 | cat >b1.out
rc=${PIPESTATUS[0]}
if ((rc != 0)) && names_disk b1.out && [[ $(data_sum "$(db $SZ)") == "$sum0" ]] && integrity $SZ &&
  [[ -z $(strays "${dir[$SZ]}" "$work"/b1.csv*) ]]; then
  ok "b1. import on a full disk: exit $rc, $(grep -m1 -E "$full_re" b1.out | cut -c1-150); store unchanged"
else
  bad "b1. import on a full disk" "exit $rc: $(head -3 b1.out)" "strays: $(strays "${dir[$SZ]}" "$work"/b1.csv*)"
fi
unfill $SZ
if "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" b1.csv >b1.again 2>&1 &&
  wait_for "$PUBLISH_S" published_import $SZ "$(import_id $SZ)"; then
  ok "b1. with space back the import goes in and is published (import #$(import_id $SZ))"
else
  bad "b1. import with space back" "$(head -3 b1.again)"
fi

# What an asker may be told of a peer's full disk (the peer names no path of its own).
peer_re="$full_re|full or failing disk|its disk is full or failing|on its disk"
# blames_quota FILE: the refusal of an asker whose quota is used up.
blames_quota() { grep -qE 'has used [0-9]+ of its [0-9]+ items today' "$1"; }
# full_query FROM TO TAG: FROM asks TO until a query fails (a tmpfs filled to its last
# page still takes a few small appends in the pages files already have): every query
# that shows results must have grown the asker's log by its leaves, and the failure
# must name the disk. Prints the failing query's error; 1 if none failed or the
# invariant broke.
full_query() {
  local from=$1 to=$2 tag=$3 n0 n1 i
  for i in $(seq 30); do
    n0=$(leaves "$from")
    ask "$from" "$to" gz.ids "$tag.csv"
    n1=$(leaves "$from")
    if grep -q "^$to,true," "$tag.csv"; then
      if ((n1 <= n0)); then
        echo "query $i showed results, but the asker's log did not grow ($n0 leaves)"
        return 1
      fi
      continue
    fi
    if grep -qE "$peer_re" "$tag.csv" "$tag.csv.err" && ! blames_quota "$tag.csv"; then
      grep -ohE "[^,]*($peer_re)[^,]*" "$tag.csv" "$tag.csv.err" | head -1 | cut -c1-200
      return 0
    fi
    echo "query $i failed without naming the disk: $(grep -v "^peer," "$tag.csv" | head -1 | cut -c1-200) $(head -2 "$tag.csv.err")"
    return 1
  done
  echo "30 queries answered on a full disk"
  return 1
}

# b2. Publishing on a full disk: the gateway says why in its log, an asker is told
# the disk (not "not published yet"), and it publishes by itself once space is back.
run "$bg" gen --city $SZ --count "$IMPORT_ROWS" --seed 902 --out b2.gen --quiet
sz_scale b2.gen >b2.csv
if [[ $disk == tmpfs ]]; then
  # One disk for the importer and the gateway: the import goes in first, with the
  # gateway stopped; it starts on the full disk.
  halt_gw $SZ
  run "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" b2.csv
  b2_id=$(import_id $SZ)
  fill $SZ
  : >$SZ.log
  start $SZ
  up $SZ || setup_fail "Shenzhen on a full disk: $(tail -3 $SZ.log)"
else
  fill $SZ
  run "$bg" import --dir "${dir[$SZ]}" "${IMPORT_OPTS[@]}" b2.csv
  b2_id=$(import_id $SZ)
fi
pub_failed() { grep -E " (psi\.store_failed|psi\.publish_failed) " $SZ.log | grep -qE "$full_re|disk I/O error"; }
if wait_for "$PUBLISH_S" pub_failed; then
  ok "b2. publishing on a full disk is logged: $(grep -m1 -E ' psi\.(store|publish)_failed ' $SZ.log | cut -d' ' -f3- | cut -c1-170)"
else
  bad "b2. publishing on a full disk" "$(grep -E 'error|warn' $SZ.log | tail -3)"
fi
if msg=$(full_query $GZ $SZ b2q); then
  ok "b2. an asker is told: $msg"
else
  bad "b2. asking a gateway that cannot publish" "$msg"
fi
unfill $SZ
ids_of b2.csv b2.ids
cols_sd b2.csv | comm -12 - <(sort -u b2.ids) >b2.truth
if wait_for "$PUBLISH_S" published_import $SZ "$b2_id" && ask $GZ $SZ b2.ids b2.csv.q &&
  [[ $(matches b2.csv.q) == "$(cat b2.truth)" ]]; then
  ok "b2. space back: import #$b2_id published by itself, answers = the generator's truth ($(wc -l <b2.truth))"
else
  bad "b2. publishing once space is back" "$(head -3 b2.csv.q.err) $(tail -3 $SZ.log)"
fi

# b3. The answering side's evidence on a full disk: no answer without its leaves; the
# asker is told the disk; the log and store stay whole; answers again with space back.
n0=$(leaves $SZ)
fill $SZ
if msg=$(full_query $GZ $SZ b3q); then
  ok "b3. answerer's disk full: the asker is told: $msg"
else
  bad "b3. answerer's disk full" "$msg"
fi
unfill $SZ
n1=$(leaves $SZ)
if integrity $SZ && verify_log $SZ; then
  ok "b3. Shenzhen's store and log intact ($n0 -> $n1 leaves)"
else
  bad "b3. Shenzhen's store and log after its disk was full" "$(head -3 verify.$SZ.out)"
fi
if ask $GZ $SZ gz.ids b3.csv && [[ $(matches b3.csv) == "$(store_truth $SZ gz.ids)" ]] &&
  (($(leaves $SZ) > n1)); then
  ok "b3. space back: answered, and logged ($(leaves $SZ) leaves)"
else
  bad "b3. answering once space is back" "$(head -3 b3.csv.err)"
fi

# b4. The asking side's own evidence on a full disk: never results without it.
n0=$(leaves $GZ)
fill $GZ
if msg=$(full_query $GZ $SZ b4q); then
  ok "b4. asker's disk full: no result without its evidence; it says: $msg"
else
  bad "b4. asker's disk full" "$msg"
fi
unfill $GZ
if integrity $GZ && verify_log $GZ; then
  ok "b4. Guangzhou's store and log intact"
else
  bad "b4. Guangzhou's store and log after its disk was full" "$(head -3 verify.$GZ.out)"
fi
n1=$(leaves $GZ)
if ask $GZ $SZ gz.ids b4.csv && [[ $(matches b4.csv) == "$(store_truth $SZ gz.ids)" ]] &&
  (($(leaves $GZ) > n1)); then
  ok "b4. space back: the query answers and its leaves are written ($n1 -> $(leaves $GZ))"
else
  bad "b4. asking once space is back" "$(head -3 b4.csv.err)"
fi
s=$(strays "${dir[$GZ]}" "${dir[$SZ]}" "$work"/*.csv*)
if [[ -z $s ]]; then ok "b. no temporary file left anywhere"; else bad "b. temporary files left" "$s"; fi

echo "# total: $((SECONDS - t_start)) s"
echo "$SUITE: $pass passed, $fail failed"
((fail == 0))
