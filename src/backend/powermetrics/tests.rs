//! The collector against the stand-in `tests/fake-powermetrics/powermetrics`, driven by
//! scenario files: samples are handed over in order, malformed ones skipped and counted, and a
//! child that exits, garbles or stalls is restarted and counted, without losing a sample.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::child::{Frames, Launch, Oversize, MAX_SAMPLE_BYTES};
use super::*;

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fake-powermetrics/powermetrics"
);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/powermetrics");

/// A scenario directory with `runs[i]` as the scenario of start i + 1; `{F}` stands for the
/// fixture directory.
fn scenario(name: &str, runs: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gce-powermetrics-{name}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (i, run) in runs.iter().enumerate() {
        let text = run.replace("{F}", FIXTURES);
        std::fs::write(dir.join((i + 1).to_string()), text).expect("write scenario");
    }
    dir
}

fn launch(dir: &Path, stall_after: Duration) -> Launch {
    Launch {
        program: PathBuf::from("/usr/bin/env"),
        args: vec![
            format!("FAKE_POWERMETRICS_DIR={}", dir.display()),
            FAKE.to_string(),
            "-i".into(),
            "100".into(),
        ],
        stall_after,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

/// Reads every domain until `done` holds for the averages collected so far (or 20 s pass).
fn collect(
    b: &mut PowermetricsBackend,
    done: impl Fn(&[Vec<PowerAverage>], ChildCounts) -> bool,
) -> Vec<Vec<PowerAverage>> {
    let mut seen = vec![Vec::new(); b.devices().len()];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&seen, b.child_counts().unwrap_or_default()) && Instant::now() < deadline {
        for (i, s) in seen.iter_mut().enumerate() {
            s.extend(b.read(i).expect("read").averages);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

fn avg(watts: f64, ns: u64) -> PowerAverage {
    PowerAverage {
        power: Watts(watts),
        over: Duration::from_nanos(ns),
    }
}

#[test]
fn frames_split_at_nul_across_reads() {
    let mut f = Frames::default();
    let mut got = Vec::new();
    f.push(b"one\0tw", |x| got.push(x.to_vec())).expect("fits");
    f.push(b"o\0\0three", |x| got.push(x.to_vec()))
        .expect("fits");
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec(), Vec::new()]);
    assert_eq!(f.rest(), Some(&b"three"[..]));
    f.push(b"\0\n", |_| {}).expect("fits");
    assert_eq!(f.rest(), None, "only whitespace left");
    let big = vec![b'x'; MAX_SAMPLE_BYTES + 1];
    assert_eq!(f.push(&big, |_| {}), Err(Oversize));
}

/// Apple Silicon: the first sample names the domains; every good sample reaches the sampler in
/// order across a garbage sample, a truncated one and the child's exit; both bad ones are
/// counted, as is the restart, and the restarted child's samples follow.
#[test]
fn samples_survive_garbage_truncation_and_restarts() {
    let dir = scenario(
        "restart",
        &[
            "sample {F}/apple-silicon.plist\ngarbage\nsample {F}/apple-silicon-busy.plist\n\
             truncated {F}/apple-silicon.plist\nexit 1\n",
            "sample {F}/apple-silicon-busy.plist\nhang\n",
        ],
    );
    let mut b = PowermetricsBackend::open(
        launch(&dir, Duration::from_secs(30)),
        Duration::from_secs(10),
        Duration::from_secs(30),
    )
    .expect("starts");
    let names: Vec<&str> = b.devices().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["cpu", "gpu", "ane"]);
    assert!(b.reports_averages());
    let seen = collect(&mut b, |s, _| s[0].len() >= 3);
    let (idle, busy) = (1_004_181_125, 998_250_000);
    assert_eq!(
        seen[0],
        [avg(2.978, idle), avg(15.2505, busy), avg(15.2505, busy)]
    );
    assert_eq!(
        seen[1],
        [avg(0.25, idle), avg(8.40025, busy), avg(8.40025, busy)]
    );
    assert_eq!(seen[2], [avg(0.0, idle), avg(1.2, busy), avg(1.2, busy)]);
    let counts = b.child_counts().expect("counts");
    assert_eq!(
        counts,
        ChildCounts {
            exited: 1,
            garbled: 0,
            stalled: 0,
            malformed: 2
        }
    );
    let args = std::fs::read_to_string(dir.join("args-2")).expect("second start");
    assert!(args.ends_with("-i 100\n"), "{args}");
}

/// Garbage several samples in a row restarts the child; a silent child is restarted too.
#[test]
fn garbled_and_silent_children_are_restarted() {
    let dir = scenario(
        "garbled",
        &[
            "sample {F}/intel.plist\ngarbage\ngarbage\ngarbage\nhang\n",
            "sample {F}/intel.plist\nhang\n",
            "sample {F}/intel.plist\nexit 0\n",
        ],
    );
    let mut b = PowermetricsBackend::open(
        launch(&dir, Duration::from_millis(1500)),
        Duration::from_secs(10),
        Duration::from_secs(30),
    )
    .expect("starts");
    let names: Vec<&str> = b.devices().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["package"]);
    let seen = collect(&mut b, |s, c| s[0].len() >= 3 && c.exited >= 1);
    assert_eq!(seen[0], [avg(12.5, 1_002_500_000); 3]);
    let counts = b.child_counts().expect("counts");
    assert_eq!(
        (counts.garbled, counts.stalled, counts.malformed),
        (1, 1, 3)
    );
}

/// A program that fails the way powermetrics does without root stops the collector at
/// start-up, with what it said.
#[test]
fn a_child_that_never_samples_fails_start_up_with_its_message() {
    let dir = scenario(
        "root",
        &["stderr powermetrics must be invoked as the superuser\nexit 1\n"],
    );
    let err = PowermetricsBackend::open(
        launch(&dir, Duration::from_secs(30)),
        Duration::from_millis(1500),
        Duration::from_secs(30),
    )
    .err()
    .expect("no sample");
    let text = err.to_string();
    assert!(
        text.contains("must be invoked as the superuser") && text.contains("needs root"),
        "{text}"
    );
}

/// Once no sample has come for the stale time, the domains' power is reported failed rather
/// than shown stale.
#[test]
fn power_goes_missing_when_samples_stop() {
    let dir = scenario("stale", &["sample {F}/intel.plist\nhang\n"]);
    let mut b = PowermetricsBackend::open(
        launch(&dir, Duration::from_secs(30)),
        Duration::from_secs(10),
        Duration::from_millis(300),
    )
    .expect("starts");
    let first = b.read(0).expect("read");
    assert_eq!(first.power, Some(Watts(12.5)));
    assert_eq!(first.averages.len(), 1);
    std::thread::sleep(Duration::from_millis(400));
    let later = b.read(0).expect("read");
    assert_eq!((later.power, later.failed), (None, vec![Field::Power]));
    assert!(later.averages.is_empty());
}
