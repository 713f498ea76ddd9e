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
