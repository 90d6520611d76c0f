//! The powermetrics collector on the real binary, running the stand-in
//! `tests/fake-powermetrics/powermetrics` (a script that replays recorded plist samples, then
//! garbles, cuts a sample short or exits, as scenario files say). Energy is checked against the
//! samples' own figures: each domain's average power times the `elapsed_ns` it covers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{repo, run_to_exit, temp_file, Exporter, Scrape};

const J_PER_KWH: f64 = 3.6e6;
/// `elapsed_ns` and mW of the fixtures (tests/fixtures/powermetrics/*.plist).
const IDLE_S: f64 = 1.004_181_125;
const BUSY_S: f64 = 0.998_25;
const INTEL_S: f64 = 1.0025;

/// A scenario directory for the fake: `runs[i]` is start i + 1's script; `{F}` is the fixture
/// directory.
fn scenario(runs: &[&str]) -> PathBuf {
    let dir = temp_file("starts", "0")
        .parent()
        .expect("dir")
        .to_path_buf();
    let fixtures = repo("tests/fixtures/powermetrics");
    for (i, run) in runs.iter().enumerate() {
        let text = run.replace("{F}", &fixtures.display().to_string());
        std::fs::write(dir.join((i + 1).to_string()), text).expect("scenario");
    }
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Exporter {
    let fake = repo("tests/fake-powermetrics/powermetrics");
    let mut args = vec![
        "--no-collector.nvml".to_string(),
        "--collector.powermetrics".to_string(),
        format!("--powermetrics.path={}", fake.display()),
        "--sample.interval=100ms".to_string(),
        "--carbon.intensity=300".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start(
        &args,
        &[("FAKE_POWERMETRICS_DIR", &dir.display().to_string())],
    );
    e.wait_ready();
    e
}

fn wait_for(e: &Exporter, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = e.scrape();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kwh(s: &Scrape, domain: &str) -> f64 {
    s.value("gpu_host_energy_kwh_total", &[("domain", domain)])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-9)
}

/// Apple Silicon: every sample is accounted exactly once, across a garbage sample, a sample cut
/// short and the child's exit; both bad samples and the restart are counted; the command line
/// is powermetrics' own.
#[test]
fn apple_silicon_energy_survives_garbage_and_restarts() {
    let dir = scenario(&[
        "sample {F}/apple-silicon.plist\nsample {F}/apple-silicon-busy.plist\ngarbage\n\
         sample {F}/apple-silicon-busy.plist\ntruncated {F}/apple-silicon.plist\nexit 1\n",
        "sample {F}/apple-silicon.plist\nhang\n",
    ]);
    let e = start(&dir, &[]);
    // Σ average × elapsed over the five good samples (two idle, three busy… of which one is in
    // the second run: idle, busy, busy | idle).
    let expected = |idle_mw: f64, busy_mw: f64| {
        (2.0 * idle_mw / 1e3 * IDLE_S + 2.0 * busy_mw / 1e3 * BUSY_S) / J_PER_KWH
    };
    let cpu = expected(2978.0, 15_250.5);
    let s = wait_for(&e, |s| kwh(s, "cpu") >= cpu * (1.0 - 1e-9));
    assert!(
        close(kwh(&s, "cpu"), cpu),
        "cpu {} != {cpu}",
        kwh(&s, "cpu")
    );
    assert!(close(kwh(&s, "gpu"), expected(250.0, 8_400.25)));
    assert!(close(kwh(&s, "ane"), expected(0.0, 1_200.0)));
    for domain in ["cpu", "gpu", "ane"] {
        let series = s.find(
            "gpu_host_energy_kwh_total",
            &[("domain", domain), ("energy_source", "integrated")],
        );
        assert_eq!(series.len(), 1, "{domain}");
        let grams = s.value("gpu_host_co2e_grams_total", &[("domain", domain)]);
        assert!(close(grams, kwh(&s, domain) * 300.0), "{domain}: {grams}");
    }
    assert_eq!(s.value("gpu_host_power_watts", &[("domain", "cpu")]), 2.978);
    let c = [("collector", "powermetrics")];
    assert_eq!(s.value("gpu_carbon_exporter_collector_up", &c), 1.0);
    let restarts = |reason| {
        s.value(
            "gpu_carbon_exporter_collector_child_restarts_total",
            &[("collector", "powermetrics"), ("reason", reason)],
        )
    };
    assert_eq!(
        (restarts("exited"), restarts("garbled"), restarts("stalled")),
        (1.0, 0.0, 0.0)
    );
    assert_eq!(
        s.value("gpu_carbon_exporter_collector_malformed_samples_total", &c),
        2.0
    );
    let args = std::fs::read_to_string(dir.join("args-1")).expect("args");
    assert_eq!(
        args.trim(),
        "--samplers cpu_power,gpu_power -i 100 -f plist"
    );
}

/// Intel Mac: the package, and with --state.file its total carries on across an exporter
/// restart (the new run's samples add to it, nothing is counted twice or lost).
#[test]
fn intel_package_energy_persists_across_exporter_restarts() {
    let dir = scenario(&[
        "sample {F}/intel.plist\nsample {F}/intel.plist\nhang\n",
        "sample {F}/intel.plist\nhang\n",
    ]);
    let state = temp_file("state.json", "");
    std::fs::remove_file(&state).expect("no state yet");
    let flag = format!("--state.file={}", state.display());
    let one = 12.5 * INTEL_S / J_PER_KWH;
    let e = start(&dir, &[&flag]);
    let s = wait_for(&e, |s| kwh(s, "package") >= 2.0 * one * (1.0 - 1e-9));
    assert!(
        close(kwh(&s, "package"), 2.0 * one),
        "{}",
        kwh(&s, "package")
    );
    assert_eq!(
        s.find("gpu_host_energy_kwh_total", &[]).len(),
        1,
        "only the package"
    );
    assert_eq!(e.terminate().code(), Some(0));
    let e = start(&dir, &[&flag]);
    let s = wait_for(&e, |s| kwh(s, "package") >= 3.0 * one * (1.0 - 1e-9));
    assert!(
        close(kwh(&s, "package"), 3.0 * one),
        "{}",
        kwh(&s, "package")
    );
}

/// On Linux there is no powermetrics: the collector needs a program named, and that must exist.
#[test]
fn powermetrics_needs_a_program_outside_macos() {
    let (status, out) = run_to_exit(&["--collector.powermetrics"], &[]);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("--collector.powermetrics") && out.contains("--powermetrics.path"),
        "{out}"
    );
    let (status, out) = run_to_exit(
        &[
            "--collector.powermetrics",
            "--powermetrics.path=/nonexistent/powermetrics",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("--powermetrics.path"), "{out}");
}
