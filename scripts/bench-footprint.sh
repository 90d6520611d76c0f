#!/usr/bin/env bash
# Footprint of the release binary sampling 8 fake GPUs at 1 Hz through the real NVML code path
# (the fake libnvidia-ml.so), scraped every 5 s like a busy Prometheus: resident memory and CPU
# per second of wall time, plus HTTP scrape latency. Numbers go in the README's Benchmarks.
# Usage: scripts/bench-footprint.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60}
cargo build --release --quiet --bin gpu-carbon-exporter -p gpu-carbon-exporter
cargo build --release --quiet -p fake-nvml
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
{
  echo "epoch = $(date +%s.%N)"
  for i in 0 1 2 3 4 5 6 7; do
    printf '[gpu]\nuuid = GPU-bench000-0000-0000-0000-00000000000%d\npower = square:120:650:30\nutil = square:0:95:30\n' "$i"
  done
} >"$work/scenario"
port=$((20000 + RANDOM % 20000))
FAKE_NVML_SCENARIO="$work/scenario" ./target/release/gpu-carbon-exporter \
  --nvml.library-path="$PWD/target/release/libfake_nvml.so" \
  --web.listen-address="127.0.0.1:$port" --sample.interval=1s --log.level=warn &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.05; done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
cpu0=$(cpu); t0=$(date +%s.%N); rss0=$(rss_kb)
lat="$work/latency"
end=$(( $(date +%s) + duration ))
while [ "$(date +%s)" -lt "$end" ]; do
  curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >>"$lat"
  sleep 5
done
cpu1=$(cpu); t1=$(date +%s.%N); rss1=$(rss_kb)
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
size=$(curl -s "http://127.0.0.1:$port/metrics" | wc -c)
awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v r0="$rss0" -v r1="$rss1" \
    -v hwm="$hwm" -v size="$size" -v n="$(wc -l <"$lat")" -v lat="$(sort -n "$lat" | awk '{s+=$1} END {printf "%.2f", s/NR*1000}')" \
  'BEGIN {
     printf "8 GPUs, 1 Hz sampling, %.0f s, %d scrapes\n", t1 - t0, n
     printf "CPU: %.3f%% of one core\n", (c1 - c0) / hz / (t1 - t0) * 100
     printf "RSS: %.1f MB at start, %.1f MB at end, peak %.1f MB\n", r0 / 1024, r1 / 1024, hwm / 1024
     printf "scrape over HTTP (curl, mean): %s ms, %d bytes\n", lat, size
   }'
