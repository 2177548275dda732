#!/usr/bin/env bash
# Static analysis, then palaver built three ways with every test run in
# each, then a short fuzz run:
#   tests/lint.sh  cppcheck and clang-tidy, clean
#   build/         RelWithDebInfo, warnings are errors
#   build-asan/    AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#   build-tsan/    ThreadSanitizer
#   build-fuzz/    libFuzzer targets, 15 s each (tests/fuzz/run.sh)
# Integration tests start the real palaverd of that build; any sanitizer
# report makes palaverd exit non-zero, which the tests assert on.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
passed=0
failed=0

run() {
  local dir=$1; shift
  echo "=== $dir: configure and build"
  cmake -S . -B "$dir" -DPV_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "=== $dir: test"
  local log rc=0
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure --timeout 600) 2>&1 | tee "$log" || rc=$?
  local p f
  p=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | awk '{print $6 - $1}' | tail -1)
  f=$(grep -oE '[0-9]+ tests failed out of' "$log" | awk '{print $1}' | tail -1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-1}))
  rm -f "$log"
  return $rc
}

step() { # name command...: one pass/fail entry in the total
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); return 1; fi
}

status=0
step lint tests/lint.sh || status=1
run build || status=1
run build-asan -DPV_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug || status=1
run build-tsan -DPV_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug || status=1
step fuzz tests/fuzz/run.sh 15 || status=1
echo "all builds: $passed passed, $failed failed"
exit $status
