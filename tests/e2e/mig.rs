//! MIG on the real binary with the fake NVML: each GPU instance's share of its GPU's energy
//! against the analytic split (piecewise-constant power and activity), conservation at every
//! scrape, the no-GPM rule, the all-idle rule, instances created and destroyed while running,
//! a GPU whose MIG state can't be read, and a restart.

use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, now_unix, square_energy, temp_file, Exporter, Scrape};

const JOULES_PER_KWH: f64 = 3.6e6;

fn start(scenario: &str, extra: &[&str]) -> Exporter {
    let file = temp_file("mig-scenario.txt", scenario);
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let mut args = vec![
        lib.as_str(),
        "--sample.interval=100ms",
        "--carbon.intensity=400",
    ];
    args.extend_from_slice(extra);
    let exporter = Exporter::start(
        &args,
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    exporter.wait_ready();
    exporter
}

/// Scrapes until scenario time `until`, returning each scrape with its sample's scenario time.
fn scrape_until(exporter: &Exporter, epoch: f64, until: f64) -> Vec<(f64, Scrape)> {
    let mut scrapes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = exporter.scrape();
        let t = s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]) - epoch;
        scrapes.push((t, s));
        if t > until || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    scrapes
}

fn instance(s: &Scrape, gpu: &str, gi: &str, family: &str) -> f64 {
    s.value(family, &[("gpu", gpu), ("gpu_instance", gi)])
}

fn kwh(s: &Scrape, gpu: &str, gi: &str) -> f64 {
    instance(s, gpu, gi, "gpu_mig_energy_kwh_total")
}

/// Σ instances + unallocated, and the parent's energy, of `gpu` (kWh; CO2e grams with `co2e`).
fn parts_and_whole(s: &Scrape, gpu: &str, co2e: bool) -> (f64, f64) {
    let (part, rest, whole) = if co2e {
        (
            "gpu_mig_co2e_grams_total",
            "gpu_mig_unallocated_co2e_grams_total",
            "gpu_co2e_grams_total",
        )
    } else {
        (
            "gpu_mig_energy_kwh_total",
            "gpu_mig_unallocated_energy_kwh_total",
            "gpu_energy_kwh_total",
        )
    };
    let parts: f64 = s.find(part, &[("gpu", gpu)]).iter().map(|x| x.value).sum();
    let rest = s.value(rest, &[("gpu", gpu)]);
    (parts + rest, s.value(whole, &[("gpu", gpu)]))
}

fn assert_conserved(s: &Scrape, gpu: &str) {
    for co2e in [false, true] {
        let (parts, whole) = parts_and_whole(s, gpu, co2e);
        assert!(
            (parts - whole).abs() <= 1e-9 * whole.abs().max(1e-12),
            "gpu {gpu}: instances + unallocated = {parts}, the GPU = {whole} (co2e: {co2e})"
        );
    }
}

fn assert_ratio(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
        "{what}: got {got}, want {want}"
    );
}

fn scenario(epoch: f64) -> String {
    format!(
        "epoch = {epoch}
# H100 with GPM: weights 16 x 0.5 = 8 and 32 x 1 = 32, the 3g idle.
[gpu]
power = square:200:600:1
mig = yes
gpm = yes
mig_instance = gi=1 sm=16 profile=1g.10gb activity=const:50
mig_instance = gi=2 sm=32 profile=2g.20gb activity=const:100
mig_instance = gi=3 sm=48 profile=3g.40gb activity=const:0
# A100 without GPM: activity is 1 with a compute process, 0 without.
[gpu]
name = NVIDIA A100-SXM4-40GB
power = const:300
mig = yes
sm_count = 108
mig_instance = gi=1 sm=14 profile=1g.5gb
mig_instance = gi=2 sm=28 profile=2g.10gb
mig_instance = gi=5 sm=42 profile=3g.20gb
process = pid=100 gi=1
process = pid=101 gi=5 start=2
# Everything idle: by SM count, the rest unallocated; its GPM samples fail for a while.
[gpu]
power = const:150
mig = yes
gpm = yes
sm_count = 98
mig_instance = gi=1 sm=14 activity=const:0 gpm_error=1:0.5
mig_instance = gi=2 sm=28 activity=const:0
# Not in MIG mode, and MIG state unreadable: no MIG series.
[gpu]
power = const:100
[gpu]
power = const:100
mig = unreadable
"
    )
}

/// The split on three MIG GPUs against the analytic shares, conservation at every scrape, and
/// no MIG series where there is no MIG.
#[test]
fn mig_energy_splits_as_the_formula_says_and_sums_to_the_gpu() {
    let epoch = now_unix();
    let exporter = start(&scenario(epoch), &[]);
    let scrapes = scrape_until(&exporter, epoch, 3.6);
    let (t_last, last) = scrapes.last().expect("scrapes");
    assert!(*t_last > 3.0, "sampling stalled; log:\n{}", exporter.log());

    for (_, s) in &scrapes {
        for gpu in ["0", "1", "2"] {
            assert_conserved(s, gpu);
        }
    }
    for pair in scrapes.windows(2) {
        for series in pair[1].1.find("gpu_mig_energy_kwh_total", &[]) {
            let gi = series.label("gpu_instance").expect("gi");
            let gpu = series.label("gpu").expect("gpu");
            assert!(
                series.value >= kwh(&pair[0].1, gpu, gi),
                "gpu {gpu} gi {gi} decreased"
            );
        }
    }

    // GPU 0 (GPM): after each instance's first interval, 20 % / 80 % / 0 of every interval.
    let (t_a, a) = scrapes
        .iter()
        .find(|(t, _)| *t > 0.5)
        .expect("a scrape after 0.5 s");
    let d = |gi| kwh(last, "0", gi) - kwh(a, "0", gi);
    let device = last.value("gpu_energy_kwh_total", &[("gpu", "0")])
        - a.value("gpu_energy_kwh_total", &[("gpu", "0")]);
    assert_ratio("gpu 0 gi 1 share", d("1") / device, 0.2);
    assert_ratio("gpu 0 gi 2 share", d("2") / device, 0.8);
    assert_eq!(
        d("3"),
        0.0,
        "an idle instance gets nothing while another is busy"
    );
    let analytic =
        square_energy(200.0, 600.0, 1.0, *t_last) - square_energy(200.0, 600.0, 1.0, *t_a);
    let got = d("2") * JOULES_PER_KWH;
    assert!(
        (got - 0.8 * analytic).abs() <= 0.01 * 0.8 * analytic,
        "gpu 0 gi 2: {got} J, analytic {} J",
        0.8 * analytic
    );
    assert_eq!(instance(last, "0", "2", "gpu_mig_activity_ratio"), 1.0);
    assert_eq!(instance(last, "0", "1", "gpu_mig_activity_ratio"), 0.5);
    let power = last.value("gpu_power_watts", &[("gpu", "0")]);
    assert_ratio(
        "gpu 0 gi 2 power",
        instance(last, "0", "2", "gpu_mig_power_watts"),
        0.8 * power,
    );
    let info = last.find("gpu_mig_info", &[("gpu", "0"), ("gpu_instance", "2")]);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].label("profile"), Some("2g.20gb"));
    assert_eq!(info[0].label("compute_instance"), Some("0"));
    assert_eq!(
        info[0].label("mig_uuid"),
        Some("MIG-00000000-0000-0000-0002-000000000000")
    );

    // GPU 1 (no GPM): before t = 2 only gi 1 has a process, so it gets everything; after, gi 1
    // and gi 5 share 14 : 42.
    let before: Vec<&Scrape> = scrapes
        .iter()
        .filter(|(t, _)| *t > 0.3 && *t < 1.9)
        .map(|(_, s)| s)
        .collect();
    let (first, end) = (before[0], before[before.len() - 1]);
    let whole = |s: &Scrape| s.value("gpu_energy_kwh_total", &[("gpu", "1")]);
    assert_ratio(
        "gpu 1 gi 1 alone",
        kwh(end, "1", "1") - kwh(first, "1", "1"),
        whole(end) - whole(first),
    );
    assert_eq!(kwh(end, "1", "2"), 0.0, "no process, no energy");
    let (_, after) = scrapes
        .iter()
        .find(|(t, _)| *t > 2.3)
        .expect("a scrape after 2.3 s");
    let d1 = kwh(last, "1", "1") - kwh(after, "1", "1");
    let d5 = kwh(last, "1", "5") - kwh(after, "1", "5");
    assert_ratio("gpu 1 gi 5 : gi 1", d5 / d1, 3.0);
    assert_eq!(kwh(last, "1", "2"), 0.0);
    assert_eq!(instance(last, "1", "5", "gpu_mig_activity_ratio"), 1.0);

    // GPU 2 (all idle): 14/98 and 28/98 of the GPU, 56/98 unallocated; the GPM errors counted.
    let all = |s: &Scrape| s.value("gpu_energy_kwh_total", &[("gpu", "2")]);
    assert_ratio("gpu 2 gi 1", kwh(last, "2", "1") / all(last), 14.0 / 98.0);
    assert_ratio("gpu 2 gi 2", kwh(last, "2", "2") / all(last), 28.0 / 98.0);
    let rest = last.value("gpu_mig_unallocated_energy_kwh_total", &[("gpu", "2")]);
    assert_ratio("gpu 2 unallocated", rest / all(last), 56.0 / 98.0);
    let gpm_errors = [("gpu", "2"), ("kind", "gpm")];
    assert!(last.value("gpu_mig_sample_errors_total", &gpm_errors) >= 3.0);

    // GPUs 3 and 4: no MIG series; the unreadable MIG state is counted, the GPU still works.
    for gpu in ["3", "4"] {
        assert!(last
            .find("gpu_mig_energy_kwh_total", &[("gpu", gpu)])
            .is_empty());
        assert!(last
            .find("gpu_mig_unallocated_energy_kwh_total", &[("gpu", gpu)])
            .is_empty());
        assert!(last.value("gpu_energy_kwh_total", &[("gpu", gpu)]) > 0.0);
    }
    assert!(last
        .find("gpu_mig_sample_errors_total", &[("gpu", "3")])
        .is_empty());
    let state_errors = [("gpu", "4"), ("kind", "mig_state")];
    assert!(last.value("gpu_mig_sample_errors_total", &state_errors) >= 10.0);
    assert!(exporter
        .log()
        .contains("Could not read the GPU's MIG state"));

    crate::support::assert_promtool_clean(&last.text);
    assert_eq!(exporter.terminate().code(), Some(0));
}

/// An instance created at t = 1.5 and destroyed at t = 3: found without a restart, then kept
/// with its final totals (retention), while conservation holds throughout.
#[test]
fn instances_created_and_destroyed_while_running_are_found_and_kept() {
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\npower = const:400\nmig = yes\n\
         mig_instance = gi=1 sm=16\n\
         mig_instance = gi=2 sm=16 start=1.5 end=3 uuid=MIG-short\n\
         process = pid=1 gi=1\nprocess = pid=2 gi=2 start=1.5 end=3\n"
    );
    let exporter = start(&scenario, &[]);
    let scrapes = scrape_until(&exporter, epoch, 4.0);
    let (_, last) = scrapes.last().expect("scrapes");
    for (_, s) in &scrapes {
        assert_conserved(s, "0");
    }
    let at = |lo: f64, hi: f64| {
        scrapes
            .iter()
            .filter(|(t, _)| *t > lo && *t < hi)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
    };
    for s in at(0.2, 1.4) {
        assert!(s
            .find("gpu_mig_info", &[("mig_uuid", "MIG-short")])
            .is_empty());
        assert!(s
            .find("gpu_mig_energy_kwh_total", &[("gpu_instance", "2")])
            .is_empty());
    }
    let during = at(1.8, 2.8);
    assert!(during.len() >= 2, "no scrape while the instance existed");
    for s in &during {
        assert_eq!(
            s.find("gpu_mig_info", &[("mig_uuid", "MIG-short")]).len(),
            1
        );
    }
    let (a, b) = (during[0], during[during.len() - 1]);
    assert_ratio(
        "equal SMs, one process each: equal shares",
        kwh(b, "0", "2") - kwh(a, "0", "2"),
        kwh(b, "0", "1") - kwh(a, "0", "1"),
    );
    let gone = at(3.2, 10.0);
    assert!(gone.len() >= 2);
    for s in &gone {
        assert!(s
            .find("gpu_mig_info", &[("mig_uuid", "MIG-short")])
            .is_empty());
        assert!(s
            .find("gpu_mig_power_watts", &[("gpu_instance", "2")])
            .is_empty());
    }
    let kept: Vec<f64> = gone.iter().map(|s| kwh(s, "0", "2")).collect();
    assert!(
        kept[0] > 0.0 && kept.windows(2).all(|w| w[0] == w[1]),
        "{kept:?}"
    );
    assert!(
        kwh(last, "0", "1") > kwh(gone[0], "0", "1"),
        "gi 1 carries on"
    );
    assert_eq!(exporter.terminate().code(), Some(0));
}

/// Per-instance totals survive a restart through the state file: no counter decreases, and
/// instances + unallocated still equal the GPU, downtime included.
#[test]
fn mig_totals_survive_a_restart_and_stay_conserved() {
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\npower = square:100:500:0.8\nmig = yes\ngpm = yes\n\
         mig_instance = gi=1 sm=16 activity=const:30\n\
         mig_instance = gi=2 sm=32 activity=square:0:100:0.6\n"
    );
    let dir = temp_file("keep", "");
    let state = dir.with_file_name("state.json");
    let state_flag = format!("--state.file={}", state.display());
    let first = start(&scenario, &[&state_flag]);
    let before = scrape_until(&first, epoch, 1.5).pop().expect("scrape").1;
    assert_conserved(&before, "0");
    assert_eq!(first.terminate().code(), Some(0));
    std::thread::sleep(Duration::from_millis(500));
    let second = start(&scenario, &[&state_flag]);
    let scrapes = scrape_until(&second, epoch, 3.0);
    for (_, s) in &scrapes {
        assert_conserved(s, "0");
        for gi in ["1", "2"] {
            assert!(
                kwh(s, "0", gi) >= kwh(&before, "0", gi),
                "gi {gi} went back after restart"
            );
        }
        let rest = |s: &Scrape| s.value("gpu_mig_unallocated_energy_kwh_total", &[("gpu", "0")]);
        assert!(rest(s) >= rest(&before));
    }
    let last = &scrapes.last().expect("scrapes").1;
    assert!(kwh(last, "0", "2") > kwh(&before, "0", "2"));
    assert_eq!(second.terminate().code(), Some(0));
}
