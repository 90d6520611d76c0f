#!/usr/bin/env bash
# Verify gpu-carbon-exporter on a machine with an NVIDIA GPU, without network access.
#
# usage: scripts/verify-on-gpu.sh [options] EXPORTER_BINARY [-- EXTRA_EXPORTER_FLAGS...]
#
#   --gpu N             NVML index of the GPU to load and measure (default 0)
#   --phases N          load/idle phases (default 5)
#   --load-seconds S    matmul load per phase (default 6)
#   --idle-seconds S    idle time per phase (default 6)
#   --check-duration D  how long `check` samples (default 10s)
#
# Needs python3 (or $PYTHON) with torch (CUDA) and pynvml (pip install nvidia-ml-py).
# It runs `EXPORTER_BINARY ... check`, then the exporter at --sample.interval=200ms with a state
# file in a temporary directory, and a pulsed matmul load on the GPU while it reads NVML's own
# energy counter and power through pynvml. It prints:
#   - the exporter's energy against NVML's counter delta and against pynvml power integrated
#     by the script over the same time;
#   - what the exporter attributed to the load (gpu_workload_* of this user on that GPU);
#   - the exporter's cost: sample duration on real NVML, CPU seconds, resident memory.
# Exit: 0 all measured and `check` passed; 1 `check` found problems or a prerequisite is
# missing (named); 2 bad usage. Everything it started is stopped and its files removed.
set -euo pipefail

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() {
  echo "verify-on-gpu: error: $*" >&2
  exit 1
}

gpu=0 phases=5 load_s=6 idle_s=6 check_duration=10s
while [[ $# -gt 0 ]]; do
  case $1 in
    --gpu) gpu=${2:?--gpu needs a value}; shift 2 ;;
    --phases) phases=${2:?--phases needs a value}; shift 2 ;;
    --load-seconds) load_s=${2:?--load-seconds needs a value}; shift 2 ;;
    --idle-seconds) idle_s=${2:?--idle-seconds needs a value}; shift 2 ;;
    --check-duration) check_duration=${2:?--check-duration needs a value}; shift 2 ;;
    -h | --help) usage ;;
    --) usage ;;
    -*) echo "verify-on-gpu: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || usage
bin=$1
shift
extra=()
if [[ $# -gt 0 ]]; then
  [[ $1 == -- ]] || usage
  shift
  extra=("$@")
fi
for n in "$gpu" "$phases"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "verify-on-gpu: not a whole number: $n" >&2; exit 2; }
done
for s in "$load_s" "$idle_s"; do
  [[ $s =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "verify-on-gpu: not a number of seconds: $s" >&2; exit 2; }
done
[[ -f $bin && -x $bin ]] || { echo "verify-on-gpu: $bin is not an executable file (give the path of a built gpu-carbon-exporter)" >&2; exit 2; }

python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "$python not found: install python3 or set PYTHON"
"$python" -c 'import pynvml' 2>/dev/null \
  || die "pynvml is not importable by $python (pip install nvidia-ml-py)"
"$python" -c 'import torch' 2>/dev/null \
  || die "torch is not importable by $python (install PyTorch with CUDA)"
"$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
  || die "torch sees no CUDA GPU (driver, CUDA_VISIBLE_DEVICES, or a CPU-only PyTorch)"
count=$("$python" -c 'import pynvml; pynvml.nvmlInit(); print(pynvml.nvmlDeviceGetCount())' 2>/dev/null) \
  || die "NVML could not be initialised through pynvml (is the NVIDIA driver loaded?)"
((gpu < count)) || die "--gpu $gpu: NVML sees $count GPU(s)"

tmp=$(mktemp -d)
exporter_pid=
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
  if [[ -n $exporter_pid ]] && kill -0 "$exporter_pid" 2>/dev/null; then
    kill -TERM "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
flags=(--sample.interval=200ms "--state.file=$tmp/state.json" "--web.listen-address=127.0.0.1:$port")
flags+=("${extra[@]}")

echo "== gpu-carbon-exporter check (${check_duration})"
check_rc=0
"$bin" "${flags[@]}" check "--check.duration=$check_duration" || check_rc=$?
((check_rc <= 1)) || die "check could not run (exit $check_rc)"

echo
echo "== exporter at 200 ms on 127.0.0.1:$port"
"$bin" "${flags[@]}" 2>"$tmp/exporter.log" &
exporter_pid=$!
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$exporter_pid" 2>/dev/null; then
    tail -n 20 "$tmp/exporter.log" >&2
    die "the exporter exited at start-up (its log is above)"
  fi
  if "$python" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/-/ready', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.2
done
((ready)) || die "the exporter was not ready within 30 s"

cat >"$tmp/measure.py" <<'PY'
"""Pulsed load on one GPU while reading NVML and the exporter; prints the comparison."""
import getpass, os, re, statistics, sys, threading, time, urllib.request

import pynvml

gpu = int(os.environ["VERIFY_GPU"])
phases = int(os.environ["VERIFY_PHASES"])
load_s = float(os.environ["VERIFY_LOAD_S"])
idle_s = float(os.environ["VERIFY_IDLE_S"])
url = os.environ["VERIFY_URL"]

pynvml.nvmlInit()
handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
text = lambda v: v.decode() if isinstance(v, bytes) else v
name, uuid = text(pynvml.nvmlDeviceGetName(handle)), text(pynvml.nvmlDeviceGetUUID(handle))
# torch numbers devices its own way: make the NVML GPU torch's only one.
os.environ["CUDA_VISIBLE_DEVICES"] = uuid
import torch  # noqa: E402 (after CUDA_VISIBLE_DEVICES)

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape():
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    out = []
    for line in body.splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def value(series, name, **labels):
    found = [v for n, l, v in series if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


def counter_j():
    return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0


# pynvml power every 100 ms, integrated by trapezoid; exporter scrapes every second.
power, durations, stop = [], [], threading.Event()


def read_power():
    while not stop.is_set():
        power.append((time.monotonic(), pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0))
        time.sleep(0.1)


def read_exporter():
    while not stop.is_set():
        d = value(scrape(), "gpu_carbon_exporter_sample_duration_seconds")
        if d is not None:
            durations.append(d)
        stop.wait(1.0)


threads = [threading.Thread(target=f, daemon=True) for f in (read_power, read_exporter)]
for t in threads:
    t.start()
time.sleep(1.0)

a = torch.randn(8192, 8192, device="cuda")
b = torch.randn(8192, 8192, device="cuda")
torch.cuda.synchronize()
e0, s0, t0 = counter_j(), scrape(), time.monotonic()
for phase in range(phases):
    end = time.monotonic() + load_s
    while time.monotonic() < end:
        for _ in range(8):
            a @ b
        torch.cuda.synchronize()
    time.sleep(idle_s)
# The exporter's last sample may be 200 ms old: let it take one after the end.
time.sleep(0.3)
e1, s1, t1 = counter_j(), scrape(), time.monotonic()
stop.set()
for t in threads:
    t.join()

pts = [(t, w) for t, w in power if t0 <= t <= t1]
integrated = sum((w0 + w1) / 2 * (u1 - u0) for (u0, w0), (u1, w1) in zip(pts, pts[1:]))
if pts:  # the first and last 100 ms at the nearest reading
    integrated += pts[0][1] * (pts[0][0] - t0) + pts[-1][1] * (t1 - pts[-1][0])
label = {"gpu": str(gpu)}
kwh = lambda s: value(s, "gpu_energy_kwh_total", **label) or 0.0
exporter = (kwh(s1) - kwh(s0)) * 3.6e6
counter = e1 - e0
pct = lambda x: f"{(x / counter - 1) * 100:+.2f} %" if counter > 0 else "n/a"

print(f"GPU {gpu} {name} {uuid}: {phases} x ({load_s:g} s matmul, {idle_s:g} s idle) in {t1 - t0:.1f} s")
print(f"  NVML energy counter delta       {counter:12.1f} J")
print(f"  exporter gpu_energy_kwh_total   {exporter:12.1f} J   {pct(exporter)} against the counter")
print("    (the exporter's figure runs from its sample before the first scrape to its sample before")
print("    the last: up to 200 ms off at each end, 0.7 % of a 60 s run at constant power)")
print(f"  pynvml power integrated (10 Hz) {integrated:12.1f} J   {pct(integrated)} against the counter")
ratio = value(s1, "gpu_energy_discrepancy_ratio", **label)
if ratio is not None:
    print(f"  exporter's discrepancy ratio (5 min window): {ratio * 100:+.2f} %")

user = getpass.getuser()
print(f"Attribution on GPU {gpu} (gpu_workload_energy_kwh_total, this load runs as user {user}, pid {os.getpid()}):")
before = {tuple(sorted(l.items())): v for n, l, v in s0 if n == "gpu_workload_energy_kwh_total"}
rows = [(l, v - before.get(tuple(sorted(l.items())), 0.0)) for n, l, v in s1
        if n == "gpu_workload_energy_kwh_total" and l.get("gpu") == str(gpu)]
for l, d in sorted(rows, key=lambda r: -r[1]):
    who = ",".join(f"{k}={v}" for k, v in sorted(l.items()) if k not in ("gpu", "uuid") and v)
    mine = "  <- this load" if l.get("user") == user else ""
    share = f"{d * 3.6e6 / exporter * 100:5.1f} %" if exporter > 0 else "n/a"
    print(f"  {who or '(no labels)':40} {d * 3.6e6:12.1f} J  {share} of the GPU{mine}")
if not rows:
    print("  no workload series on this GPU (attribution off, or the processes were not listed)")
unattributed = value(s1, "gpu_unattributed_energy_kwh_total", **label)
if unattributed is not None:
    d = unattributed - (value(s0, "gpu_unattributed_energy_kwh_total", **label) or 0.0)
    print(f"  unattributed                              {d * 3.6e6:12.1f} J")

print("Exporter cost on this NVML:")
if durations:
    ms = sorted(d * 1000 for d in durations)
    print(f"  sample duration (all GPUs): median {statistics.median(ms):.2f} ms, max {ms[-1]:.2f} ms over {len(ms)} scrapes")
cpu = (value(s1, "process_cpu_seconds_total") or 0.0) - (value(s0, "process_cpu_seconds_total") or 0.0)
print(f"  CPU {cpu:.2f} s over {t1 - t0:.1f} s ({cpu / (t1 - t0) * 100:.2f} % of one core)")
rss = value(s1, "process_resident_memory_bytes")
if rss is not None:
    print(f"  resident memory {rss / 2**20:.1f} MiB")
PY

echo
echo "== pulsed load on GPU $gpu: $phases x (${load_s} s load, ${idle_s} s idle)"
VERIFY_GPU=$gpu VERIFY_PHASES=$phases VERIFY_LOAD_S=$load_s VERIFY_IDLE_S=$idle_s \
  VERIFY_URL="http://127.0.0.1:$port/metrics" "$python" "$tmp/measure.py" \
  || die "the measurement failed (output above)"

echo
if ((check_rc == 0)); then
  echo "check: all well"
else
  echo "check: found problems (listed above)"
fi
exit "$check_rc"
