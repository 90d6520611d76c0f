//! The telemetry path as Prometheus' ecosystem expects it: gzip when accepted, OpenMetrics
//! 1.0.0 when preferred (checked with the Python client's own OpenMetrics parser), encoded once
//! per sample, and `_created` that survives a restart with the ledger.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::{pipe, temp_file, tool, Exporter, Scrape};

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

struct Raw {
    headers: String,
    body: Vec<u8>,
}

/// GET /metrics with `headers`, the body kept as bytes (it may be gzip).
fn get(addr: SocketAddr, headers: &[(&str, &str)]) -> Raw {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Raw { headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line]).expect("hex").trim(), 16)
            .expect("size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[line + 2..line + 2 + size]);
        b = &b[line + 4 + size..];
    }
}

fn gunzip(b: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut text)
        .expect("valid gzip");
    text
}

fn start(extra: &[&str]) -> Exporter {
    // One sample an hour: every request below sees the same snapshot.
    let mut args = vec![
        "--demo",
        "--sample.interval=5m",
        "--embodied.kg-per-gpu=150",
    ];
    args.extend_from_slice(extra);
    let e = Exporter::start(&args, &[]);
    e.wait_ready();
    e
}

#[test]
fn gzip_when_accepted_and_the_same_bytes_for_one_sample() {
    let e = start(&[]);
    let plain = get(e.addr, &[]);
    assert!(plain
        .headers
        .contains("content-type: text/plain; version=0.0.4"));
    assert!(!plain.headers.contains("content-encoding"));
    assert!(plain.headers.contains("vary: accept, accept-encoding"));
    let zipped = get(e.addr, &[("Accept-Encoding", "gzip")]);
    assert!(
        zipped.headers.contains("content-encoding: gzip"),
        "{}",
        zipped.headers
    );
    assert!(zipped.body.len() * 3 < plain.body.len(), "compressed");
    std::thread::sleep(Duration::from_millis(200));
    let again = get(e.addr, &[]);
    // Process metrics moved on meanwhile, yet the bytes are the same: encoded once a sample.
    assert_eq!(again.body, plain.body);
    assert_eq!(gunzip(&zipped.body).as_bytes(), plain.body.as_slice());
    let refused = get(e.addr, &[("Accept-Encoding", "gzip;q=0, br")]);
    assert!(!refused.headers.contains("content-encoding"));
}

#[test]
fn prometheus_gets_openmetrics_that_an_independent_parser_accepts() {
    let e = start(&[]);
    let text = String::from_utf8(get(e.addr, &[]).body).expect("utf-8");
    let om = get(e.addr, &[("Accept", PROMETHEUS_ACCEPT)]);
    assert!(
        om.headers
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        om.headers
    );
    let om = String::from_utf8(om.body).expect("utf-8");
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE gpu_energy_kwh counter\n# UNIT gpu_energy_kwh kwh\n"));
    assert!(om.contains("# UNIT gpu_power_watts watts\n"));
    assert!(om.contains("# UNIT gpu_carbon_intensity_grams_per_kwh grams_per_kwh\n"));
    // The same values as the text format, plus _created for the device and process counters.
    let t = Scrape::parse(&text);
    let o = Scrape::parse(&om.replace("# EOF\n", ""));
    for s in t.series.iter().filter(|s| s.name.starts_with("gpu_")) {
        let labels = label_pairs(s);
        assert_eq!(o.value(&s.name, &labels), s.value, "{}", s.name);
    }
    for uuid_series in t.find("gpu_energy_kwh_total", &[]) {
        let uuid = uuid_series.label("uuid").expect("uuid");
        let created = o.value("gpu_energy_kwh_created", &[("uuid", uuid)]);
        let sampled = t.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
        assert!(
            created > 1.0e9 && created <= sampled,
            "{created} vs {sampled}"
        );
        assert_eq!(
            o.value("gpu_embodied_co2e_grams_created", &[("uuid", uuid)]),
            created
        );
    }
    assert_eq!(o.find("process_cpu_seconds_created", &[]).len(), 1);
    // Every workload series too (the demo's workloads start with the exporter).
    let workloads = o.find("gpu_workload_energy_kwh_total", &[]);
    assert!(!workloads.is_empty());
    let started = o.value("process_start_time_seconds", &[]);
    for w in workloads {
        let labels = label_pairs(w);
        let created = o.value("gpu_workload_energy_kwh_created", &labels);
        assert!(created >= started.floor(), "{created} vs {started}");
        assert_eq!(o.value("gpu_workload_co2e_grams_created", &labels), created);
    }
    // And the demo's MIG GPU: each instance, and the GPU's unallocated share.
    let instances = o.find("gpu_mig_energy_kwh_total", &[]);
    assert_eq!(instances.len(), 3);
    for i in instances {
        let key = [
            ("uuid", i.label("uuid").expect("uuid")),
            ("gpu_instance", i.label("gpu_instance").expect("gi")),
        ];
        let created = o.value("gpu_mig_energy_kwh_created", &key);
        assert!(created >= started.floor(), "{created} vs {started}");
        assert_eq!(o.value("gpu_mig_co2e_grams_created", &key), created);
    }
    assert_eq!(
        o.find("gpu_mig_unallocated_energy_kwh_created", &[]).len(),
        1
    );

    let Some(python) = tool("python3", "apt-get install python3") else {
        return;
    };
    let check = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        fams = {f.name: f for f in parse(sys.stdin.read())}\n\
        e = fams['gpu_energy_kwh']\n\
        assert e.type == 'counter' and e.unit == 'kwh', (e.type, e.unit)\n\
        names = {s.name for s in e.samples}\n\
        assert names == {'gpu_energy_kwh_total', 'gpu_energy_kwh_created'}, names\n\
        print(len(fams), 'families')\n";
    let out = pipe(&python, &["-c", check], om.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus_client is required under CI (pip install prometheus_client)"
        );
        eprintln!("SKIP: prometheus_client not installed");
        return;
    }
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused it: {stderr}"
    );
}

/// A device's `_created` is kept in the ledger: after a restart its counters continue and so
/// does their creation time, so Prometheus never reads the restored total as a new series.
#[test]
fn created_survives_a_restart_with_the_ledger() {
    let state = temp_file("placeholder", "").with_file_name("state.json");
    let flag = format!("--state.file={}", state.display());
    let om = |e: &Exporter| {
        Scrape::parse(
            &String::from_utf8(get(e.addr, &[("Accept", "application/openmetrics-text")]).body)
                .expect("utf-8")
                .replace("# EOF\n", ""),
        )
    };
    let first = start(&[&flag]);
    let before = om(&first);
    assert_eq!(first.terminate().code(), Some(0));
    std::thread::sleep(Duration::from_millis(300));
    let second = start(&[&flag]);
    let after = om(&second);
    for s in before.find("gpu_energy_kwh_created", &[]) {
        let uuid = s.label("uuid").expect("uuid");
        assert_eq!(
            after.value("gpu_energy_kwh_created", &[("uuid", uuid)]),
            s.value
        );
    }
    let workloads = before.find("gpu_workload_energy_kwh_created", &[]);
    assert!(!workloads.is_empty());
    for w in workloads {
        let labels = label_pairs(w);
        assert_eq!(
            after.value("gpu_workload_energy_kwh_created", &labels),
            w.value,
            "{labels:?}"
        );
    }
    let mig = before.find("gpu_mig_energy_kwh_created", &[]);
    assert_eq!(mig.len(), 3);
    for i in mig {
        let key = [
            ("uuid", i.label("uuid").expect("uuid")),
            ("gpu_instance", i.label("gpu_instance").expect("gi")),
        ];
        assert_eq!(after.value("gpu_mig_energy_kwh_created", &key), i.value);
    }
    let p0 = before.value("process_cpu_seconds_created", &[]);
    let p1 = after.value("process_cpu_seconds_created", &[]);
    assert!(p1 > p0, "per-process counters start with their process");
}

/// A scraped series' labels as the `(name, value)` pairs `Scrape::value` matches on.
fn label_pairs(s: &crate::support::Series) -> Vec<(&str, &str)> {
    s.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
