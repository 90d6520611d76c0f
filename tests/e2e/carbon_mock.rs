//! A small HTTP/1.1 server on 127.0.0.1 (port 0) that imitates the carbon-intensity APIs for
//! the end-to-end tests: every request is recorded and answered by the test's handler, which
//! can also answer slowly or not at all. One request per connection (`Connection: close`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{Exporter, Scrape};

/// A request as the mock saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// How to answer.
pub enum Reply {
    /// Status, extra headers and body, sent at once.
    Now(u16, Vec<(&'static str, String)>, String),
    /// Headers at once, then half the body, then the rest after `delay`.
    SlowBody(String, Duration),
    /// Read the request, say nothing for `delay`, then close.
    Silence(Duration),
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Now(status, Vec::new(), body.into())
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// The running mock; stops when dropped.
pub struct MockApi {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl MockApi {
    /// Serves `handler(request, n)` where `n` counts requests from 0.
    pub fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        let addr = listener.local_addr().expect("mock address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (handler, seen, counter) = (
                    Arc::clone(&handler),
                    Arc::clone(&seen),
                    Arc::clone(&counter),
                );
                std::thread::spawn(move || serve(stream, &*handler, &seen, &counter));
            }
        });
        MockApi {
            addr,
            requests,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>, counter: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let request = Request {
        method,
        target,
        headers,
    };
    seen.lock().expect("requests lock").push(request.clone());
    let n = counter.fetch_add(1, Ordering::SeqCst);
    let mut out = &stream;
    match handler(&request, n) {
        Reply::Now(status, extra, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            let _ = out.write_all(format!("{head}\r\n{body}").as_bytes());
        }
        Reply::SlowBody(body, delay) => {
            let half = body.len() / 2;
            let _ = out.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    &body[..half]
                )
                .as_bytes(),
            );
            let _ = out.flush();
            std::thread::sleep(delay);
            let _ = out.write_all(&body.as_bytes()[half..]);
        }
        Reply::Silence(delay) => std::thread::sleep(delay),
    }
    let _ = out.flush();
}

/// RFC 3339 (UTC, whole seconds) of a Unix time, for the mocks' answers.
pub fn rfc3339(unix: f64) -> String {
    let secs = unix.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Scrapes every 50 ms until `done` holds, checking on the way that sampling never stops
/// (the sample timestamp never goes back, and moves within 2 s). Returns every scrape.
pub fn scrape_until(
    exporter: &Exporter,
    limit: Duration,
    done: impl Fn(&Scrape) -> bool,
) -> Vec<Scrape> {
    let deadline = Instant::now() + limit;
    let mut scrapes: Vec<Scrape> = Vec::new();
    let mut last_move = (Instant::now(), 0.0);
    loop {
        let s = exporter.scrape();
        let t = s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
        assert!(
            t >= last_move.1,
            "sample time went back: {t} < {}",
            last_move.1
        );
        if t > last_move.1 {
            last_move = (Instant::now(), t);
        }
        assert!(
            last_move.0.elapsed() < Duration::from_secs(2),
            "sampling stalled at {t}; log:\n{}",
            exporter.log()
        );
        let finished = done(&s);
        scrapes.push(s);
        if finished {
            return scrapes;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}; last scrape:\n{}\nlog:\n{}",
            scrapes.last().map(|s| s.text.as_str()).unwrap_or(""),
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The single intensity series: (provider, zone, signal, scope, value).
pub fn intensity(s: &Scrape) -> (String, String, String, String, f64) {
    let found = s.find("gpu_carbon_intensity_grams_per_kwh", &[]);
    assert_eq!(found.len(), 1, "one intensity series: {found:?}");
    let l = |k: &str| found[0].label(k).unwrap_or("").to_string();
    (
        l("provider"),
        l("zone"),
        l("signal"),
        l("scope"),
        found[0].value,
    )
}

/// Asserts that neither the scrape, the landing page nor the log shows `secret`.
pub fn assert_never_shown(exporter: &Exporter, scrape: &Scrape, secret: &str) {
    assert!(!scrape.text.contains(secret), "secret on /metrics");
    assert!(
        !exporter.get("/").body.contains(secret),
        "secret on the landing page"
    );
    assert!(!exporter.log().contains(secret), "secret in the log");
}

#[test]
fn rfc3339_formats_like_the_apis() {
    assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_709_249_400.7), "2024-02-29T23:30:00Z");
}
