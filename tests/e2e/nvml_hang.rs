//! A GPU whose NVML calls hang (the fake's `hang_at`), on the real binary: sampling runs on its
//! own thread, so scrapes keep being answered from the last snapshot while a tick is stuck, and
//! the ticks the hang overran are skipped, not made up in a burst afterwards.

use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const JOULES_PER_KWH: f64 = 3.6e6;
const INTERVAL_S: f64 = 0.2;
/// GPU 0's readings hang for `HANG_S` from scenario time `HANG_AT`.
const HANG_AT: f64 = 3.0;
const HANG_S: f64 = 3.0;
/// GPU 1 is lost for `LOST_S` from just before the hang ends: every tick in that time counts
/// one `device_lost`, so the count is the number of ticks.
const LOST_S: f64 = 1.0;
const WATTS: [f64; 2] = [300.0, 200.0];

fn scenario(epoch: f64) -> String {
    let end = HANG_AT + HANG_S;
    format!(
        "epoch = {epoch}
[gpu]
power = const:{}
hang_at = {HANG_AT}:{HANG_S}
[gpu]
power = const:{}
lost_at = {}
lost_until = {}
",
        WATTS[0],
        WATTS[1],
        end - 0.1,
        end + LOST_S,
    )
}

/// One scrape of `/metrics` and one of `/-/healthy`, with when they were asked (scenario
/// time) and how long each took to answer.
struct Probe {
    at: f64,
    metrics: Scrape,
    metrics_took: Duration,
    healthy_status: u16,
    healthy_took: Duration,
}

impl Probe {
    fn sampled_at(&self, epoch: f64) -> f64 {
        last_sample(&self.metrics) - epoch
    }
}

fn last_sample(s: &Scrape) -> f64 {
    s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
}

fn kwh(s: &Scrape, gpu: &str) -> f64 {
    s.value("gpu_energy_kwh_total", &[("gpu", gpu)])
}

fn probe(exporter: &Exporter, epoch: f64) -> Probe {
    let at = now_unix() - epoch;
    let started = Instant::now();
    let metrics = exporter.scrape();
    let metrics_took = started.elapsed();
    let started = Instant::now();
    let healthy_status = exporter.get("/-/healthy").status;
    Probe {
        at,
        metrics,
        metrics_took,
        healthy_status,
        healthy_took: started.elapsed(),
    }
}

/// GPU 0 hangs for 3 s at a 200 ms interval. Meanwhile `/metrics` and `/-/healthy` answer
/// promptly from the last snapshot; afterwards sampling resumes at its interval (no burst of the
/// 14 ticks missed), and energy never went back and matches constant power × time.
#[test]
fn a_hung_gpu_stalls_neither_scrapes_nor_the_energy_count() {
    let epoch = now_unix();
    let file = temp_file("scenario.txt", &scenario(epoch));
    let exporter = Exporter::start(
        &[
            &format!("--nvml.library-path={}", fake_nvml_lib().display()),
            &format!("--sample.interval={}ms", INTERVAL_S * 1000.0),
        ],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    exporter.wait_ready();
    let ready_at = now_unix() - epoch;
    assert!(
        ready_at < HANG_AT - 0.5,
        "the exporter must be sampling before the hang; ready at t = {ready_at}"
    );

    let end = HANG_AT + HANG_S;
    let mut probes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = probe(&exporter, epoch);
        let done = p.sampled_at(epoch) > end + LOST_S + 1.0;
        probes.push(p);
        if done || Instant::now() > deadline {
            break;
        }
        // No pause around the hang's end, so the slow sample (shown for one interval) is seen.
        let at = now_unix() - epoch;
        if !(end - 0.3..end + 0.5).contains(&at) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let last = &probes.last().expect("probes").metrics;
    let resumed = last_sample(last) - epoch;
    assert!(
        resumed > end + LOST_S + 1.0,
        "sampling did not resume after the hang: last sample at t = {resumed}; log:\n{}",
        exporter.log()
    );

    // (a) Well inside the hang, every request was answered promptly, with the last snapshot
    // taken before the hang began.
    let during: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.at > HANG_AT + INTERVAL_S && p.at < end - 0.5)
        .collect();
    assert!(
        during.len() >= 10,
        "only {} probes during the hang",
        during.len()
    );
    let limit = Duration::from_secs(2);
    let before = during[0].sampled_at(epoch);
    assert!(
        before < HANG_AT + 0.1 && before > HANG_AT - 1.0,
        "during the hang the last sample should be from just before it, not t = {before:.3}"
    );
    for p in &during {
        assert!(
            p.metrics_took < limit,
            "/metrics took {:?} at t = {:.2}",
            p.metrics_took,
            p.at
        );
        assert_eq!(p.healthy_status, 200, "/-/healthy at t = {:.2}", p.at);
        assert!(
            p.healthy_took < limit,
            "/-/healthy took {:?}",
            p.healthy_took
        );
        assert_eq!(p.sampled_at(epoch), before, "a sample during the hang");
        assert_eq!(p.metrics.value("gpu_up", &[("gpu", "0")]), 1.0);
    }

    // (b) Counters never went back, and end at the energy of constant power over the time
    // between the first and the last scrape's samples: the counter covers the hang.
    for pair in probes.windows(2) {
        for gpu in ["0", "1"] {
            let (a, b) = (kwh(&pair[0].metrics, gpu), kwh(&pair[1].metrics, gpu));
            assert!(b >= a, "gpu {gpu} energy went back from {a} to {b}");
        }
    }
    let first = probes
        .iter()
        .find(|p| p.sampled_at(epoch) > 0.3)
        .expect("a scrape after the first samples");
    let elapsed = resumed - first.sampled_at(epoch);
    for (gpu, watts) in [("0", WATTS[0]), ("1", WATTS[1])] {
        let joules = (kwh(last, gpu) - kwh(&first.metrics, gpu)) * JOULES_PER_KWH;
        let want = watts * elapsed;
        assert!(
            (joules - want).abs() <= 0.01 * want,
            "gpu {gpu}: {joules:.1} J, want {watts} W × {elapsed:.3} s = {want:.1} J (±1 %)"
        );
        assert_eq!(
            last.value("gpu_up", &[("gpu", gpu)]),
            1.0,
            "gpu {gpu} up again"
        );
    }

    // A slow read is not an impossible one: GPU 0's counter moved by the hang's energy in what
    // the exporter measured as one interval, had it dated the readings at the tick's start.
    assert_eq!(
        last.value(
            "gpu_carbon_exporter_sample_errors_total",
            &[("gpu", "0"), ("kind", "implausible_energy")],
        ),
        0.0,
        "log:\n{}",
        exporter.log()
    );

    // (c) Ticks the hang overran were skipped. Every tick while GPU 1 was lost (the second
    // after the hang) counted one `device_lost`: about 5 at 200 ms, where making up the 14
    // ticks missed during the hang would add them.
    let lost = last.value(
        "gpu_carbon_exporter_sample_errors_total",
        &[("gpu", "1"), ("kind", "device_lost")],
    );
    let ticks = LOST_S / INTERVAL_S;
    assert!(
        lost >= 1.0 && lost <= ticks + 2.0,
        "{lost} ticks read GPU 1 in the {LOST_S} s after the hang; at {INTERVAL_S} s that is about {ticks}"
    );

    eprintln!("{lost} ticks in the {LOST_S} s after the hang");
    // And the exporter says so: the ticks that fell due during the hung one are counted as
    // skipped (about HANG_S / INTERVAL_S, less the part of an interval the tick began into
    // the hang), and no others.
    let skipped = last.value("gpu_carbon_exporter_skipped_samples_total", &[]);
    let due = HANG_S / INTERVAL_S;
    assert!(
        skipped >= due - 2.0 && skipped <= due + 1.0,
        "{skipped} samples counted as skipped; about {due} fell due during the hang"
    );

    // The exporter shows the slow sample (its duration spans the hang; it is dated when its
    // reads returned), for an interval: the next sample came one interval after it, not at once.
    let samples = distinct_samples(&probes);
    let (hung_at, hung_took) = samples
        .iter()
        .copied()
        .find(|(_, took)| *took > HANG_S - 2.0 * INTERVAL_S)
        .unwrap_or_else(|| {
            panic!("no sample seen that shows the hang (or one came right after it): {samples:?}")
        });
    assert!(
        hung_at - epoch >= end,
        "the hung sample is dated t = {:.3}, before its reads returned (t >= {end})",
        hung_at - epoch
    );
    eprintln!("the hung sample took {hung_took:.3} s");
    let next = samples
        .iter()
        .map(|(at, _)| *at)
        .find(|at| *at > hung_at)
        .expect("a sample after the hung one");
    assert!(
        next - hung_at >= INTERVAL_S / 2.0,
        "a sample {:.3} s after the hung one: missed ticks were made up",
        next - hung_at
    );

    let status = exporter.terminate();
    assert_eq!(status.code(), Some(0), "clean shutdown on SIGTERM");
}

/// `(unix time, duration)` of each distinct sample the probes saw, in order.
fn distinct_samples(probes: &[Probe]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for p in probes {
        let at = last_sample(&p.metrics);
        if out.last().is_none_or(|(prev, _)| *prev != at) {
            let took = p
                .metrics
                .value("gpu_carbon_exporter_sample_duration_seconds", &[]);
            out.push((at, took));
        }
    }
    out
}
