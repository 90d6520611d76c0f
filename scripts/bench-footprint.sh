#!/usr/bin/env bash
# Footprint of the release binary sampling 8 fake GPUs at 1 Hz through the real NVML code path
# (the fake libnvidia-ml.so), scraped every 5 s like a busy Prometheus: resident memory and CPU
# per second of wall time, plus HTTP scrape latency. Numbers go in docs/benchmarks.md.
# Usage: scripts/bench-footprint.sh [seconds] [exporter flags...]   (default 60 s)
#   e.g. scripts/bench-footprint.sh 120 --state.file=/var/tmp/gce-bench/state.json
#   (with a ledger it also prints the bytes it wrote per second)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
. scripts/common.sh
build
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid"; wait "$pid"; } 2>/dev/null; rm -rf "$work"' EXIT
scenario "$work/scenario" 8
start_exporter "$work/scenario" --sample.interval=1s "${@:2}"
ticks=$(getconf CLK_TCK)
ledger_bytes() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^gpu_carbon_exporter_state_written_bytes_total/ {print $2}'; }
ledger0=$(ledger_bytes)
cpu0=$(cpu_ticks); t0=$(date +%s.%N); rss0=$(rss_mb)
lat="$work/latency"
end=$(( $(date +%s) + duration ))
while [ "$(date +%s)" -lt "$end" ]; do
  curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >>"$lat"
  sleep 5
done
cpu1=$(cpu_ticks); t1=$(date +%s.%N); rss1=$(rss_mb)
hwm=$(hwm_mb)
body=$(curl -s "http://127.0.0.1:$port/metrics")
size=$(printf '%s\n' "$body" | wc -c)
ledger1=$(ledger_bytes)
awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v r0="$rss0" -v r1="$rss1" \
    -v hwm="$hwm" -v size="$size" -v l0="$ledger0" -v l1="$ledger1" -v n="$(wc -l <"$lat")" -v lat="$(sort -n "$lat" | awk '{s+=$1} END {printf "%.2f", s/NR*1000}')" \
  'BEGIN {
     printf "8 GPUs, 1 Hz sampling, %.0f s, %d scrapes\n", t1 - t0, n
     printf "CPU: %.3f%% of one core\n", (c1 - c0) / hz / (t1 - t0) * 100
     printf "RSS: %.1f MB at start, %.1f MB at end, peak %.1f MB\n", r0, r1, hwm
     printf "scrape over HTTP (curl, mean): %s ms, %d bytes\n", lat, size
     if (l1 != "") printf "ledger: %.0f bytes written per second\n", (l1 - l0) / (t1 - t0)
   }'
