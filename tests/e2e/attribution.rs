//! Attribution end to end: the real binary on the fake NVML library with processes, a fake
//! host `/proc` and `/etc/passwd` (`--path.procfs`, `--path.rootfs`) holding each cgroup layout,
//! and a fake kubelet pod-resources socket. Per-workload kWh are checked against the
//! scenario's analytic split and against the device counters (exact conservation).

mod allocations;
mod kubelet;
mod layouts;
mod mig;
mod own_pod;
mod splits;
mod users;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{assert_promtool_clean, fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const CID_DOCKER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CID_CONTAINERD: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CID_CRIO: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const POD_BOB: &str = "4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21";
const POD_DAVE: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
pub(crate) const GPU_A: &str = "GPU-aaaaaaaa-1111-2222-3333-444444444444";
pub(crate) const GPU_B: &str = "GPU-bbbbbbbb-1111-2222-3333-444444444444";
pub(crate) const GPU_C: &str = "GPU-cccccccc-1111-2222-3333-444444444444";

/// A fake host: `proc/PID/{status,cgroup}` and `root/etc/passwd` under a temp dir.
pub(crate) struct Host {
    pub(crate) dir: PathBuf,
}

impl Host {
    pub(crate) fn new(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("gce-host-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/etc")).expect("mkdir");
        std::fs::write(
            dir.join("root/etc/passwd"),
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:100::/home/alice:/bin/bash\n\
             bob:x:1002:100::/home/bob:/bin/bash\ncarol:x:1003:100::/home/carol:/bin/bash\n\
             dave:x:1005:100::/home/dave:/bin/bash\n",
        )
        .expect("passwd");
        Host { dir }
    }

    pub(crate) fn process(&self, pid: u32, uid: u32, cgroup: &str) -> &Host {
        let p = self.dir.join(format!("proc/{pid}"));
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(
            p.join("status"),
            format!("Name:\tpython\nPid:\t{pid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t100\t100\t100\t100\n"),
        )
        .expect("status");
        std::fs::write(p.join("cgroup"), cgroup).expect("cgroup");
        self
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("--path.procfs={}", self.dir.join("proc").display()),
            format!("--path.rootfs={}", self.dir.join("root").display()),
        ]
    }
}

/// One process per cgroup layout: Docker (systemd), containerd pod (systemd, burstable),
/// Slurm v1, CRI-O pod (systemd, guaranteed), Slurm v2 with a UID passwd doesn't know.
fn layouts_host(name: &str) -> Host {
    let host = Host::new(name);
    let underscored = |uid: &str| uid.replace('-', "_");
    host.process(101, 1001, &format!("0::/system.slice/docker-{CID_DOCKER}.scope\n"))
        .process(102, 1002, &format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_CONTAINERD}.scope\n",
            underscored(POD_BOB)
        ))
        .process(103, 1003, "12:memory:/slurm/uid_1003/job_4242/step_0/task_0\n11:devices:/slurm/uid_1003/job_4242/step_0\n0::/\n")
        .process(201, 1005, &format!(
            "0::/kubepods.slice/kubepods-pod{}.slice/crio-{CID_CRIO}.scope\n",
            underscored(POD_DAVE)
        ))
        .process(202, 1004, "0::/system.slice/slurmstepd.scope/job_4243/step_0/user/task_0\n");
    host
}

/// GPU a: SM samples 60 % / 20 % / none → shares 3/4, 1/4, 0. GPU b: no per-process
/// utilization (as on MIG) → equal halves. GPU c: no process → unattributed.
fn layouts_scenario(epoch: f64) -> String {
    format!(
        "epoch = {epoch}
[gpu]
uuid = {GPU_A}
power = const:300
process = pid=101 sm=const:60
process = pid=102 sm=const:20
process = pid=103 sm=none
[gpu]
uuid = {GPU_B}
power = const:200
process_util = no
process = pid=201
process = pid=202 kind=graphics
[gpu]
uuid = {GPU_C}
power = const:100
"
    )
}

pub(crate) fn start(host: &Host, scenario: &str, extra: &[&str]) -> Exporter {
    start_with_env(host, scenario, extra, &[])
}

/// [`start`] with workloads labelled by user alone and no Kubernetes sources.
pub(crate) fn start_by_user(host: &Host, scenario: &str) -> Exporter {
    let flags = [
        "--attribution.labels=user",
        "--kubernetes.pod-resources-socket=",
        "--kubernetes.cri-socket=",
    ];
    start(host, scenario, &flags)
}

/// [`start`] with more environment variables for the exporter.
pub(crate) fn start_with_env(
    host: &Host,
    scenario: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Exporter {
    let file = temp_file("attribution.scenario", scenario);
    let lib = fake_nvml_lib();
    let own_interval = extra.iter().any(|a| a.starts_with("--sample.interval"));
    let mut args = vec![
        format!("--nvml.library-path={}", lib.display()),
        format!(
            "--sample.interval={}",
            if own_interval { "1s" } else { "100ms" }
        ),
        "--carbon.intensity=400".to_string(),
        "--carbon.pue=1.25".to_string(),
    ];
    if own_interval {
        args.remove(1);
    }
    // A flag given in `extra` replaces the fake host's (e.g. `--path.rootfs=/`).
    let given = |a: &String| {
        extra
            .iter()
            .any(|e| e.split('=').next() == a.split('=').next())
    };
    args.extend(host.args().into_iter().filter(|a| !given(a)));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut envs = vec![("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))];
    envs.extend_from_slice(env);
    let exporter = Exporter::start(&args, &envs);
    exporter.wait_ready();
    exporter
}

/// Scrapes until scenario time `t` has passed (or panics after 30 s).
pub(crate) fn scrape_after(exporter: &Exporter, epoch: f64, t: f64) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = exporter.scrape();
        let at = s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]) - epoch;
        if at >= t {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "stalled at t={at}; log:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn sum(s: &Scrape, name: &str, matching: &[(&str, &str)]) -> f64 {
    s.find(name, matching).iter().map(|x| x.value).sum()
}

pub(crate) fn assert_rel(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1e-30),
        "{what}: got {got:e}, want {want:e}"
    );
}

/// Σ workloads + unattributed = device, for kWh and CO2e, on every GPU.
fn assert_conserved(s: &Scrape) {
    for uuid in [GPU_A, GPU_B, GPU_C] {
        for (device, workload, unattributed) in [
            (
                "gpu_energy_kwh_total",
                "gpu_workload_energy_kwh_total",
                "gpu_unattributed_energy_kwh_total",
            ),
            (
                "gpu_co2e_grams_total",
                "gpu_workload_co2e_grams_total",
                "gpu_unattributed_co2e_grams_total",
            ),
        ] {
            let total = s.value(device, &[("uuid", uuid)]);
            let parts =
                sum(s, workload, &[("uuid", uuid)]) + sum(s, unattributed, &[("uuid", uuid)]);
            assert!(total > 0.0, "{device} {uuid} is 0");
            assert_rel(
                &format!("{device} conservation on {uuid}"),
                parts,
                total,
                1e-9,
            );
        }
    }
}

pub(crate) fn kubelet_socket(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gce-kubelet-{name}-{}.sock", std::process::id()))
}

#[test]
fn workloads_split_exactly_with_names_for_each_cgroup_layout() {
    if !kubelet::grpc_available() {
        return;
    }
    let host = layouts_host("names");
    let socket = kubelet_socket("names");
    let cri = kubelet_socket("names-cri");
    let _servers = kubelet::serve(
        &[
            (
                "ml",
                "train-0",
                POD_BOB,
                &[("trainer", CID_CONTAINERD, &[GPU_A])],
            ),
            (
                "serving",
                "infer-0",
                POD_DAVE,
                &[("server", CID_CRIO, &[&format!("{GPU_B}::0")])],
            ),
        ],
        Some(&socket),
        Some(&cri),
    );
    let cri_flag = format!("--kubernetes.cri-socket={}", cri.display());
    let epoch = now_unix();
    let socket_flag = format!("--kubernetes.pod-resources-socket={}", socket.display());
    let exporter = start(
        &host,
        &layouts_scenario(epoch),
        &[
            &socket_flag,
            &cri_flag,
            "--kubernetes.refresh-interval=200ms",
            "--attribution.labels=user,namespace,pod,container,slurm_job",
        ],
    );
    let s = scrape_after(&exporter, epoch, 2.5);
    assert_eq!(
        s.value("gpu_carbon_exporter_kubernetes_pod_resources_up", &[]),
        1.0
    );
    assert_conserved(&s);

    // The analytic split: constant SM samples give constant shares on GPU a, halves on GPU b.
    let e = |uuid| s.value("gpu_energy_kwh_total", &[("uuid", uuid)]);
    let w = |user| sum(&s, "gpu_workload_energy_kwh_total", &[("user", user)]);
    assert_rel("alice (60 % SM)", w("alice"), 0.75 * e(GPU_A), 1e-9);
    assert_rel("bob (20 % SM)", w("bob"), 0.25 * e(GPU_A), 1e-9);
    assert_eq!(
        w("carol"),
        0.0,
        "no SM sample while others ran kernels: no share"
    );
    assert_rel("dave (equal)", w("dave"), 0.5 * e(GPU_B), 1e-9);
    assert_rel("uid 1004 (equal)", w("1004"), 0.5 * e(GPU_B), 1e-9);
    assert_rel(
        "GPU c unattributed",
        s.value("gpu_unattributed_energy_kwh_total", &[("uuid", GPU_C)]),
        e(GPU_C),
        1e-12,
    );
    let co2e = |user| sum(&s, "gpu_workload_co2e_grams_total", &[("user", user)]);
    let device_co2e = s.value("gpu_co2e_grams_total", &[("uuid", GPU_A)]);
    assert_rel("alice CO2e", co2e("alice"), 0.75 * device_co2e, 1e-9);

    // Labels per layout.
    let labels_of = |user: &str| {
        let found = s.find("gpu_workload_energy_kwh_total", &[("user", user)]);
        let last = found
            .last()
            .unwrap_or_else(|| panic!("no series for {user}"));
        ["namespace", "pod", "container", "slurm_job", "gpu"]
            .map(|l| last.label(l).unwrap_or("").to_string())
    };
    assert_eq!(labels_of("alice"), ["", "", &CID_DOCKER[..12], "", "0"]);
    assert!(
        !s.find(
            "gpu_workload_energy_kwh_total",
            &[
                ("user", "bob"),
                ("namespace", "ml"),
                ("pod", "train-0"),
                ("container", "trainer")
            ]
        )
        .is_empty(),
        "containerd pod named through the kubelet:\n{}",
        s.text
    );
    assert_eq!(labels_of("carol"), ["", "", "", "4242", "0"]);
    assert_eq!(labels_of("dave"), ["serving", "infer-0", "server", "", "1"]);
    assert_eq!(labels_of("1004"), ["", "", "", "4243", "1"]);
    assert!(
        s.find("gpu_workload_power_watts", &[("user", "alice")])
            .iter()
            .any(|x| (x.value - 225.0).abs() < 1e-6),
        "alice holds 3/4 of 300 W"
    );
    assert!(!s.text.contains("pid="), "never a PID label");
    assert_promtool_clean(&s.text);
    let _ = std::fs::remove_dir_all(&host.dir);
}

#[test]
fn kubernetes_missing_or_broken_degrades_to_pod_uid() {
    let host = layouts_host("degrade");
    let broken = kubelet::serve_broken(&kubelet_socket("broken"));
    let missing = kubelet_socket("missing");
    let _ = std::fs::remove_file(&missing);
    for socket in [missing, broken] {
        let epoch = now_unix();
        let flag = format!("--kubernetes.pod-resources-socket={}", socket.display());
        let exporter = start(
            &host,
            &layouts_scenario(epoch),
            &[
                &flag,
                "--kubernetes.cri-socket=",
                "--kubernetes.refresh-interval=200ms",
            ],
        );
        let s = scrape_after(&exporter, epoch, 1.0);
        assert_eq!(
            s.value("gpu_carbon_exporter_kubernetes_pod_resources_up", &[]),
            0.0,
            "{socket:?}"
        );
        let bob = s.value("gpu_workload_energy_kwh_total", &[("user", "bob")]);
        assert!(bob > 0.0);
        let series = s.find("gpu_workload_energy_kwh_total", &[("user", "bob")]);
        assert_eq!(
            series[0].label("pod"),
            Some(POD_BOB),
            "pod UID from the cgroup"
        );
        assert_eq!(series[0].label("namespace"), Some(""));
        assert_eq!(series[0].label("slurm_job"), Some(""));
        assert_conserved(&s);
        assert!(
            exporter.log().contains("pod-resources API unreachable"),
            "{}",
            exporter.log()
        );
    }
    let _ = std::fs::remove_dir_all(&host.dir);
}

#[test]
fn ended_workloads_are_retained_then_dropped_and_series_are_capped() {
    let host = Host::new("retention");
    for (pid, uid) in [(301, 1001), (302, 1002), (303, 1003), (304, 1005)] {
        host.process(pid, uid, "0::/user.slice\n");
    }
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}
[gpu]
uuid = {GPU_A}
power = const:100
process = pid=301 end=1
process = pid=302
process = pid=303
process = pid=304
"
    );
    let exporter = start(
        &host,
        &scenario,
        &[
            "--attribution.labels=user",
            "--attribution.max-series=2",
            "--attribution.retention=1500ms",
            "--kubernetes.pod-resources-socket=",
        ],
    );
    let users = |s: &Scrape| -> Vec<String> {
        s.find("gpu_workload_energy_kwh_total", &[])
            .iter()
            .map(|x| x.label("user").unwrap_or("").to_string())
            .collect()
    };
    let s = scrape_after(&exporter, epoch, 0.7);
    assert_eq!(users(&s), ["_overflow_", "alice", "bob"], "{}", s.text);
    // Named series against the cap, and the two workloads (carol, dave) folded into overflow.
    let gauge = |name: &str| s.value(name, &[]);
    assert_eq!(
        [
            "gpu_carbon_exporter_attribution_series",
            "gpu_carbon_exporter_attribution_max_series",
            "gpu_carbon_exporter_attribution_overflow_workloads",
        ]
        .map(gauge),
        [2.0, 2.0, 2.0]
    );
    assert!(s
        .find("gpu_carbon_exporter_kubernetes_pod_resources_up", &[])
        .is_empty());
    let total = s.value("gpu_energy_kwh_total", &[]);
    assert_rel(
        "overflow holds two of four equal shares",
        s.value("gpu_workload_energy_kwh_total", &[("user", "_overflow_")]),
        total / 2.0,
        1e-9,
    );

    let s = scrape_after(&exporter, epoch, 1.8);
    let alice = s.value("gpu_workload_energy_kwh_total", &[("user", "alice")]);
    assert!(alice > 0.0, "alice ended at t=1 but is retained");
    assert!(
        s.find("gpu_workload_power_watts", &[("user", "alice")])
            .is_empty(),
        "no power once ended"
    );

    let s = scrape_after(&exporter, epoch, 3.0);
    assert!(
        !users(&s).contains(&"alice".to_string()),
        "dropped after the retention: {:?}",
        users(&s)
    );
    // Alice's place went to the first folded workload still running (carol, from then on; her
    // earlier energy stays in the overflow series); dave stays folded.
    assert_eq!(users(&s), ["_overflow_", "bob", "carol"]);
    assert_eq!(s.value("gpu_carbon_exporter_attribution_series", &[]), 2.0);
    let _ = std::fs::remove_dir_all(&host.dir);
}

#[test]
fn workload_totals_survive_a_restart_through_the_state_file() {
    let host = layouts_host("state");
    let state = std::env::temp_dir().join(format!("gce-attr-state-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&state);
    let state_flag = format!("--state.file={}", state.display());
    let args = [state_flag.as_str(), "--kubernetes.pod-resources-socket="];
    let epoch = now_unix();
    let exporter = start(&host, &layouts_scenario(epoch), &args);
    let before = scrape_after(&exporter, epoch, 1.0);
    let alice_before = before.value("gpu_workload_energy_kwh_total", &[("user", "alice")]);
    assert!(exporter.terminate().success());
    let saved = std::fs::read_to_string(&state).expect("state written");
    assert!(saved.contains("\"workloads\""), "{saved}");

    let exporter = start(&host, &layouts_scenario(epoch), &args);
    let after = exporter.scrape();
    let alice_after = after.value("gpu_workload_energy_kwh_total", &[("user", "alice")]);
    assert!(
        alice_after >= alice_before,
        "{alice_after} < {alice_before}"
    );
    let s = scrape_after(&exporter, epoch, 2.0);
    assert_conserved(&s);
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_dir_all(&host.dir);
}
