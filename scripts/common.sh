# Shared by the bench, load and soak scripts: build the release binary and the fake NVML
# library, write a scenario with N fake GPUs, start the exporter on a free port, and read its
# resident memory, CPU time and open file descriptors from /proc.
# shellcheck shell=bash

build() {
  cargo build --release --quiet --bin gpu-carbon-exporter -p gpu-carbon-exporter
  cargo build --release --quiet -p fake-nvml
}

# scenario FILE N: N GPUs with a 30 s square wave between 120 W and 650 W.
scenario() {
  local file=$1 n=$2 i
  echo "epoch = $(date +%s.%N)" >"$file"
  for ((i = 0; i < n; i++)); do
    printf '[gpu]\nuuid = GPU-bench000-0000-0000-0000-%012d\npower = square:120:650:30\nutil = square:0:95:30\n' "$i" >>"$file"
  done
}

# start_exporter SCENARIO ARGS...: sets $pid and $port.
start_exporter() {
  local file=$1
  shift
  port=$((20000 + RANDOM % 20000))
  FAKE_NVML_SCENARIO="$file" ./target/release/gpu-carbon-exporter \
    --nvml.library-path="$PWD/target/release/libfake_nvml.so" \
    --web.listen-address="127.0.0.1:$port" --log.level=warn "$@" &
  pid=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && return 0; sleep 0.05; done
  echo "exporter did not become ready" >&2
  return 1
}

rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
hwm_mb() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
