//! The host estimate (Cloud Carbon Footprint model for hosts without RAPL) on the real binary,
//! against a fake procfs whose `/proc/stat` counters a thread here advances with wall time at a
//! utilization the test sets: the kWh a user reads must match the model's integral in closed
//! form, survive faults (garbage, a missing file, CPU hot-plug) and restarts without ever going
//! down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const J_PER_KWH: f64 = 3.6e6;
/// Ticks per CPU-second in the fake counters (the kernel's USER_HZ is 100; the exporter only
/// takes ratios, and a finer tick keeps rounding out of the comparison).
const HZ: f64 = 1.0e6;
/// Cascade Lake (family 6, model 85, stepping 7): CCF's 0.64 and 3.97 W per vCPU.
const MIN_W: f64 = 0.64;
const MAX_W: f64 = 3.97;
const CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\nstepping\t: 7\n";
/// 16 GiB.
const MEMINFO: &str = "MemTotal:       16777216 kB\nMemFree:         1000000 kB\n";
const MEMORY_W: f64 = 16.0 * 0.392;

/// What the fake kernel is doing: utilization, online CPUs, and whether `stat` is garbage.
#[derive(Clone, Copy)]
struct Load {
    utilization: f64,
    cpus: u32,
    garbage: bool,
}

/// A fake procfs and cgroup tree, and the thread advancing its CPU counters.
struct FakeHost {
    procfs: PathBuf,
    sysfs: PathBuf,
    load: Arc<Mutex<Load>>,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

impl FakeHost {
    fn start(load: Load) -> FakeHost {
        let marker = temp_file("marker", "");
        let root = marker.parent().expect("temp dir").to_path_buf();
        let (procfs, sysfs) = (root.join("proc"), root.join("sys"));
        std::fs::create_dir_all(&procfs).expect("mkdir");
        std::fs::create_dir_all(sysfs.join("fs/cgroup")).expect("mkdir");
        std::fs::write(procfs.join("cpuinfo"), CPUINFO).expect("write");
        std::fs::write(procfs.join("meminfo"), MEMINFO).expect("write");
        std::fs::write(sysfs.join("fs/cgroup/cpu.max"), "max 100000\n").expect("write");
        let load = Arc::new(Mutex::new(load));
        let stop = Arc::new(AtomicBool::new(false));
        let stat = procfs.join("stat");
        let (l, s) = (load.clone(), stop.clone());
        let write = move |busy: f64, total: f64, load: Load| {
            let mut text = if load.garbage {
                "cpu  this is not a counter\n".to_string()
            } else {
                format!(
                    "cpu  {} 0 0 {} 0 0 0 0 0 0\n",
                    busy as u64,
                    (total - busy) as u64
                )
            };
            for i in 0..load.cpus {
                text.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
            }
            text.push_str("intr 0\nctxt 0\n");
            write_atomic(&stat, &text);
        };
        let first = *load.lock().expect("lock");
        write(0.0, 0.0, first);
        let writer = std::thread::spawn(move || {
            let (mut busy, mut total) = (0.0, 0.0);
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                let now = Instant::now();
                let load = *l.lock().expect("lock");
                let ticks = (now - last).as_secs_f64() * HZ * f64::from(load.cpus);
                last = now;
                total += ticks;
                busy += ticks * load.utilization;
                write(busy, total, load);
            }
        });
        FakeHost {
            procfs,
            sysfs,
            load,
            stop,
            writer: Some(writer),
        }
    }

    fn set(&self, f: impl FnOnce(&mut Load)) -> f64 {
        f(&mut self.load.lock().expect("lock"));
        now_unix()
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("--nvml.library-path={}", fake_nvml_lib().display()),
            format!("--path.procfs={}", self.procfs.display()),
            format!("--path.sysfs={}", self.sysfs.display()),
            "--sample.interval=100ms".into(),
            "--carbon.intensity=400".into(),
            "--carbon.pue=1.5".into(),
        ]
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn start(host: &FakeHost, extra: &[&str]) -> Exporter {
    let scenario = temp_file(
        "scenario.txt",
        &format!(
            "epoch = {}\n[gpu]\nuuid = GPU-eeeeeeee-0000-0000-0000-000000000000\npower = const:100\n",
            now_unix()
        ),
    );
    let mut args = host.args();
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start(
        &args,
        &[("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8"))],
    );
    e.wait_ready();
    e
}

fn kwh(s: &Scrape, domain: &str) -> f64 {
    s.value(
        "gpu_host_energy_kwh_total",
        &[("domain", domain), ("energy_source", "estimated")],
    )
}

fn sampled_at(s: &Scrape) -> f64 {
    s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
}

/// Scrapes until `done`, at most 20 s.
fn scrape_until(e: &Exporter, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = e.scrape();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: got {got}, want {want} (±{:.2}%)",
        rel * 100.0
    );
}

/// Overlap of [a, b] with [from, to].
fn overlap(a: f64, b: f64, from: f64, to: f64) -> f64 {
    (b.min(to) - a.max(from)).max(0.0)
}

/// 4 vCPUs at 20 % then 80 %: CPU energy is `4 × (0.64 t + 3.33 ∫u dt)` and memory
/// `16 GiB × 0.392 W × t`, within 1 %, with CO2e = kWh × PUE × intensity, the power gauge at
/// the model's value and the series labelled estimated.
#[test]
fn estimated_energy_matches_the_model_over_a_load_change() {
    let host = FakeHost::start(Load {
        utilization: 0.2,
        cpus: 4,
        garbage: false,
    });
    let e = start(&host, &[]);
    assert_eq!(
        e.scrape().value(
            "gpu_carbon_exporter_collector_up",
            &[("collector", "host_estimate")]
        ),
        1.0
    );
    std::thread::sleep(Duration::from_millis(500));
    let first = e.scrape();
    let t_first = sampled_at(&first);
    std::thread::sleep(Duration::from_millis(1500));
    let switch = host.set(|l| l.utilization = 0.8);
    let last = scrape_until(&e, |s| sampled_at(s) > switch + 2.0);
    let t_last = sampled_at(&last);
    assert!(t_last > switch + 2.0, "sampling stalled; log:\n{}", e.log());

    let busy = 0.2 * overlap(t_first, t_last, 0.0, switch)
        + 0.8 * overlap(t_first, t_last, switch, f64::MAX);
    let cpu_j = 4.0 * (MIN_W * (t_last - t_first) + (MAX_W - MIN_W) * busy);
    let cpu_kwh = kwh(&last, "cpu") - kwh(&first, "cpu");
    assert_close("cpu energy (J)", cpu_kwh * J_PER_KWH, cpu_j, 0.01);
    let memory_kwh = kwh(&last, "memory") - kwh(&first, "memory");
    assert_close(
        "memory energy (J)",
        memory_kwh * J_PER_KWH,
        MEMORY_W * (t_last - t_first),
        0.01,
    );
    let co2e = |s: &Scrape| {
        s.value(
            "gpu_host_co2e_grams_total",
            &[("domain", "cpu"), ("energy_source", "estimated")],
        )
    };
    assert_close(
        "cpu CO2e (g)",
        co2e(&last) - co2e(&first),
        cpu_kwh * 1.5 * 400.0,
        1e-6,
    );
    let power = last.value(
        "gpu_host_power_watts",
        &[("domain", "cpu"), ("energy_source", "estimated")],
    );
    assert_close(
        "cpu power (W)",
        power,
        4.0 * (MIN_W + 0.8 * (MAX_W - MIN_W)),
        0.005,
    );
    let memory_power = last.value("gpu_host_power_watts", &[("domain", "memory")]);
    assert_close("memory power (W)", memory_power, MEMORY_W, 1e-9);
    assert!(e.log().contains("Cascade Lake"), "log:\n{}", e.log());
}

/// Garbage in `/proc/stat`, then the file gone, then a CPU hot-plugged in: each is counted,
/// the CPU energy never goes down and counting resumes at the model's value for the new vCPUs;
/// memory is not affected.
#[test]
fn faults_and_hot_plug_degrade_one_series_and_never_lower_it() {
    let host = FakeHost::start(Load {
        utilization: 0.5,
        cpus: 4,
        garbage: false,
    });
    let e = start(&host, &[]);
    let errors = |s: &Scrape| {
        s.value(
            "gpu_carbon_exporter_host_sample_errors_total",
            &[("domain", "cpu"), ("kind", "read_error")],
        )
    };
    let before = scrape_until(&e, |s| kwh(s, "cpu") > 0.0);
    host.set(|l| l.garbage = true);
    let during = scrape_until(&e, |s| errors(s) >= 3.0);
    assert!(
        errors(&during) >= 3.0,
        "garbage not counted:\n{}",
        during.text
    );
    assert!(kwh(&during, "cpu") >= kwh(&before, "cpu"));
    assert!(
        during
            .find("gpu_host_power_watts", &[("domain", "cpu")])
            .is_empty(),
        "no CPU power while /proc/stat is garbage"
    );
    host.set(|l| {
        l.garbage = false;
        l.cpus = 6;
    });
    let want = 6.0 * (MIN_W + 0.5 * (MAX_W - MIN_W));
    let after = scrape_until(&e, |s| {
        s.find("gpu_host_power_watts", &[("domain", "cpu")])
            .first()
            .is_some_and(|p| (p.value - want).abs() < 0.01)
    });
    let power = after.value("gpu_host_power_watts", &[("domain", "cpu")]);
    assert_close("cpu power after hot-plug (W)", power, want, 0.005);
    assert!(kwh(&after, "cpu") > kwh(&during, "cpu"), "counting resumed");
    assert_close(
        "memory power (W)",
        after.value("gpu_host_power_watts", &[("domain", "memory")]),
        MEMORY_W,
        1e-9,
    );
    assert_eq!(
        after.value(
            "gpu_carbon_exporter_host_sample_errors_total",
            &[("domain", "memory"), ("kind", "read_error")]
        ),
        0.0
    );
}

/// Without `/proc/stat` the host estimate is reported down and the exporter serves the GPUs.
#[test]
fn a_missing_proc_stat_degrades_to_collector_down() {
    let host = FakeHost::start(Load {
        utilization: 0.5,
        cpus: 2,
        garbage: false,
    });
    let mut args = host.args();
    args[1] = format!("--path.procfs={}", host.procfs.join("missing").display());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let scenario = temp_file("scenario.txt", "[gpu]\npower = const:100\n");
    let e = Exporter::start(
        &args,
        &[("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8"))],
    );
    e.wait_ready();
    let s = e.scrape();
    assert_eq!(
        s.value(
            "gpu_carbon_exporter_collector_up",
            &[("collector", "host_estimate")]
        ),
        0.0
    );
    assert!(s.find("gpu_host_energy_kwh_total", &[]).is_empty());
    assert_eq!(s.find("gpu_energy_kwh_total", &[]).len(), 1);
    assert!(
        e.log().contains("Host estimate disabled"),
        "log:\n{}",
        e.log()
    );
}

/// Across a restart with `--state.file` the estimated domains and the host's embodied share
/// carry on from their saved totals: never lower, and still growing.
#[test]
fn estimated_domains_and_host_embodied_survive_a_restart() {
    let host = FakeHost::start(Load {
        utilization: 0.3,
        cpus: 4,
        garbage: false,
    });
    let state = temp_file("state.json", "");
    std::fs::remove_file(&state).expect("no state yet");
    let state_flag = format!("--state.file={}", state.display());
    // 1,000 kg over one year: 1e6 g / 31,557,600 s = 0.0317 g per second.
    let extra = [
        state_flag.as_str(),
        "--embodied.host-kg=1000",
        "--embodied.lifetime-years=1",
    ];
    let embodied = |s: &Scrape| s.value("gpu_host_embodied_co2e_grams_total", &[]);
    let first = start(&host, &extra);
    let t0 = sampled_at(&first.scrape());
    let s1 = scrape_until(&first, |s| sampled_at(s) > t0 + 1.0);
    let before = (kwh(&s1, "cpu"), kwh(&s1, "memory"), embodied(&s1));
    assert!(before.0 > 0.0 && before.1 > 0.0 && before.2 > 0.0);
    let per_second = 1e6 / (365.25 * 86_400.0);
    assert_close(
        "host embodied (g)",
        embodied(&s1),
        per_second * (sampled_at(&s1) - t0),
        0.25,
    );
    assert_eq!(first.terminate().code(), Some(0));

    let second = start(&host, &extra);
    let s2 = second.scrape();
    assert!(
        kwh(&s2, "cpu") >= before.0,
        "cpu energy went down across the restart"
    );
    assert!(kwh(&s2, "memory") >= before.1);
    assert!(embodied(&s2) >= before.2, "host embodied went down");
    let t2 = sampled_at(&s2);
    let s3 = scrape_until(&second, |s| sampled_at(s) > t2 + 0.5);
    assert!(kwh(&s3, "cpu") > kwh(&s2, "cpu"));
    assert!(embodied(&s3) > embodied(&s2));
}
