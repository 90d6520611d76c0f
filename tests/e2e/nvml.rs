//! The real binary on the real NVML code path, loading the fake `libnvidia-ml.so` through
//! `--nvml.library-path`. Expected energies are computed here in closed form from each
//! scenario's power profile, independently of the fake's own arithmetic.

use std::time::{Duration, Instant};

use crate::support::{
    fake_nvml_lib, now_unix, run_to_exit, square_energy, temp_file, Exporter, Scrape,
};

const JOULES_PER_KWH: f64 = 3.6e6;
const PUE: f64 = 1.25;
const INTENSITY: f64 = 400.0;

/// Energy (J) of a piecewise-linear trace over [0, t] (flat before the first and after the
/// last point).
fn trace_energy(points: &[(f64, f64)], t: f64) -> f64 {
    let mut e = points[0].1 * t.min(points[0].0);
    for w in points.windows(2) {
        let ((t0, p0), (t1, p1)) = (w[0], w[1]);
        if t <= t0 {
            break;
        }
        let end = t.min(t1);
        let p_end = p0 + (p1 - p0) * (end - t0) / (t1 - t0);
        e += (p0 + p_end) / 2.0 * (end - t0);
    }
    let (t_last, p_last) = points[points.len() - 1];
    e + p_last * (t - t_last).max(0.0)
}

const RAMP: [(f64, f64); 3] = [(0.0, 100.0), (2.5, 500.0), (5.0, 200.0)];

fn scenario(epoch: f64) -> String {
    format!(
        "epoch = {epoch}
[gpu]
name = NVIDIA H100 80GB HBM3
uuid = GPU-aaaaaaaa-0000-0000-0000-000000000000
power = square:150:450:1
util = square:0:90:1
error_at = 3:0.25
[gpu]
name = NVIDIA A10
uuid = GPU-bbbbbbbb-0000-0000-0000-000000000001
power = trace:0=100,2.5=500,5=200
counter = no
limit_w = 600
glitch_at = 2:0.3
[gpu]
uuid = GPU-cccccccc-0000-0000-0000-000000000002
power = const:250
reset_at = 2
[gpu]
uuid = GPU-dddddddd-0000-0000-0000-000000000003
power = const:320
lost_at = 1.5
lost_until = 3
"
    )
}

fn kwh(s: &Scrape, gpu: &str) -> f64 {
    s.value("gpu_energy_kwh_total", &[("gpu", gpu)])
}

fn co2e(s: &Scrape, gpu: &str) -> f64 {
    s.value("gpu_co2e_grams_total", &[("gpu", gpu)])
}

fn errors(s: &Scrape, gpu: &str, kind: &str) -> f64 {
    s.value(
        "gpu_carbon_exporter_sample_errors_total",
        &[("gpu", gpu), ("kind", kind)],
    )
}

fn assert_close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: got {got}, want {want} (±{:.2}%)",
        rel * 100.0
    );
}

/// Four fake GPUs, each with one fault, sampled at 100 ms for about 5.5 s. Every counter must
/// match the analytic energy of its profile within 1 %, never decrease, and the faults must
/// show in the metrics a user would look at.
#[test]
fn energy_matches_the_analytic_integral_through_faults() {
    let epoch = now_unix();
    let file = temp_file("scenario.txt", &scenario(epoch));
    let lib = fake_nvml_lib();
    let exporter = Exporter::start(
        &[
            &format!("--nvml.library-path={}", lib.display()),
            "--sample.interval=100ms",
            &format!("--carbon.intensity={INTENSITY}"),
            &format!("--carbon.pue={PUE}"),
        ],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    exporter.wait_ready();

    let mut scrapes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = exporter.scrape();
        let t = s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]) - epoch;
        scrapes.push((t, s));
        if t > 5.6 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(70));
    }
    let (t_first, first) = scrapes
        .iter()
        .find(|(t, _)| *t > 0.3)
        .expect("a scrape after the first samples");
    let (t_last, last) = scrapes.last().expect("scrapes");
    assert!(
        *t_last > 5.0,
        "sampling stalled at t={t_last}; log:\n{}",
        exporter.log()
    );

    // Counters never go backwards, through the reset, the outage, errors and glitches.
    for pair in scrapes.windows(2) {
        for gpu in ["0", "1", "2", "3"] {
            let (a, b) = (kwh(&pair[0].1, gpu), kwh(&pair[1].1, gpu));
            assert!(b >= a, "gpu {gpu} energy went back from {a} to {b}");
            assert!(co2e(&pair[1].1, gpu) >= co2e(&pair[0].1, gpu));
        }
    }

    let analytic: [(&str, f64); 4] = [
        (
            "0",
            square_energy(150.0, 450.0, 1.0, *t_last) - square_energy(150.0, 450.0, 1.0, *t_first),
        ),
        (
            "1",
            trace_energy(&RAMP, *t_last) - trace_energy(&RAMP, *t_first),
        ),
        ("2", 250.0 * (t_last - t_first)),
        ("3", 320.0 * (t_last - t_first)),
    ];
    for (gpu, joules) in analytic {
        let measured = kwh(last, gpu) - kwh(first, gpu);
        eprintln!(
            "gpu {gpu}: measured {:.3} J, analytic {joules:.3} J, error {:+.4}%",
            measured * JOULES_PER_KWH,
            (measured * JOULES_PER_KWH - joules) / joules * 100.0
        );
        assert_close(
            &format!("gpu {gpu} kWh"),
            measured,
            joules / JOULES_PER_KWH,
            0.01,
        );
        let grams = co2e(last, gpu) - co2e(first, gpu);
        assert_close(
            &format!("gpu {gpu} CO2e"),
            grams,
            measured * PUE * INTENSITY,
            1e-9,
        );
    }

    // Energy sources as detected at start-up.
    for (gpu, source) in [
        ("0", "counter"),
        ("1", "integrated"),
        ("2", "counter"),
        ("3", "counter"),
    ] {
        let info = last.find("gpu_info", &[("gpu", gpu), ("energy_source", source)]);
        assert_eq!(info.len(), 1, "gpu {gpu} should be {source}");
    }
    assert_eq!(last.find("gpu_info", &[("name", "NVIDIA A10")]).len(), 1);

    // GPU 0: idle energy is the low half of the square wave (utilization 0 while at 150 W).
    let idle = last.value("gpu_idle_energy_kwh_total", &[("gpu", "0")]);
    let total = kwh(last, "0");
    assert!(
        idle > 0.1 * total && idle < 0.4 * total,
        "idle {idle} of {total}"
    );
    // GPU 0: the transient error window was counted and the GPU recovered.
    assert!(errors(last, "0", "read_error") >= 1.0);
    assert_eq!(last.value("gpu_up", &[("gpu", "0")]), 1.0);

    // GPU 1: the 6 kW glitch was rejected and counted, and bridged (energy still within 1 %).
    assert!(errors(last, "1", "implausible_power") >= 1.0);
    let peak = scrapes
        .iter()
        .filter_map(|(_, s)| {
            s.find("gpu_power_watts", &[("gpu", "1")])
                .first()
                .map(|x| x.value)
        })
        .fold(0.0, f64::max);
    assert!(
        peak <= 600.0,
        "an impossible power reading was exported: {peak} W"
    );

    // GPU 2: one counter reset, energy carried on.
    assert_eq!(
        last.value("gpu_energy_hardware_resets_total", &[("gpu", "2")]),
        1.0
    );

    // GPU 3: down while lost, with its counters held and no power reported; back afterwards.
    let during: Vec<&Scrape> = scrapes
        .iter()
        .filter(|(t, _)| *t > 1.7 && *t < 2.8)
        .map(|(_, s)| s)
        .collect();
    assert!(!during.is_empty(), "no scrape while GPU 3 was lost");
    for s in &during {
        assert_eq!(s.value("gpu_up", &[("gpu", "3")]), 0.0);
        assert!(s.find("gpu_power_watts", &[("gpu", "3")]).is_empty());
        assert_eq!(
            s.value("gpu_up", &[("gpu", "2")]),
            1.0,
            "other GPUs carry on"
        );
    }
    let held: Vec<f64> = during.iter().map(|s| kwh(s, "3")).collect();
    assert!(
        held.windows(2).all(|w| w[0] == w[1]),
        "counter moved while lost: {held:?}"
    );
    assert_eq!(last.value("gpu_up", &[("gpu", "3")]), 1.0, "re-attached");
    assert!(errors(last, "3", "device_lost") >= 5.0);

    crate::support::assert_promtool_clean(&last.text);
    let status = exporter.terminate();
    assert_eq!(status.code(), Some(0), "clean shutdown on SIGTERM");
}

#[test]
fn driver_not_loaded_exits_1_naming_library_error_and_demo() {
    let file = temp_file("scenario.txt", "init = driver_not_loaded\n[gpu]\n");
    let lib = fake_nvml_lib();
    let (status, out) = run_to_exit(
        &[&format!("--nvml.library-path={}", lib.display())],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&lib.display().to_string()),
        "names the library: {out}"
    );
    assert!(
        out.to_lowercase().contains("driver"),
        "names the NVML error: {out}"
    );
    assert!(out.contains("--demo"), "hints at the demo: {out}");
    assert!(
        !out.contains("Listening"),
        "must not fall back to anything: {out}"
    );
    // The cause once, then the hint (not the chain of sources repeated after it).
    let lower = out.to_lowercase();
    assert_eq!(lower.matches("not loaded").count(), 1, "cause once: {out}");
    assert_eq!(
        out.matches("could not initialise NVML").count(),
        1,
        "cause once: {out}"
    );
    let cause = lower.find("not loaded").unwrap_or(usize::MAX);
    let hint = lower.find("is the nvidia driver installed").unwrap_or(0);
    assert!(cause < hint, "cause before the hint: {out}");
}

#[test]
fn missing_library_exits_1() {
    let (status, out) = run_to_exit(&["--nvml.library-path=/nonexistent/libnvidia-ml.so.1"], &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("/nonexistent/libnvidia-ml.so.1"), "{out}");
    assert!(out.contains("--demo"), "{out}");
}

#[test]
fn no_gpus_exits_1() {
    let file = temp_file("scenario.txt", "init = ok\n");
    let lib = fake_nvml_lib();
    let (status, out) = run_to_exit(
        &[&format!("--nvml.library-path={}", lib.display())],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("found no GPU"), "{out}");
}

/// Two GPUs without a power sensor or energy counter, 50 % busy: the T4 is estimated from the
/// built-in table (70 W rated, 7 W idle: 38.5 W), the unknown model gets no energy at all —
/// unless a model is given by flags (200 W rated, 20 W idle: 110 W for both).
#[test]
fn gpus_without_a_power_sensor_are_estimated_and_labelled() {
    let file = temp_file(
        "scenario.txt",
        "[gpu]\nname = Tesla T4\npower = unsupported\nutil = const:50\n\
         [gpu]\nname = NVIDIA Mystery\npower = unsupported\nutil = const:50\n",
    );
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let env = [("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))];
    let watts_over = |e: &Exporter, gpu: &str| {
        let a = e.scrape();
        std::thread::sleep(Duration::from_millis(1200));
        let b = e.scrape();
        let dt = b.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
            - a.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
        ((kwh(&b, gpu) - kwh(&a, gpu)) * JOULES_PER_KWH / dt, b)
    };

    let e = Exporter::start(&[&lib, "--sample.interval=100ms"], &env);
    e.wait_ready();
    let (t4_watts, s) = watts_over(&e, "0");
    assert_close("T4 estimated power", t4_watts, 38.5, 0.01);
    assert_eq!(s.value("gpu_power_watts", &[("gpu", "0")]), 38.5);
    assert_eq!(
        s.find("gpu_info", &[("gpu", "0"), ("energy_source", "estimated")])
            .len(),
        1
    );
    assert_eq!(
        s.find("gpu_info", &[("gpu", "1"), ("energy_source", "none")])
            .len(),
        1
    );
    assert_eq!(kwh(&s, "1"), 0.0, "no model, no made-up energy");
    assert!(
        e.log().contains("ESTIMATED"),
        "the estimate is announced: {}",
        e.log()
    );
    drop(e);

    let e = Exporter::start(
        &[
            &lib,
            "--sample.interval=100ms",
            "--estimate.rated-watts=200",
            "--estimate.idle-watts=20",
        ],
        &env,
    );
    e.wait_ready();
    for gpu in ["0", "1"] {
        let (watts, s) = watts_over(&e, gpu);
        assert_close(&format!("gpu {gpu} flag-model power"), watts, 110.0, 0.01);
        assert_eq!(
            s.find("gpu_info", &[("gpu", gpu), ("energy_source", "estimated")])
                .len(),
            1
        );
    }
}

/// A GPU without an energy counter is integrated from power readings that average at most
/// 1 s, so sampling it slower than 1 s is warned about at start; with a counter it is not.
#[test]
fn sampling_integrated_gpus_slower_than_1s_is_warned_about() {
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let warning = "sampling slower than 1s misses load between samples";
    for (counter, interval, warned) in [
        ("no", "2s", true),
        ("no", "1s", false),
        ("yes", "2s", false),
    ] {
        let file = temp_file(
            "scenario.txt",
            &format!("[gpu]\npower = const:200\ncounter = {counter}\n"),
        );
        let env = [("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))];
        let flag = format!("--sample.interval={interval}");
        let e = Exporter::start(&[&lib, &flag], &env);
        e.wait_ready();
        assert_eq!(
            e.log().contains(warning),
            warned,
            "counter {counter}, every {interval}: {}",
            e.log()
        );
    }
}
