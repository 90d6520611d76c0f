//! What an HTTP client sees: routes, status codes, content types, and the in-process server's
//! graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use gpu_carbon_exporter::cli::Cli;
use gpu_carbon_exporter::clock::SystemClock;
use gpu_carbon_exporter::config::Config;
use gpu_carbon_exporter::Exporter as InProcess;

use crate::support::{request, Exporter, Scrape};

#[test]
fn routes_status_codes_and_content_types() {
    let e = Exporter::start(&["--demo", "--web.telemetry-path=/gpu-metrics"], &[]);
    e.wait_ready();

    let landing = e.get("/");
    assert_eq!(landing.status, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        landing.body.contains(r#"href="/gpu-metrics""#),
        "{}",
        landing.body
    );

    let metrics = e.get("/gpu-metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!Scrape::parse(&metrics.body)
        .find("gpu_energy_kwh_total", &[])
        .is_empty());

    assert_eq!(
        e.get("/metrics").status,
        404,
        "only the configured path serves metrics"
    );
    assert_eq!(e.get("/-/healthy").status, 200);
    assert_eq!(e.get("/-/ready").status, 200);
    assert_eq!(e.get("/nope").status, 404);

    let post = request(e.addr, "POST", "/gpu-metrics");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(e.addr, "HEAD", "/gpu-metrics");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

/// `run`'s in-process form (as mini-redis tests it): port 0, one scrape, then the injected
/// shutdown future completes and `serve` returns after draining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_serve_and_graceful_shutdown() {
    let cli = Cli::try_parse_from([
        "gpu-carbon-exporter",
        "--demo",
        "--web.listen-address=127.0.0.1:0",
        "--sample.interval=50ms",
    ])
    .expect("flags");
    let config = Config::from_cli(cli).expect("config");
    let exporter = InProcess::start(&config, Arc::new(SystemClock::new()))
        .await
        .expect("start");
    let addr = exporter.local_addrs()[0];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(exporter.serve(async {
        let _ = stopped.await;
    }));
    let body = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            if request(addr, "GET", "/-/ready").status == 200 {
                return request(addr, "GET", "/metrics").body;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("never ready");
    })
    .await
    .expect("client");
    let gpus = Scrape::parse(&body).find("gpu_up", &[]).len();
    assert_eq!(gpus, 4);
    stop.send(()).expect("server still running");
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("serve returned after shutdown")
        .expect("serve task");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed after shutdown"
    );
}

/// With `--web.max-connections=2` and two idle clients holding both places, a third client
/// is served at once: the connection idle the longest is closed to make room, the other kept.
/// Open connections (and so memory) stay bounded, and idle clients can't keep a scrape out.
#[test]
fn open_connections_are_capped_and_idle_ones_make_room() {
    use std::io::{Read, Write};
    let e = Exporter::start(&["--demo", "--web.max-connections=2"], &[]);
    e.wait_ready(); // its connections are closed by now
    let mut hold1 = std::net::TcpStream::connect(e.addr).expect("connect 1");
    std::thread::sleep(Duration::from_millis(100));
    let mut hold2 = std::net::TcpStream::connect(e.addr).expect("connect 2");
    std::thread::sleep(Duration::from_millis(100));
    let mut third = std::net::TcpStream::connect(e.addr).expect("connect 3");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    third
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut buf = [0u8; 64];
    let n = third.read(&mut buf).expect("served");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    hold1
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(
        hold1.read(&mut buf).ok(),
        Some(0),
        "the longest idle was closed"
    );
    hold2
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(hold2.read(&mut buf).is_err(), "the other idle one was kept");
}

/// A client that starts a request and never finishes its headers is cut off after the
/// header-read timeout (10 s), so slow clients can't pin connections.
#[test]
fn slow_headers_are_cut_off() {
    use std::io::{Read, Write};
    let e = Exporter::start(&["--demo"], &[]);
    let mut slow = std::net::TcpStream::connect(e.addr).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("partial headers");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let closed = match slow.read(&mut buf) {
        Ok(0) | Err(_) => true,
        Ok(n) => String::from_utf8_lossy(&buf[..n]).contains("408"),
    };
    let waited = started.elapsed();
    assert!(closed, "connection still open");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(19),
        "closed after {waited:?}"
    );
}
