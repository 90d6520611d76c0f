//! The ledger's promise, as an invariant under random kills: no counter the exporter serves is
//! ever followed by a lower value of the same series, whatever kills the process and whatever
//! happens while it is down (here: a driver reload that restarts the hardware counter), at the
//! default 30 s flush interval; and what is lost is bounded as docs/persistence.md states.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const J_PER_KWH: f64 = 3.6e6;
const WATTS: f64 = 300.0;

/// Counters that live only as long as the process (errors, writes, fetches) and restart from
/// zero with it, as `process_cpu_seconds_total` does. Every other `_total` family is part of
/// the ledger and is held to the invariant, including any added later.
const PER_PROCESS: [&str; 11] = [
    "gpu_carbon_exporter_sample_errors_total",
    "gpu_carbon_exporter_skipped_samples_total",
    "gpu_carbon_exporter_host_sample_errors_total",
    "gpu_mig_sample_errors_total",
    "gpu_carbon_exporter_collector_child_restarts_total",
    "gpu_carbon_exporter_collector_malformed_samples_total",
    "gpu_carbon_intensity_fetch_errors_total",
    "gpu_carbon_exporter_state_writes_total",
    "gpu_carbon_exporter_state_write_failures_total",
    "gpu_carbon_exporter_state_written_bytes_total",
    "gpu_carbon_exporter_state_set_aside_total",
];

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Rng {
        let seed = std::env::var("STATE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| (now_unix().fract() * 1e9) as u64 | 1);
        eprintln!("state_crash seed: STATE_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(lo + (hi - lo) * self.unit())
    }
}

/// Every served value of every ledger series, in the order served, across process lives.
#[derive(Default)]
struct History {
    last: BTreeMap<String, f64>,
    checked: usize,
}

impl History {
    fn observe(&mut self, s: &Scrape) {
        for series in &s.series {
            let name = series.name.as_str();
            if !name.ends_with("_total") || PER_PROCESS.contains(&name) {
                continue;
            }
            let key = format!("{name}{:?}", series.labels);
            if let Some(&before) = self.last.get(&key) {
                assert!(
                    series.value >= before,
                    "{key} went backwards: {before} then {}",
                    series.value
                );
            }
            self.last.insert(key, series.value);
            self.checked += 1;
        }
    }
}

fn ts(s: &Scrape) -> f64 {
    s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
}

fn joules(s: &Scrape, uuid: &str) -> f64 {
    s.value("gpu_energy_kwh_total", &[("uuid", uuid)]) * J_PER_KWH
}

fn scenario_text(epoch: f64, resets: &[f64]) -> String {
    let mut text = format!(
        "epoch = {epoch}\n[gpu]\nuuid = GPU-counter\npower = const:{WATTS}\nutil = square:0:100:4\n"
    );
    for r in resets {
        text.push_str(&format!("reset_at = {r}\n"));
    }
    text.push_str(&format!(
        "[gpu]\nuuid = GPU-integrated\npower = const:{WATTS}\ncounter = no\n"
    ));
    text
}

fn start(scenario: &Path, state: &Path) -> Exporter {
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let state = format!("--state.file={}", state.display());
    let e = Exporter::start(
        &[
            &lib,
            &state,
            "--sample.interval=100ms",
            "--carbon.intensity=400",
            "--embodied.kg-per-gpu=150",
        ],
        &[("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8"))],
    );
    e.wait_ready();
    e
}

/// Scrapes as fast as it can for `run`, checking every scrape against the history; returns the
/// first and last scrape.
fn scrape_for(e: &Exporter, run: Duration, history: &mut History) -> (Scrape, Scrape) {
    let end = Instant::now() + run;
    let first = e.scrape();
    history.observe(&first);
    let mut last = first.clone();
    while Instant::now() < end {
        last = e.scrape();
        history.observe(&last);
        std::thread::sleep(Duration::from_millis(5));
    }
    (first, last)
}

/// Six kill -9s at random moments of the sample/commit cycle, a driver reload during two of
/// the downtimes, scraping all along at the default flush interval (30 s: no kill here ever
/// sees a full rewrite of the state file, only journal commits).
#[test]
fn no_served_counter_decreases_across_kills_and_driver_reloads() {
    let mut rng = Rng::from_clock();
    let epoch = now_unix();
    let scenario = temp_file("scenario.txt", &scenario_text(epoch, &[]));
    let state = scenario.with_file_name("state.json");
    let mut history = History::default();
    let mut resets = Vec::new();
    // Per kill: last sample served before it, first served after the restart, and the reset.
    let mut gaps: Vec<(f64, f64, Option<f64>)> = Vec::new();
    let mut e = start(&scenario, &state);
    let (first, mut last) = scrape_for(&e, rng.between(0.5, 1.5), &mut history);
    for round in 0..6 {
        e.child.kill().expect("kill -9");
        let _ = e.child.wait();
        let before = ts(&last);
        std::thread::sleep(rng.between(0.2, 0.6));
        let reset = (round % 3 == 1).then(|| now_unix() - epoch);
        if let Some(t) = reset {
            resets.push(t);
            std::fs::write(&scenario, scenario_text(epoch, &resets)).expect("reload");
        }
        std::thread::sleep(rng.between(0.2, 0.6));
        e = start(&scenario, &state);
        let (after, end) = scrape_for(&e, rng.between(0.3, 2.0), &mut history);
        gaps.push((before, ts(&after), reset.map(|t| epoch + t)));
        last = end;
    }
    let span = ts(&last) - ts(&first);
    let truth = WATTS * span;

    // Counter GPU: exact across kills; a reload while down loses only what the counter saw
    // between the last committed sample and the reload (the reload wiped it).
    let counted = joules(&last, "GPU-counter") - joules(&first, "GPU-counter");
    let wiped: f64 = gaps
        .iter()
        .filter_map(|&(before, _, reset)| reset.map(|r| WATTS * (r - before)))
        .sum();
    eprintln!(
        "counter GPU: {counted:.1} J of {truth:.1} J over {span:.2} s; bound on the loss {wiped:.1} J (reloads)"
    );
    assert!(
        counted <= truth * 1.002 + 1.0,
        "counted twice: {counted} > {truth}"
    );
    assert!(
        counted >= truth - wiped - truth * 0.002 - 1.0,
        "counter GPU lost more than the reloads wiped: {counted} of {truth}, bound {wiped}"
    );
    assert_eq!(
        last.value(
            "gpu_energy_hardware_resets_total",
            &[("uuid", "GPU-counter")]
        ),
        2.0,
        "each reload counted once"
    );

    // Integrated GPU: loses at most the downtime plus one sample interval per kill.
    let counted = joules(&last, "GPU-integrated") - joules(&first, "GPU-integrated");
    let down: f64 = gaps.iter().map(|&(before, after, _)| after - before).sum();
    let bound = WATTS * down;
    eprintln!(
        "integrated GPU: {counted:.1} J of {truth:.1} J; lost {:.1} J, bound {bound:.1} J ({down:.2} s from last sample served to first served)",
        truth - counted
    );
    assert!(
        counted <= truth * 1.002 + 1.0,
        "counted twice: {counted} > {truth}"
    );
    assert!(
        counted >= truth - bound - 1.0,
        "integrated GPU lost more than downtime + one interval: {counted} of {truth}"
    );
    assert!(
        history.checked > 1000,
        "scraped enough: {}",
        history.checked
    );
    assert_eq!(e.terminate().code(), Some(0));
}

/// The same invariant over every ledger counter `--demo` serves (workloads, unattributed,
/// MIG instances, embodied), with the host's too: RAPL from the sysfs fixture and the host
/// estimate (forced beside it, on this machine's /proc), killed at random moments.
#[test]
fn no_demo_counter_decreases_across_kills() {
    let mut rng = Rng::from_clock();
    let state = temp_file("placeholder", "").with_file_name("state.json");
    let args = [
        "--demo".to_string(),
        format!("--state.file={}", state.display()),
        "--sample.interval=50ms".to_string(),
        "--embodied.kg-per-gpu=150".to_string(),
        "--embodied.host-kg=1000".to_string(),
        "--collector.rapl".to_string(),
        format!(
            "--path.sysfs={}/tests/fixtures/sysfs",
            env!("CARGO_MANIFEST_DIR")
        ),
        "--collector.host-estimate".to_string(),
        "--estimate.host.force".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut history = History::default();
    let mut families = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let mut e = Exporter::start(&args, &[]);
        e.wait_ready();
        let (_, last) = scrape_for(&e, rng.between(0.3, 1.5), &mut history);
        families.extend(
            last.series
                .iter()
                .filter(|s| s.name.ends_with("_total"))
                .map(|s| s.name.clone()),
        );
        e.child.kill().expect("kill -9");
        let _ = e.child.wait();
    }
    for family in [
        "gpu_energy_kwh_total",
        "gpu_co2e_grams_total",
        "gpu_embodied_co2e_grams_total",
        "gpu_workload_energy_kwh_total",
        "gpu_unattributed_energy_kwh_total",
        "gpu_mig_energy_kwh_total",
        "gpu_mig_unallocated_energy_kwh_total",
        "gpu_host_energy_kwh_total",
        "gpu_host_co2e_grams_total",
        "gpu_host_embodied_co2e_grams_total",
    ] {
        assert!(
            families.contains(family),
            "{family} was checked: {families:?}"
        );
    }
}
