#!/usr/bin/env bash
# Quick start, second command: install what is missing, then build and run the
# whole test suite twice (plain, and under ASan + UBSan), then the unit tests
# under valgrind. Ends with one summary line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 2

passed=0
failed=0
declare -a lines=()

# Runs ctest in a build dir and adds its counts to the totals.
run_ctest() {
  local label=$1 dir=$2 log
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" 2>&1 | tee "$log"
  local summary total fails
  summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [[ -z $summary ]]; then
    lines+=("$label: ctest did not finish")
    failed=$((failed + 1))
  else
    total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$summary")
    fails=$(sed -E 's/.*, ([0-9]+) tests failed.*/\1/' <<<"$summary")
    passed=$((passed + total - fails))
    failed=$((failed + fails))
    lines+=("$label: $((total - fails)) passed, $fails failed")
  fi
  rm -f "$log"
}

for variant in plain asan; do
  if ./scripts/build.sh "$variant"; then
    dir=build; [[ $variant == asan ]] && dir=build-asan
    if [[ $variant == asan ]]; then
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    fi
    run_ctest "$variant" "$dir"
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    lines+=("$variant: build failed")
    failed=$((failed + 1))
  fi
done

# valgrind over the unit tests of the plain build, without Check's forking so
# valgrind sees the test bodies. Leaks and invalid accesses fail the run.
if command -v valgrind >/dev/null && [[ -x build/tests/test_uscc ]]; then
  vg_pass=0; vg_fail=0
  # test_transport and the process-level tests are left to ASan: nng's threads
  # make them minutes long under valgrind. BG_PSI_SMALL and BG_ATTEST_SMALL shrink
  # the sets and loops of test_psi and test_attest.
  for t in test_uscc test_record test_proto test_csv test_gen test_config test_certs \
           test_roster test_envelope test_oprf test_psi test_attest test_audit test_import; do
    if BG_PSI_SMALL=1 BG_ATTEST_SMALL=1 CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect "build/tests/$t" >/dev/null 2>"build/tests/$t.valgrind.log"; then
      vg_pass=$((vg_pass + 1))
    else
      vg_fail=$((vg_fail + 1))
      echo "valgrind: $t failed:"; cat "build/tests/$t.valgrind.log"
    fi
  done
  passed=$((passed + vg_pass)); failed=$((failed + vg_fail))
  lines+=("valgrind: $vg_pass passed, $vg_fail failed")
fi

echo
echo "=== baygate test summary ==="
printf '%s\n' "${lines[@]}"
echo "tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
