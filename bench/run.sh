#!/usr/bin/env bash
# The bench harness: builds palaverd in Release, then for every run of the
# chosen scenarios starts palaverd and the references in turn -- Node.js
# `ws` (reference) and uWebSockets (uws) -- interleaved in the same
# session, drives each with palaver-bench, and writes
# bench/results/<time>/{results.jsonl,summary.md,*.svg}. A scenario with
# REPEATS=n runs all its shapes n times, round after round, so every
# server meets the same noise; the report gives min/median/max per shape
# and flags any run below half its shape's median.
#
#   bench/run.sh                 every scenario but smoke
#   bench/run.sh latency slow    just these (file names in bench/scenarios)
#   TARGETS=palaver bench/run.sh palaver only (default: "palaver reference uws")
#   BENCH_REPEATS=3 bench/run.sh fanout   three rounds of a scenario that has fewer
#   PALAVERD_BEFORE=/path/to/old/palaverd TARGETS="before palaver reference" bench/run.sh
#                                another palaverd build ("before"), same flags,
#                                interleaved in the same runs (before/after figures)
#   bench/run.sh tls             palaverd direct ("palaver") and behind HAProxy with TLS
#                                ("tls": the shipped cmake/tls/haproxy.cfg, wss:// from
#                                the bench, HAProxy's CPU sampled too), same runs
#   TARGETS="palaver members" bench/run.sh fanout latency
#                                "members": the same palaverd, every client signed
#                                in (one account's session cookie at each
#                                handshake), against guests in the same runs
#   bench/run.sh receipts        "accounts": every client its own account (1100 seeded
#                                into palaver.db by bench/seed-accounts.sh, a session
#                                cookie each), for read markers and receipts
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets=${TARGETS:-"palaver reference uws"}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v node >/dev/null || need+=(nodejs npm)
command -v sqlite3 >/dev/null || need+=(sqlite3) # bench/seed-accounts.sh
if [ ${#need[@]} -gt 0 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
[ -d bench/reference/node_modules/ws ] && [ -d bench/reference/node_modules/uwebsockets ] ||
  (cd bench/reference && npm ci --no-audit --no-fund --silent)

cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-release -j"$(nproc)" >/dev/null
bench=$root/build-release/bench/palaver-bench

if [ $# -eq 0 ]; then
  set -- $(ls bench/scenarios/*.conf | xargs -n1 basename | sed 's/\.conf$//' | grep -vx smoke)
fi
out=${OUT:-bench/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"
port=18700

wait_port() { # bounded: the server must answer HTTP within 20 s
  for _ in $(seq 1 200); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# "tls": a CA and certificate for 127.0.0.1 (the tree's palaver-cert), once.
tls_dir=$out/tls
proxy_pid=
start_proxy() { # https-port backend-port -> sets proxy_pid
  [ -f "$tls_dir/palaver.pem" ] || cmake/tls/palaver-cert --dir "$tls_dir" 127.0.0.1 >/dev/null
  PALAVER_TLS_TEST=1 PALAVER_CERT=$tls_dir/palaver.pem PALAVER_HTTPS_BIND=127.0.0.1:$1 \
    PALAVER_HTTP_BIND=127.0.0.1:$(($1 + 2000)) PALAVER_BACKEND=127.0.0.1:$2 PALAVER_MAXCONN=8000 \
    PALAVER_CONN_PER_SRC=100000 PALAVER_CONN_RATE_PER_SRC=1000000 \
    haproxy -db -f cmake/tls/haproxy.cfg >>"$out/haproxy.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 1 200); do
    curl -s -o /dev/null --max-time 1 --cacert "$tls_dir/ca.pem" "https://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "run.sh: haproxy did not start" >&2
  exit 1
}

start_target() { # target port extra-args... -> sets pid
  local target=$1 p=$2
  shift 2
  if [ "$target" = tls ]; then # palaverd on p+3000, HAProxy on p
    start_target palaver $((p + 3000)) --trusted-proxies 127.0.0.1 "$@"
    start_proxy "$p" $((p + 3000))
    return
  fi
  case $target in
    palaver | before | members | accounts)
      # Every bench client is 127.0.0.1 and senders go flat out, so the
      # per-address and per-client rate limits are off (their cost, one
      # table lookup per connection and one clock read per message, stays).
      # History is stored as shipped (SQLite, synchronous=FULL), in a fresh
      # database per run; a run may add palaverd flags (after "::").
      rm -rf "$out/data"
      local bin=$root/build-release/palaverd
      if [ "$target" = members ] || [ "$target" = accounts ]; then
        printf 'bench password\n' | "$bin" --config /dev/null --data-dir "$out/data" \
          --create-admin bench >>"$out/palaverd.log" 2>&1
      fi
      [ "$target" = accounts ] && bench/seed-accounts.sh 1100 "$out/data" "$out/cookies.txt"
      [ "$target" = before ] && bin=${PALAVERD_BEFORE:?set PALAVERD_BEFORE to the other palaverd}
      "$bin" --port "$p" --listen 127.0.0.1 --log-level warning \
        --max-per-ip 0 --rate-limit 0 --byte-rate 0 --handshake-rate 0 --config /dev/null --data-dir "$out/data" "$@" \
        2>>"$out/palaverd.log" &
      ;;
    reference)
      PORT=$p node "$root/bench/reference/server.js" >>"$out/reference.log" 2>&1 &
      ;;
    uws)
      PORT=$p node "$root/bench/reference/uws.js" >>"$out/uws.log" 2>&1 &
      ;;
  esac
  pid=$!
  wait_port "$p" "$pid" || { echo "run.sh: $target did not start" >&2; exit 1; }
  cookie=()
  if [ "$target" = members ]; then
    local c
    c=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
      --data '{"name":"bench","password":"bench password"}' "http://127.0.0.1:$p/api/login" |
      sed -n 's/^Set-Cookie: \(palaver_session=[^;]*\).*/\1/p')
    [ -n "$c" ] || { echo "run.sh: members: could not sign in" >&2; exit 1; }
    cookie=(--cookie "$c")
  fi
  [ "$target" = accounts ] && cookie=(--cookies "$out/cookies.txt")
  return 0
}

store_figures() { # label port: palaverd's commit counters, one JSON line
  local m tx msgs
  m=$(curl -s --max-time 2 "http://127.0.0.1:$2/metrics") || return 0
  tx=$(awk '$1 == "palaver_store_transactions_total" {print $2}' <<<"$m")
  msgs=$(awk '$1 == "palaver_messages_in_total" {print $2}' <<<"$m")
  [ -n "$tx" ] && [ -n "$msgs" ] &&
    echo "{\"label\":\"$1\",\"transactions\":$tx,\"messages\":$msgs}" >>"$out/store.jsonl"
  return 0
}

for scenario in "$@"; do
  file=bench/scenarios/$scenario.conf
  [ -f "$file" ] || { echo "run.sh: no scenario $file" >&2; exit 2; }
  unset DESCRIPTION PALAVERD_ARGS RUNS REPEATS SCENARIO_TARGETS
  PALAVERD_ARGS=""
  REPEATS=1
  # shellcheck disable=SC1090
  source "$file"
  run_targets=${TARGETS:-${SCENARIO_TARGETS:-$targets}}
  REPEATS=${BENCH_REPEATS:-$REPEATS} # BENCH_REPEATS=n: n rounds of any scenario
  echo "== $scenario: $DESCRIPTION"
  for rep in $(seq 1 "$REPEATS"); do
  for run in "${RUNS[@]}"; do
    read -r label args <<<"$run"
    extra=()
    if [[ $args == *"::"* ]]; then      # "bench args :: palaverd args" (shell words)
      eval "extra=(${args#*::})"
      args=${args%%::*}
    fi
    for target in $run_targets; do      # interleaved: same run, both servers
      port=$((port + 1))
      # shellcheck disable=SC2086
      start_target "$target" "$port" $PALAVERD_ARGS "${extra[@]}"
      proto=()
      case $target in reference | uws) proto=(--subprotocol sample-protocol) ;; esac
      tag=$scenario/$label/$target
      [ "$REPEATS" -gt 1 ] && tag=$tag/$rep
      url=ws://127.0.0.1:$port/
      case $target in palaver | before | members | accounts | tls) url=ws://127.0.0.1:$port/ws ;; esac
      tls=()
      if [ "$target" = tls ]; then
        url=wss://127.0.0.1:$port/ws
        tls=(--ca "$tls_dir/ca.pem" --proxy-pid "$proxy_pid")
      fi
      # shellcheck disable=SC2086
      "$bench" --url "$url" $args "${proto[@]}" "${cookie[@]}" "${tls[@]}" --broker-pid "$pid" \
        --label "$tag" --json "$results" | sed 's/^/   /' || true
      case $target in palaver | before | members | accounts) store_figures "$tag" "$port" ;; esac
      case $target in tls) store_figures "$tag" $((port + 3000)) ;; esac
      if [ -n "$proxy_pid" ]; then
        kill -USR1 "$proxy_pid" 2>/dev/null || true
        wait "$proxy_pid" 2>/dev/null || true
        proxy_pid=
      fi
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
  done
  done
done

rm -rf "$out/data" "$tls_dir" "$out/cookies.txt" # the accounts target's session cookies: never kept
node bench/report.js "$results" "$out"
(cd "$out" && for g in *.gp; do [ -f "$g" ] && gnuplot "$g"; done) || true
echo "results: $out/summary.md"
