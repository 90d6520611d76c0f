#!/usr/bin/env bash
# Load: 200 concurrent keep-alive clients (wrk, 2 threads) scraping /metrics for 60 s, against
# the release binary with 8 and then 64 fake GPUs sampled every second. Reports requests/s,
# latency percentiles, errors (socket errors and non-2xx answers) and RSS before/after.
# Usage: scripts/load-test.sh [seconds] [connections]   (defaults 60 200; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
duration=${1:-60}
connections=${2:-200}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }
build
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid"; wait "$pid"; } 2>/dev/null; rm -rf "$work"' EXIT
for gpus in 8 64; do
  scenario "$work/scenario" "$gpus"
  start_exporter "$work/scenario" --sample.interval=1s --web.max-connections=1024
  before=$(rss_mb)
  wrk -t2 -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/metrics" >"$work/wrk"
  after=$(rss_mb); peak=$(hwm_mb)
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk")
  total=$(awk '/requests in/ {print $1}' "$work/wrk")
  sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk")
  echo "$gpus GPUs, $connections connections, ${duration}s: ${total} requests, ${rps} req/s, p50 ${p50}, p99 ${p99}, socket errors ${sock:-0}, non-2xx ${non2xx:-0}, RSS ${before} MB -> ${after} MB (peak ${peak} MB)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
