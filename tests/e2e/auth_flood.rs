//! Basic authentication under a password-guessing flood, on the real binary with a realistic
//! bcrypt cost (10): 60 clients send wrong passwords as fast as they get answers while
//! Prometheus-like clients scrape with the right one. Every correctly authenticated scrape
//! must succeed within Prometheus' scrape timeout once the password is remembered, and a new
//! client's first scrape must get in too; 200 clients starting at once with the right
//! password must all get in. Loopback only; the flood stops by itself after a bounded time and
//! count.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::pki::basic;
use crate::support::{parse_response, temp_file, Exporter};

const COST: u32 = 10;
/// Prometheus' default scrape timeout.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

fn start(users: &[(&str, &str)]) -> Exporter {
    let mut text = "basic_auth_users:\n".to_string();
    for (user, password) in users {
        let hash = bcrypt::hash(password, COST).expect("bcrypt");
        text.push_str(&format!("  {user}: {hash}\n"));
    }
    let path = temp_file("web.yml", &text);
    let flag = format!("--web.config.file={}", path.display());
    Exporter::start(&["--demo", "--sample.interval=100ms", &flag], &[])
}

/// One request on a fresh connection; the status, or 0 if none came within `timeout`.
fn get(addr: SocketAddr, path: &str, auth: &str, timeout: Duration) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: {auth}\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    if raw.starts_with(b"HTTP/") {
        parse_response(&raw).status
    } else {
        0
    }
}

/// Answers the guessers got, by kind.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

/// `n` clients sending wrong passwords for `user` back to back until `stop` (or 60 s, or
/// 50,000 guesses in all). A guess answered at once without a check (503) is followed by a
/// 20 ms pause, so that the flood lasts as long as the scrapes whatever the server does.
fn flood(
    addr: SocketAddr,
    user: &'static str,
    n: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                    && tally.sent.fetch_add(1, Ordering::Relaxed) < 50_000
                {
                    k += 1;
                    let guess = basic(user, &format!("guess-{i}-{k}"));
                    let counter = match get(addr, "/metrics", &guess, Duration::from_secs(30)) {
                        401 => &tally.refused,
                        503 => {
                            std::thread::sleep(Duration::from_millis(20));
                            &tally.busy
                        }
                        _ => &tally.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

#[test]
fn every_correct_scrape_succeeds_under_a_password_guessing_flood() {
    let e = start(&[("prometheus", "right"), ("agent", "also-right")]);
    let (good, newcomer) = (basic("prometheus", "right"), basic("agent", "also-right"));
    // Prometheus has been scraping before the flood: its password is remembered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(e.addr, "/-/ready", &good, SCRAPE_TIMEOUT) != 200 {
        assert!(Instant::now() < deadline, "never ready; log:\n{}", e.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let guessers = flood(e.addr, "prometheus", 60, &stop, &tally);
    // Let the queue of password checks fill up.
    while tally.refused.load(Ordering::Relaxed) < 30 {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        statuses.push(get(e.addr, "/metrics", &good, SCRAPE_TIMEOUT));
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A client never seen before: its first check waits in line behind the guesses (at most
    // 64 of them; how long that takes depends on the machine, so the wait is reported, and
    // only a refusal or no answer at all fails the test).
    let started = Instant::now();
    let first = get(e.addr, "/metrics", &newcomer, 3 * SCRAPE_TIMEOUT);
    let newcomer_wait = started.elapsed();
    let again = get(e.addr, "/metrics", &newcomer, SCRAPE_TIMEOUT);

    stop.store(true, Ordering::Relaxed);
    for g in guessers {
        g.join().expect("guesser");
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    eprintln!(
        "flood: {} guesses ({} refused 401, {} busy 503, {} other); correct scrapes {ok}/{} \
         (slowest {slowest:?}); newcomer's first scrape {first} after {newcomer_wait:?}, then {again}",
        tally.sent.load(Ordering::Relaxed).min(50_000),
        tally.refused.load(Ordering::Relaxed),
        tally.busy.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
        statuses.len(),
    );
    assert_eq!(ok, statuses.len(), "{statuses:?}; log:\n{}", e.log());
    assert_eq!((first, again), (200, 200), "newcomer");
    assert_eq!(
        tally.other.load(Ordering::Relaxed),
        0,
        "a guess got in or failed"
    );
}

/// The second measurement: 200 clients whose first request, all at once, carries the
/// right password. One bcrypt run serves them all; none is turned away.
#[test]
fn two_hundred_simultaneous_first_requests_all_get_in() {
    let e = start(&[("prometheus", "right")]);
    // Serving (anonymous requests refused), and the right password not yet checked.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(e.addr, "/-/healthy", "none", SCRAPE_TIMEOUT) != 401 {
        assert!(Instant::now() < deadline, "never served; log:\n{}", e.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let barrier = Arc::new(Barrier::new(200));
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let (barrier, addr) = (Arc::clone(&barrier), e.addr);
            std::thread::spawn(move || {
                barrier.wait();
                get(
                    addr,
                    "/metrics",
                    &basic("prometheus", "right"),
                    SCRAPE_TIMEOUT,
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    eprintln!("200 simultaneous first requests: {ok}/200 answered 200");
    assert_eq!(ok, 200, "{statuses:?}");
}
