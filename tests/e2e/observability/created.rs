//! OpenMetrics `_created` read by a real Prometheus 3 with created-timestamp zero ingestion
//! (`--enable-feature=created-timestamp-zero-ingestion`): a workload that starts inside a
//! window is counted from zero, so `increase()` no longer misses its first scrape's energy.
//!
//! Debian 12's Prometheus (2.42) has no such feature, and 2.53 has the flag but reads created
//! timestamps from protobuf only (it stores `_created` from OpenMetrics text as series of their
//! own, as 2.42 does; measured, see docs/exposition.md). So this test needs a Prometheus 3 on
//! `PATH` as `prometheus3`, which `.ci/run` installs with `scripts/fetch-prometheus3.sh`.

use super::prometheus::Prometheus;
use super::JOB;
use crate::attribution::{assert_rel, start_by_user, Host, GPU_A};
use crate::support::{now_unix, request_with, tool, Scrape};

/// What Prometheus 3 asks for when created timestamps are on (protobuf first, which the
/// exporter doesn't serve, then OpenMetrics).
const ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2";

#[test]
fn prometheus_3_counts_a_workload_that_starts_mid_window_from_zero() {
    let Some(bin) = tool("prometheus3", "scripts/fetch-prometheus3.sh") else {
        return;
    };
    let host = Host::new("created");
    host.process(
        601,
        1001,
        "0::/user.slice/user-1001.slice/session-1.scope\n",
    )
    .process(
        602,
        1002,
        "0::/user.slice/user-1002.slice/session-2.scope\n",
    );
    // alice runs from the start; bob starts 4 s later, after Prometheus scraped a few times.
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:300\n\
         process = pid=601 sm=const:50\nprocess = pid=602 sm=const:50 start=4\n"
    );
    let exporter = start_by_user(&host, &scenario);
    let flags = ["--enable-feature=created-timestamp-zero-ingestion"];
    let prom = Prometheus::start_with(&bin, exporter.addr, &flags);
    let bob = format!("gpu_workload_energy_kwh_total{{job=\"{JOB}\",user=\"bob\"}}");
    prom.wait_for("a few scrapes of bob's series", || {
        !prom
            .query(&format!("count_over_time({bob}[1h]) >= 4"))
            .is_empty()
    });

    // The exporter's `_created` for bob, as Prometheus reads it.
    let om = request_with(exporter.addr, "GET", "/metrics", &[("Accept", ACCEPT)]);
    assert!(om
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/openmetrics-text")));
    let om = Scrape::parse(&om.body.replace("# EOF\n", ""));
    let created = om.value("gpu_workload_energy_kwh_created", &[("user", "bob")]);
    assert!(
        created > epoch + 3.9,
        "bob started at scenario time 4: {created}"
    );

    // Prometheus stored a zero at bob's `_created` (to its millisecond), before his first
    // scraped value; and no `_created` series of its own.
    let series = prom.query(&format!("{bob}[1h]"));
    let samples: Vec<(f64, f64)> = series[0]["values"]
        .as_array()
        .expect("matrix values")
        .iter()
        .map(|v| {
            let t = v[0].as_f64().expect("timestamp");
            let value = v[1].as_str().and_then(|s| s.parse().ok()).expect("value");
            (t, value)
        })
        .collect();
    assert_eq!(samples[0].1, 0.0, "{samples:?}");
    assert!(
        (samples[0].0 - created).abs() < 1e-3,
        "{samples:?} vs {created}"
    );
    assert!(samples[1].1 > 0.0, "{samples:?}");
    let stored = prom.try_query(&format!("{{job=\"{JOB}\",__name__=~\".+_created\"}}"));
    assert!(stored.is_err(), "_created stored as series: {stored:?}");

    // So increase() over a window that began before bob did, read at his last scrape, is all
    // his energy: nothing of his first scrape interval is missed.
    let (last_t, last_v) = samples[samples.len() - 1];
    let increase = prom
        .try_query_at(&format!("increase({bob}[1h])"), Some(last_t))
        .expect("increase");
    let increase: f64 = increase[0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("value");
    assert_rel("increase() from bob's start", increase, last_v, 1e-9);
    let _ = std::fs::remove_dir_all(&host.dir);
}
