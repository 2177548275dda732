#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# SECONDS (default 15), starting from the seed corpus in tests/fuzz/corpus.
# New inputs go to build-fuzz/corpus/<target> (the tree stays clean);
# crashes to build-fuzz/artifacts/. Prints the executions of each run.
#   tests/fuzz/run.sh            # about a minute in all (what .ci/run does)
#   tests/fuzz/run.sh 3600       # an hour per target
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
targets=(proto utf8 wsmsg config nickname api proxy upload dialect)
CC=clang cmake -S . -B build-fuzz -DPV_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null
mkdir -p build-fuzz/artifacts
total=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/fuzz_$t.log"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  if ! "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="build-fuzz/artifacts/$t-" -max_len=4096 \
      "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $t FAILED (input saved under build-fuzz/artifacts/)"
    exit 1
  fi
  n=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  echo "fuzz: $t ran ${n:-0} inputs in ${secs}s, coverage ${cov:-?} edges, no crash"
  total=$((total + ${n:-0}))
done
echo "fuzz: $total executions in all, no crash"
