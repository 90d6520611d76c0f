#!/usr/bin/env python3
"""How far Σ increase(workloads + unattributed) falls from increase(device) when a workload
starts inside the window, with a given Prometheus binary and flags.

A fake-NVML GPU draws a constant 300 W; alice runs from the start, bob from 70 s (both 50 % SM,
so each gets half once bob is there). Prometheus scrapes every 5 s. After 160 s the ratio
sum(increase(parts[W])) / increase(device[W]) − 1 is read every second for W = 45 s and 60 s,
and summarised separately for windows that contain bob's start and windows that don't.

Needs `cargo test --no-run` (or any `cargo test`) first, for target/debug/gpu-carbon-exporter
and target/debug/deps/libfake_nvml.so. Usage:

    scripts/measure-increase-bias.py /usr/bin/prometheus
    scripts/measure-increase-bias.py prometheus3 --enable-feature=created-timestamp-zero-ingestion
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRAPE_S = 5
BOB_START_S = 70
RUN_S = 160


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host(d):
    """A procfs and passwd with alice (pid 601) and bob (pid 602)."""
    os.makedirs(f"{d}/root/etc")
    with open(f"{d}/root/etc/passwd", "w") as f:
        f.write("alice:x:1001:100::/:/bin/sh\nbob:x:1002:100::/:/bin/sh\n")
    for pid, uid in ((601, 1001), (602, 1002)):
        os.makedirs(f"{d}/proc/{pid}")
        with open(f"{d}/proc/{pid}/status", "w") as f:
            f.write(f"Name:\tpython\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        with open(f"{d}/proc/{pid}/cgroup", "w") as f:
            f.write(f"0::/user.slice/user-{uid}.slice/session-1.scope\n")


def query(port, path, **params):
    url = f"http://127.0.0.1:{port}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)["data"]["result"]


def summary(xs):
    if not xs:
        return "n=0"
    mean = sum(xs) / len(xs)
    return f"n={len(xs)} mean {100 * mean:+.2f} %, from {100 * min(xs):+.2f} to {100 * max(xs):+.2f} %"


def main():
    prometheus, flags = sys.argv[1], sys.argv[2:]
    d = tempfile.mkdtemp(prefix="gce-bias-")
    procs = []
    try:
        host(d)
        with open(f"{d}/scenario", "w") as f:
            f.write(f"[gpu]\nuuid = GPU-aaaa\npower = const:300\nprocess = pid=601 sm=const:50\n"
                    f"process = pid=602 sm=const:50 start={BOB_START_S}\n")
        port, prom_port = free_port(), free_port()
        exporter = [f"{REPO}/target/debug/gpu-carbon-exporter",
                    f"--nvml.library-path={REPO}/target/debug/deps/libfake_nvml.so",
                    f"--web.listen-address=127.0.0.1:{port}", "--sample.interval=1s",
                    "--carbon.intensity=400", "--attribution.labels=user",
                    f"--path.procfs={d}/proc", f"--path.rootfs={d}/root",
                    "--kubernetes.pod-resources-socket=", "--kubernetes.cri-socket="]
        env = dict(os.environ, FAKE_NVML_SCENARIO=f"{d}/scenario")
        log = open(f"{d}/exporter.log", "w")
        procs.append(subprocess.Popen(exporter, env=env, stdout=log, stderr=log))
        started = time.time()
        with open(f"{d}/prometheus.yml", "w") as f:
            f.write(f"global: {{scrape_interval: {SCRAPE_S}s}}\nscrape_configs: [{{job_name: g, "
                    f"static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n")
        log = open(f"{d}/prometheus.log", "w")
        procs.append(subprocess.Popen(
            [shutil.which(prometheus) or prometheus, f"--config.file={d}/prometheus.yml",
             f"--storage.tsdb.path={d}/data", f"--web.listen-address=127.0.0.1:{prom_port}",
             *flags], stdout=log, stderr=log))
        time.sleep(RUN_S)
        end = int(time.time())
        bob_start = started + BOB_START_S
        print(f"{os.path.basename(prometheus)} {' '.join(flags)}".strip())
        created = query(prom_port, "query", query='count({__name__=~".+_created"})', time=end)
        print(f"  _created stored as series: {created[0]['value'][1] if created else 0}")
        bob = query(prom_port, "query", query='gpu_workload_energy_kwh_total{user="bob"}[300s]',
                    time=end)
        print(f"  bob's first stored sample: {bob[0]['values'][0] if bob else None}")
        for w in (45, 60):
            def series(expr):
                r = query(prom_port, "query_range", query=expr, start=end - RUN_S + w + 10,
                          end=end, step=1)
                return {float(t): float(v) for t, v in r[0]["values"]}
            device = series(f"increase(gpu_energy_kwh_total[{w}s])")
            parts = series(f"sum(increase(gpu_workload_energy_kwh_total[{w}s])) + "
                           f"sum(increase(gpu_unattributed_energy_kwh_total[{w}s]))")
            inside, outside = [], []
            for t in sorted(set(device) & set(parts)):
                (inside if t - w < bob_start <= t else outside).append(parts[t] / device[t] - 1)
            print(f"  {w} s windows with bob's start: {summary(inside)}; "
                  f"without: {summary(outside)}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
