//! The simulated backend's exposition after 90 simulated seconds, compared byte for byte with
//! `tests/golden/simulated.prom` (node_exporter's golden-file approach). The clock is manual,
//! so the numbers are exact; regenerate after an intended change with
//! `UPDATE_GOLDEN=1 cargo test --test e2e golden`, and review the diff.

use std::sync::Arc;
use std::time::Duration;

use gpu_carbon_exporter::attribution::demo;
use gpu_carbon_exporter::backend::simulated::SimulatedBackend;
use gpu_carbon_exporter::carbon::providers::zones::ZoneTable;
use gpu_carbon_exporter::carbon::FixedIntensity;
use gpu_carbon_exporter::clock::{Clock, ManualClock};
use gpu_carbon_exporter::exposition::Exposition;
use gpu_carbon_exporter::sampler::{AccountingSettings, Sampler};
use gpu_carbon_exporter::snapshot::CollectorStatus;
use tokio::sync::watch;

use crate::support::{assert_promtool_clean, Exporter, Scrape};

pub const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/simulated.prom");

/// Renders 4 simulated GPUs after 90 one-second ticks, zone DE, PUE 1.2.
fn render_simulated() -> String {
    let clock = Arc::new(ManualClock::new(1_800_000_000.0));
    let backend = SimulatedBackend::new(4, Arc::clone(&clock) as Arc<dyn Clock>);
    let zone = ZoneTable::builtin().get("DE").expect("DE in table");
    let mut sampler = Sampler::new(
        vec![Box::new(backend)],
        Box::new(FixedIntensity::zone(zone)),
        AccountingSettings::with_pue(1.2),
        vec![CollectorStatus::new("simulated", true)],
    );
    let gpus = sampler
        .inventory()
        .map(|(_, d, _)| d.clone())
        .collect::<Vec<_>>();
    sampler.attribute(demo::attributor(&Default::default(), &gpus));
    let (publish, snapshots) = watch::channel(None);
    for _ in 0..=90 {
        publish.send_replace(Some(Arc::new(sampler.tick(clock.as_ref()))));
        clock.advance(Duration::from_secs(1));
    }
    let exposition = Exposition::new(snapshots, false, None).expect("registry");
    exposition
        .register_sample_interval(Duration::from_secs(1))
        .expect("sample interval");
    let text = exposition.render().expect("render");
    normalise_build(&String::from_utf8(text).expect("utf-8"))
}

/// The revision changes with every commit; the golden file holds a placeholder.
fn normalise_build(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("gpu_carbon_exporter_build_info{") {
                "gpu_carbon_exporter_build_info{revision=\"REVISION\",version=\"VERSION\"} 1"
                    .to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn simulated_exposition_matches_golden() {
    let got = render_simulated();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(GOLDEN).expect("golden file");
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(10)
            .map(|(w, g)| format!("- {w}\n+ {g}"))
            .collect();
        panic!(
            "exposition differs from {GOLDEN} ({} vs {} lines):\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
    assert_promtool_clean(&got);
}

/// Hand-checkable values in the golden run: the always-idle GPU 3 draws 65 W ± 1.5 W sine
/// (period 60 s) at 0 % utilization, so all of its energy is idle; CO2e = kWh × 1.2 × DE.
#[test]
fn golden_values_are_what_the_profiles_say() {
    let s = Scrape::parse(&render_simulated());
    let kwh3 = s.value("gpu_energy_kwh_total", &[("gpu", "3")]);
    // ∫0^90 65 + 1.5 sin(2πt/60) dt = 5850 + 1.5·60/(2π)·(1 − cos(3π)) J
    let want = (5850.0 + 1.5 * 60.0 / std::f64::consts::TAU * 2.0) / 3.6e6;
    assert!((kwh3 - want).abs() < 1e-4 * want, "{kwh3} vs {want}");
    assert_eq!(s.value("gpu_idle_energy_kwh_total", &[("gpu", "3")]), kwh3);
    let de = ZoneTable::builtin().get("DE").expect("DE").grams_per_kwh;
    let co2 = s.value("gpu_co2e_grams_total", &[("gpu", "3")]);
    assert!((co2 - kwh3 * 1.2 * de).abs() < 1e-9, "{co2}");
    // GPU 2 (batch): busy 500 W for 70 s, then idle 70 W; its counter integral is exact. The
    // interval 69–70 s ends on a 0 % reading, so it counts as idle: idle energy is attributed
    // with one sample interval of resolution.
    let kwh2 = s.value("gpu_energy_kwh_total", &[("gpu", "2")]);
    let idle2 = s.value("gpu_idle_energy_kwh_total", &[("gpu", "2")]);
    assert!(
        (kwh2 - (500.0 * 70.0 + 70.0 * 20.0) / 3.6e6).abs() < 1e-6,
        "{kwh2}"
    );
    assert!(
        (idle2 - (500.0 + 70.0 * 20.0) / 3.6e6).abs() < 1e-6,
        "{idle2}"
    );
    let intensity = s.value("gpu_carbon_intensity_grams_per_kwh", &[("zone", "DE")]);
    assert_eq!(intensity, de);
    assert_eq!(s.value("gpu_pue_ratio", &[]), 1.2);
}

/// The binary in `--demo` mode exports exactly the golden file's series (names and labels),
/// plus process metrics, and its scrape passes promtool.
#[test]
fn demo_binary_exports_the_golden_series() {
    let exporter = Exporter::start(
        &[
            "--demo",
            "--carbon.zone=DE",
            "--carbon.pue=1.2",
            "--sample.interval=100ms",
        ],
        &[],
    );
    exporter.wait_ready();
    // Some series need two samples (the counter's discrepancy compares an interval).
    std::thread::sleep(Duration::from_millis(500));
    let live = exporter.scrape();
    assert_promtool_clean(&live.text);
    let golden = Scrape::parse(&std::fs::read_to_string(GOLDEN).expect("golden file"));
    let key = |s: &crate::support::Series| format!("{}{:?}", s.name, s.labels);
    let own = |s: &&crate::support::Series| {
        !s.name.starts_with("process_") && s.name != "gpu_carbon_exporter_build_info"
    };
    let mut want: Vec<String> = golden.series.iter().filter(own).map(key).collect();
    let mut got: Vec<String> = live.series.iter().filter(own).map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(live.find("gpu_carbon_exporter_build_info", &[]).len(), 1);
    assert!(!live.find("process_resident_memory_bytes", &[]).is_empty());
}
