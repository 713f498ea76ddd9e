#!/usr/bin/env bash
# Runs every libFuzzer harness (fuzz/README.md) for a time budget each, one
# after the other, at the lowest CPU priority, and prints execs and coverage.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]    (default 60, all)
#
# Builds build-fuzz/ with clang (-DBG_FUZZ=ON -DBG_SANITIZE=ON: libFuzzer +
# ASan + UBSan, every library instrumented). Each harness starts from its
# committed corpus (fuzz/corpus/<h>, read only) and grows a working corpus in
# build-fuzz/fuzz-work/<h>; crashes, leaks and out-of-memory inputs land in
# build-fuzz/fuzz-artifacts/<h>/. Keep a crash as fuzz/reproducers/<h>/ once
# fixed (replayed by the tests), or as fuzz/pending/<h>/ until then.
# Not part of scripts/test.sh: timed runs are by hand.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
all=(uscc csv import config certs snapshot psi envelope roster attest audit bundle bodies relay api)
harnesses=("${all[@]}")
(($# > 0)) && harnesses=("$@")

./scripts/deps.sh >/dev/null || exit 2
if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_FUZZ=ON \
    -DBG_SANITIZE=ON >/dev/null || exit 2
fi
nice -n 19 cmake --build build-fuzz -j "$(nproc)" --target fuzz_all >/dev/null || {
  echo "fuzz: build failed (cmake --build build-fuzz --target fuzz_all)" >&2; exit 2; }

# Known bugs waiting in fuzz/pending/ would stop every run at once: let them pass
# (BG_FUZZ_SKIP_KNOWN=0 scripts/fuzz.sh ... to see them).
export BG_FUZZ_SKIP_KNOWN=${BG_FUZZ_SKIP_KNOWN:-1}
if [[ $BG_FUZZ_SKIP_KNOWN == 1 ]]; then
  export LSAN_OPTIONS=suppressions=$PWD/fuzz/known-leaks.supp
fi
# Scratch files (stores, logs, configs) on tmpfs: fsync-heavy harnesses run faster.
[[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]] && export TMPDIR=/dev/shm
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
printf '%-10s %12s %9s %8s %8s %6s  %s\n' harness execs execs/s edges features units result
for h in "${harnesses[@]}"; do
  work=build-fuzz/fuzz-work/$h art=build-fuzz/fuzz-artifacts/$h
  mkdir -p "$work" "$art"
  log=build-fuzz/fuzz-work/$h.log
  # -malloc_limit_mb: a single allocation this large from hostile bytes is a finding
  # (decoders bound what they allocate before they allocate it).
  nice -n 19 "build-fuzz/fuzz/fuzz_$h" -max_total_time="$secs" -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -timeout=25 -print_final_stats=1 -artifact_prefix="$art/" \
    "$work" "fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  edges=$(awk '{print $2}' <<<"$cov") ft=$(awk '{print $4}' <<<"$cov")
  units=$(ls "$work" | wc -l)
  result=ok
  if ((rc != 0)); then
    result="FOUND: $(ls -t "$art" | head -n 1) (log: $log)"
    failed=$((failed + 1))
  fi
  printf '%-10s %12s %9s %8s %8s %6s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "${edges:-?}" \
    "${ft:-?}" "$units" "$result"
done
((failed == 0))
