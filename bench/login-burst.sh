#!/usr/bin/env bash
# The login burst (issue 15): N sign-ins at once against palaverd as
# shipped (Release, history and accounts in SQLite), each an Argon2id
# verification of 64 MiB. Prints the latencies and palaverd's resident
# memory before and at its peak (VmHWM): the hash gate (2 at once) must
# keep the peak near boot + 2 x 64 MiB however large N is.
#   bench/login-burst.sh [N ...]      default: 50 200
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
out=${OUT:-bench/results/$(date +%Y%m%d-%H%M%S)-login}
mkdir -p "$out"
[ $# -gt 0 ] || set -- 50 200
for n in "$@"; do
  data=$(mktemp -d)
  echo 'correct horse battery' | build-release/palaverd --config /dev/null --data-dir "$data" \
    --create-admin bench >/dev/null
  # Every request comes from 127.0.0.1: the per-address limits are off, as
  # in bench/run.sh (with them, connections past --max-conns-per-ip, 48,
  # are closed at accept).
  build-release/palaverd --config /dev/null --data-dir "$data" --port 18790 --listen 127.0.0.1 \
    --max-per-ip 0 --log-level warning 2>>"$out/palaverd.log" &
  pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 http://127.0.0.1:18790/ && break; sleep 0.1; done
  before=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
  line=$(node bench/login-burst.js http://127.0.0.1:18790/ bench 'correct horse battery' "$n")
  peak=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status)
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$data"
  echo "${line%\}},\"rss_before_kb\":$before,\"rss_peak_kb\":$peak}" | tee -a "$out/login-burst.jsonl"
done
