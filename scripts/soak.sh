#!/usr/bin/env bash
# Soak: "one hour compressed". 8 fake GPUs sampled every 50 ms (72,000 ticks, as many as 20 h
# at 1 s) for the given minutes (default 3, i.e. 3,600 ticks = one hour of 1 s sampling), with
# the state file flushed every second and a scrape every second. RSS and open file descriptors
# are recorded every 10 s and must stay flat: the script fails if the last RSS exceeds the
# first after warm-up by more than 1 MB, or the fd count changes.
# Usage: scripts/soak.sh [minutes]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
minutes=${1:-3}
build
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && { kill "$pid"; wait "$pid"; } 2>/dev/null; rm -rf "$work"' EXIT
scenario "$work/scenario" 8
start_exporter "$work/scenario" --sample.interval=50ms --state.file="$work/state.json" --state.flush-interval=1s
end=$(( $(date +%s) + minutes * 60 ))
next_report=0
first_rss= first_fds= max_rss=0
printf '%8s %8s %5s %12s\n' elapsed rss_mb fds scrapes
start=$(date +%s); scrapes=0
while [ "$(date +%s)" -lt "$end" ]; do
  curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; scrapes=$((scrapes + 1))
  now=$(( $(date +%s) - start ))
  if [ "$now" -ge "$next_report" ]; then
    r=$(rss_mb); f=$(fds)
    printf '%8s %8s %5s %12s\n' "${now}s" "$r" "$f" "$scrapes"
    if [ "$now" -ge 20 ] && [ -z "$first_rss" ]; then first_rss=$r; first_fds=$f; fi
    max_rss=$(awk -v a="$max_rss" -v b="$r" 'BEGIN {print (b > a ? b : a)}')
    next_report=$((next_report + 10))
  fi
  sleep 1
done
last_rss=$(rss_mb); last_fds=$(fds)
ticks=$(awk -v m="$minutes" 'BEGIN {print m * 60 * 20}')
echo "soak: ${minutes} min, ~${ticks} ticks of 8 GPUs, ${scrapes} scrapes; RSS after warm-up ${first_rss} MB, at end ${last_rss} MB, max ${max_rss} MB; fds ${first_fds} -> ${last_fds}"
awk -v a="$first_rss" -v b="$last_rss" 'BEGIN {exit !(b - a <= 1.0)}' || { echo "RSS grew" >&2; exit 1; }
[ "$first_fds" = "$last_fds" ] || { echo "fd count changed" >&2; exit 1; }
