# lib.sh - assertions and set-up helpers shared by the process-level tests.
# Sourced; the test sets SUITE (its name in the closing line) first and keeps
# its own pass/fail counters through these functions.
pass=0
fail=0
ok() {
  pass=$((pass + 1))
  echo "ok   $1"
}
bad() {
  fail=$((fail + 1))
  echo "FAIL $1"
  shift
  local l
  for l in "$@"; do echo "     $l"; done
}
# expect_eq NAME GOT WANT
expect_eq() {
  if [[ "$2" == "$3" ]]; then ok "$1: $2"; else bad "$1" "got '$2', expected '$3'"; fi
}
# wait_for SECONDS CMD...: polls CMD (quietly) until it succeeds; 1 on timeout.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  while ! "$@" >/dev/null 2>&1; do
    ((SECONDS >= end)) && return 1
    sleep 0.1
  done
  return 0
}
# A set-up step failed: nothing after it can mean anything.
setup_fail() {
  echo "setup failed: $*"
  tail -20 setup.log 2>/dev/null
  echo "$SUITE: $pass passed, $((fail + 1)) failed"
  exit 1
}
run() { "$@" >>setup.log 2>&1 || setup_fail "$*"; }

# ------------------------------------------------------------ gateways
# For the tests that run real gateways. They keep, per city code, name[] (set
# by the test), port[] and url[] (setup_city) and pid[] (start_gw), in the
# working directory, with bg and fa the baygate and fed_attack binaries.

# stop_procs PID...: SIGTERM, up to 5 s for them to go, then SIGKILL; reaps.
stop_procs() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
# setup_city CITY: a free loopback port and URL for CITY, its gateway directory
# gwCITY (baygate init) with a certificate from the CA in CA/ and the CA's.
setup_city() {
  local c=$1
  port[$c]=$("$fa" freeport) || setup_fail "freeport"
  url[$c]="tls+tcp://127.0.0.1:${port[$c]}"
  run "$bg" init --city "$c" --name "${name[$c]}" --dir "gw$c" --listen "${url[$c]}"
  run "$bg" ca issue --dir CA --csr "gw$c/city.csr" --out "gw$c/city.crt"
  run "$bg" ca cert --dir CA --out "gw$c/ca.crt"
}
# start_gw CITY: CITY's gateway in the background, its log in gwCITY.log.
start_gw() {
  "$bg" serve --dir "gw$1" 2>>"gw$1.log" &
  pid[$1]=$!
}
# kill9_gw CITY: CITY's gateway killed with SIGKILL (a crash) and reaped.
kill9_gw() {
  kill -KILL "${pid[$1]}" 2>/dev/null
  wait "${pid[$1]}" 2>/dev/null
  unset "pid[$1]"
}
# halt_gw CITY: SIGTERM, up to 10 s, then SIGKILL; reaped (stop_procs would wait for
# every gateway).
halt_gw() {
  local p=${pid[$1]}
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  unset "pid[$1]"
}
# fa_call SUBCOMMAND DIR FROM TO [fed_attack options]: fed_attack SUBCOMMAND
# with the key and certificate in DIR, as FROM, against TO's gateway (stderr
# to attack.log); prints its result line, with the exit code if not 0.
fa_call() {
  local sub=$1 dir=$2 from=$3 to=$4
  shift 4
  local out rc
  out=$("$fa" "$sub" --key "$dir/city.key" --cert "$dir/city.crt" --ca CA/ca.crt --crl crl.pem \
    --roster roster.pb --from "$from" --to "$to" --url "${url[$to]}" "$@" 2>>attack.log)
  rc=$?
  ((rc == 0)) || out="$out [fed_attack exit $rc]"
  echo "$out"
}

# The roster source (baygate roster sign), a section at a time, in this order.
# roster_federation SERIAL MAX_MESSAGE_BYTES
roster_federation() {
  cat <<EOT
[federation]
name = Greater Bay Area Credit Federation
serial = $1
max_message_bytes = $2
common_scale = 1,2,3,4
EOT
}
# roster_purpose NAME NEEDS_AUTHORISATION(true|false)
roster_purpose() {
  cat <<EOT

[purpose $1]
needs_authorisation = $2
EOT
}
# roster_members CITY...: each with its gateway's URL and certificate, both lists.
roster_members() {
  local c
  for c in "$@"; do
    cat <<EOT

[member $c]
name = ${name[$c]}
endpoint = ${url[$c]}
certificate = gw$c/city.crt
lists = serious-dishonesty, abnormal-operation
scale = ABCD=A,B,C,D
grade_map = A:1, B:2, C:3, D:4
EOT
  done
}
# roster_permission FROM TO PURPOSES LISTS QUOTA_ITEMS_PER_DAY (min_count_batch 16)
roster_permission() {
  cat <<EOT

[permission $1 -> $2]
purposes = $3
lists = $4
quota_items_per_day = $5
min_count_batch = 16
EOT
}
