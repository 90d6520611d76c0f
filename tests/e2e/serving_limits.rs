//! Serving limits that protect scrapes, not the clients hogging the server, on the real binary:
//! idle connections make room for a scrape at `--web.max-connections`, plain HTTP on a TLS port
//! is told to use HTTPS, SIGTERM exits promptly however many clients stall, and host paths that
//! don't exist are warned about by flag. Loopback only, bounded in count and time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pki::{Client, Pki};
use crate::support::{request, tool, Exporter};

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

/// True once the server has closed `s` (EOF or reset); never blocks.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    let _ = s.set_nonblocking(true);
    let closed = match (&*s).read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    closed
}

/// The measurement: 1,100 clients that connect, send nothing and reconnect as soon as
/// they are closed, against the default cap of 1,024 connections. Scrapes still get through,
/// because a new connection takes the place of the longest-idle one.
#[test]
fn idle_reconnecting_clients_cannot_keep_scrapes_out() {
    let e = Exporter::start(&["--demo"], &[]);
    e.wait_ready();
    let (stop, reconnects) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let (connected, all_connected) = std::sync::mpsc::channel();
    let idlers = {
        let (stop, reconnects, addr) = (Arc::clone(&stop), Arc::clone(&reconnects), e.addr);
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = (0..1100)
                .filter_map(|_| TcpStream::connect(addr).ok())
                .collect();
            let _ = connected.send(());
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for s in held.iter_mut() {
                    if closed_by_server(s) && reconnects.load(Ordering::Relaxed) < 50_000 {
                        if let Ok(fresh) = TcpStream::connect(addr) {
                            *s = fresh;
                            reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            held.len()
        })
    };
    all_connected
        .recv_timeout(Duration::from_secs(60))
        .expect("idle clients connected");
    // Let the exporter take in what it will: it is at its cap.
    std::thread::sleep(Duration::from_millis(500));
    let mut ok = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        // Half Prometheus' default scrape timeout: a loopback scrape takes milliseconds, and
        // without eviction it would wait for the 10 s header timeout to free a place.
        if scrape(e.addr, Duration::from_secs(5)) == Some(200) {
            ok += 1;
        }
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let held = idlers.join().expect("idlers");
    let reconnects = reconnects.load(Ordering::Relaxed);
    eprintln!(
        "{held} idle reconnecting clients vs cap 1024: scrapes {ok}/10 (slowest {slowest:?}); \
         idle connections closed to make room and reopened: {reconnects}"
    );
    assert_eq!(held, 1100);
    assert_eq!(ok, 10, "log:\n{}", e.log());
    assert!(
        reconnects >= 76,
        "over the cap, idle clients were closed: {reconnects}"
    );
}

/// One GET of /metrics on a fresh connection; the status, or `None` without an answer.
fn scrape(addr: SocketAddr, timeout: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw.starts_with(b"HTTP/")
        .then(|| crate::support::parse_response(&raw).status)
}

/// 500 clients that stall (connected and silent, or halfway through their request headers or
/// TLS handshake) don't hold up SIGTERM: the exporter saves its state file and exits 0 while
/// they are all still connected, long before the 10 s header timeout would have cut them off.
#[test]
fn sigterm_with_500_stalled_connections_exits_without_waiting_for_them() {
    let pki = Pki::new();
    let web = pki.write("web.yml", TLS);
    let tls_flag = format!("--web.config.file={}", web.display());
    for (name, args, half_sent) in [
        (
            "plain",
            vec!["--demo"],
            &b"GET /metrics HTTP/1.1\r\nHost: x\r\n"[..],
        ),
        // The first bytes of a TLS ClientHello record.
        (
            "TLS",
            vec!["--demo", tls_flag.as_str()],
            &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..],
        ),
    ] {
        let state = pki.dir.join(format!("state-{name}.json"));
        let state_flag = format!("--state.file={}", state.display());
        let e = Exporter::start(&[args.as_slice(), &[state_flag.as_str()]].concat(), &[]);
        if name == "TLS" {
            Client::new(&pki).wait_ready(e.addr);
        } else {
            e.wait_ready();
        }
        let stalled: Vec<TcpStream> = (0..500)
            .map(|i| {
                let mut s = TcpStream::connect(e.addr).expect("connect");
                if i % 2 == 0 {
                    s.write_all(half_sent).expect("half a request");
                }
                s
            })
            .collect();
        // Let the exporter accept them all.
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        e.sigterm();
        let mut e = e;
        let status = e.exited_by(started, Duration::from_secs(9));
        let took = started.elapsed();
        eprintln!("{name}: SIGTERM with 500 stalled connections: exited in {took:?}");
        assert_eq!(status.code(), Some(0), "{name}: log:\n{}", e.log());
        assert!(e.log().contains("Stopped"), "{name}: log:\n{}", e.log());
        assert!(state.exists(), "{name}: state saved on the way out");
        // The stalled clients were all still connected when it exited; now they are let go.
        let closed = stalled.iter().filter(|s| closed_by_server(s)).count();
        assert_eq!(closed, 500, "{name}");
    }
}

/// Plain HTTP on a TLS port gets a 400 that says to use HTTPS, as Go servers answer; curl (a
/// real client) shows it.
#[test]
fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let pki = Pki::new();
    let flag = format!("--web.config.file={}", pki.write("web.yml", TLS).display());
    let e = Exporter::start(&["--demo", &flag], &[]);
    Client::new(&pki).wait_ready(e.addr);
    let plain = request(e.addr, "GET", "/metrics");
    assert_eq!(plain.status, 400);
    assert_eq!(
        plain.body,
        "Client sent an HTTP request to an HTTPS server.\n"
    );
    let Some(curl) = tool("curl", "apt-get install curl") else {
        return;
    };
    let url = format!("http://{}/metrics", e.addr);
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", &url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("Client sent an HTTP request to an HTTPS server.\n\n400"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(Client::new(&pki).get(e.addr, "/metrics").status, 200);
}

/// `--path.procfs`, `--path.sysfs` and `--path.rootfs` naming nothing are warned about at
/// start-up, by flag; the exporter still starts.
#[test]
fn missing_host_paths_are_warned_about_by_flag() {
    let e = Exporter::start(
        &[
            "--demo",
            "--path.procfs=/nonexistent/proc",
            "--path.sysfs=/nonexistent/sys",
            "--path.rootfs=/nonexistent/root",
        ],
        &[],
    );
    e.wait_ready();
    let log = e.log();
    for (flag, path) in [
        ("path.procfs", "/nonexistent/proc"),
        ("path.sysfs", "/nonexistent/sys"),
        ("path.rootfs", "/nonexistent/root"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("--{flag}={path}")))
            .unwrap_or_else(|| panic!("no warning for --{flag}; log:\n{log}"));
        assert!(
            line.contains("level=warn") && line.contains("no such directory"),
            "{line}"
        );
    }
    let quiet = Exporter::start(&["--demo"], &[]);
    quiet.wait_ready();
    assert!(
        !quiet.log().contains("no such directory"),
        "{}",
        quiet.log()
    );
}
