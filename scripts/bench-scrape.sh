#!/usr/bin/env bash
# Scrape latency and throughput at 8 and 64 fake GPUs, side by side with a floor: a server on
# the same HTTP stack serving a fixed body of the same bytes from memory
# (examples/fixed_body_server.rs), hit by the same client (wrk, 2 threads, 16 keep-alive
# connections). Plain text and gzip; prints requests/s, p50, p99 and the ratio to the floor,
# and the response sizes.
# Usage: scripts/bench-scrape.sh [seconds per run]   (default 10; needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
duration=${1:-10}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }
build
cargo build --release --quiet --example fixed_body_server
work=$(mktemp -d)
pid=; floor=
trap '[ -n "$pid" ] && kill "$pid"; [ -n "$floor" ] && kill "$floor"; wait 2>/dev/null; rm -rf "$work"' EXIT

# run URL [HEADER]: prints "req/s p50 p99"
run() {
  local url=$1 header=${2:-X-Bench: 1}
  wrk -t2 -c16 -d"${duration}s" --latency -H "$header" "$url" >"$work/wrk"
  awk '/^Requests\/sec/ {r=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2} END {print r, p50, p99}' "$work/wrk"
}

for gpus in 8 64; do
  scenario "$work/scenario" "$gpus"
  start_exporter "$work/scenario" --sample.interval=1s
  url="http://127.0.0.1:$port/metrics"
  curl -s "$url" >"$work/plain"
  curl -s -H 'Accept-Encoding: gzip' "$url" >"$work/gz"
  plain_size=$(wc -c <"$work/plain"); gz_size=$(wc -c <"$work/gz")
  echo "$gpus GPUs: text ${plain_size} bytes, gzip ${gz_size} bytes"
  for enc in plain gzip; do
    if [ "$enc" = gzip ]; then hdr='Accept-Encoding: gzip'; body="$work/gz"; else hdr='X-Bench: 1'; body="$work/plain"; fi
    fport=$((port + 1))
    ./target/release/examples/fixed_body_server "$body" "$fport" $([ "$enc" = gzip ] && echo gzip) &
    floor=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$fport/" && break; sleep 0.05; done
    read -r e_rps e_p50 e_p99 < <(run "$url" "$hdr")
    read -r f_rps f_p50 f_p99 < <(run "http://127.0.0.1:$fport/" "$hdr")
    kill "$floor"; wait "$floor" 2>/dev/null || true; floor=
    awk -v g="$gpus" -v enc="$enc" -v er="$e_rps" -v fr="$f_rps" -v e50="$e_p50" -v f50="$f_p50" -v e99="$e_p99" -v f99="$f_p99" \
      'BEGIN { printf "  %s: exporter %s req/s (p50 %s, p99 %s) | floor %s req/s (p50 %s, p99 %s) | floor/exporter throughput %.2fx\n", enc, er, e50, e99, fr, f50, f99, fr / er }'
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
