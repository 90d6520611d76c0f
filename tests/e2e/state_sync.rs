//! Commit before serve, seen from outside: every sample a scrape shows had its commit reach the
//! disk (`fdatasync`/`fsync` returned) before the scrape got it. The syncs are made slow (300 ms,
//! a slow disk) by a preloaded shim that logs when each began and returned, so a sample served
//! before its commit was durable would show up in a scrape long before any sync that began
//! after the sample was taken had returned.

use std::time::{Duration, Instant};

use crate::support::{now_unix, preload_shim, temp_file, Exporter};

/// Slow `fdatasync` and `fsync` that log `begin END` (Unix seconds) to `$SYNC_LOG`.
const SLOW_SYNC: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static int slow(const char *name, int fd) {
    double begin = unix_now();
    usleep(300000);
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    int r = real(fd);
    const char *path = getenv("SYNC_LOG");
    if (path) {
        char line[80];
        int n = snprintf(line, sizeof line, "%.6f %.6f\n", begin, unix_now());
        int log = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (log >= 0) {
            if (write(log, line, n) < 0) {}
            close(log);
        }
    }
    return r;
}
int fdatasync(int fd) { return slow("fdatasync", fd); }
int fsync(int fd) { return slow("fsync", fd); }
"#;

#[test]
fn every_served_sample_was_on_disk_before_it_was_served() {
    let shim = preload_shim("slowsync", SLOW_SYNC);
    let log = temp_file("sync.log", "");
    let state = log.with_file_name("state.json");
    let state_flag = format!("--state.file={}", state.display());
    let env = [
        ("LD_PRELOAD", shim.to_str().expect("utf-8")),
        ("SYNC_LOG", log.to_str().expect("utf-8")),
    ];
    let e = Exporter::start(&["--demo", "--sample.interval=100ms", &state_flag], &env);
    e.wait_ready();
    // Each distinct sample served, with when the first scrape showing it had its answer.
    let mut served: Vec<(f64, f64)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let sample = e
            .scrape()
            .value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
        let answered = now_unix();
        if served.last().is_none_or(|(s, _)| *s != sample) {
            served.push((sample, answered));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = std::fs::read_to_string(&log).expect("sync log");
    let syncs: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    assert!(served.len() >= 5, "samples served: {served:?}");
    assert!(syncs.len() >= served.len(), "syncs: {syncs:?}");
    for (sample, answered) in &served {
        let durable = syncs
            .iter()
            .any(|(begin, end)| begin >= sample && end <= answered);
        assert!(
            durable,
            "sample {sample} served by {answered}, but no sync that began after it had returned; syncs: {syncs:?}"
        );
    }
    assert_eq!(e.terminate().code(), Some(0));
}
