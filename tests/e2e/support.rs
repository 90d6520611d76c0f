//! Shared helpers for the end-to-end tests: start the real exporter binary, find the port it
//! bound, and talk HTTP/1.1 to it without pulling an HTTP client crate into the tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the exporter binary that Cargo built for these tests.
pub fn exporter_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gpu-carbon-exporter"))
}

/// A running exporter. Killed when dropped, so a failing test never leaks a process.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Exporter {
    /// Starts the exporter with `args` plus `--web.listen-address=127.0.0.1:0` and
    /// `--log.format=logfmt`, and waits until it logs the address it listens on.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Exporter {
        let mut cmd = Command::new(exporter_bin());
        cmd.args(["--web.listen-address=127.0.0.1:0", "--log.format=logfmt"])
            .args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Exporter::spawn(cmd)
    }

    /// Starts `cmd` (the exporter binary with its arguments and environment as the caller set
    /// them, logging in logfmt and listening on a port it reports) and waits until it logs the
    /// address it listens on.
    pub fn spawn(mut cmd: Command) -> Exporter {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn exporter");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listen_address(&line) {
                    let _ = tx.send(addr);
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "exporter did not report a listen address; log:\n{}",
                    lines.lock().expect("log lock").join("\n")
                );
            }
        };
        Exporter {
            child,
            addr,
            stderr: lines,
        }
    }

    /// GET `path`, returning the response.
    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path)
    }

    /// GET the telemetry path and parse it.
    pub fn scrape(&self) -> Scrape {
        let resp = self.get("/metrics");
        assert_eq!(resp.status, 200, "scrape failed: {}", resp.body);
        Scrape::parse(&resp.body)
    }

    /// Polls `/-/ready` until it answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.get("/-/ready").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("exporter never became ready; log:\n{}", self.log());
    }

    /// Everything the exporter wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("log lock").join("\n")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.sigterm();
        wait_with_timeout(&mut self.child, Duration::from_secs(20))
    }

    /// Sends SIGTERM, without waiting.
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.expect("kill").success(), "kill -TERM {pid}");
    }

    /// The exit status, once the process exits; fails the test with its log if it still runs
    /// `limit` after `since`.
    pub fn exited_by(&mut self, since: Instant, limit: Duration) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                since.elapsed() < limit,
                "still running {:?} after SIGTERM; log:\n{}",
                since.elapsed(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the exporter to completion (for start-up failures), returning status and stderr.
pub fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut cmd = Command::new(exporter_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn exporter");
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    (status, out)
}

fn listen_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("Listening on") {
        return None;
    }
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("address="))
        .and_then(|v| v.trim_matches('"').parse().ok())
}

/// An HTTP response, read to the end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    request_with(addr, method, path, &[])
}

/// One HTTP/1.1 request with `Connection: close` and extra `headers`.
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

/// Parses a raw HTTP/1.1 response (chunked bodies included).
pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One sample line of a text exposition.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed text exposition (enough of the format for our own output).
#[derive(Debug, Clone)]
pub struct Scrape {
    pub series: Vec<Series>,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let series = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_series)
            .collect();
        Scrape {
            series,
            text: text.to_string(),
        }
    }

    /// All series named `name` whose labels include every pair in `matching`.
    pub fn find(&self, name: &str, matching: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| matching.iter().all(|(k, v)| s.label(k) == Some(v)))
            .collect()
    }

    /// The value of the single series named `name` matching `matching`; panics otherwise.
    pub fn value(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        let found = self.find(name, matching);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {name}{matching:?}, got {found:?}"
        );
        found[0].value
    }
}

fn parse_series(line: &str) -> Series {
    let (head, value) = line.rsplit_once(' ').expect("sample line has a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().expect("numeric sample value"),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_string(), Vec::new()),
        Some((name, rest)) => (name.to_string(), parse_labels(rest.trim_end_matches('}'))),
    };
    Series {
        name,
        labels,
        value,
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// The fake `libnvidia-ml.so` built alongside these tests (fake-nvml is a dev-dependency, so
/// Cargo builds its cdylib next to the test executable).
pub fn fake_nvml_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("test executable has a directory");
    let lib = dir.join("libfake_nvml.so");
    assert!(
        lib.exists(),
        "{} missing: fake-nvml should be built as a dev-dependency",
        lib.display()
    );
    lib
}

/// Writes `text` to a fresh file under Cargo's per-target temp dir and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// Wall-clock time, Unix seconds.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Path of `promtool`, or `None` (then a test skips, except under CI where it must exist).
pub fn promtool() -> Option<PathBuf> {
    tool("promtool", "apt-get install prometheus")
}

/// The path of `name` on `PATH` or among the scripts of pip's `python3`. Missing, it is `None`
/// (the test skips with a message) — except under CI, where the test fails naming the tool and
/// how to install it.
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let on_path = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    let pip_scripts = || {
        let code = "import sysconfig; print(sysconfig.get_path('scripts'))";
        let out = Command::new(on_path("python3")?)
            .args(["-c", code])
            .output()
            .ok()?;
        let found = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(name);
        found.is_file().then_some(found)
    };
    let found = on_path(name).or_else(pip_scripts);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is required under CI and is not installed ({install})"
        );
        eprintln!("SKIP: {name} not installed ({install})");
    }
    found
}

/// A path relative to the repository root.
pub fn repo(rel: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A file's content; panics naming the file.
pub fn read_path(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `*.yml` and `*.yaml` files of a repository folder, sorted.
pub fn yaml_files(rel: &str) -> Vec<PathBuf> {
    let dir = repo(rel);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs `program` with `args`, `input` on its standard input, and returns what it did.
pub fn pipe(program: &std::path::Path, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .unwrap_or_else(|e| panic!("feed {}: {e}", program.display()));
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{} output: {e}", program.display()))
}

/// Runs `promtool check metrics` on an exposition and asserts it reports nothing.
pub fn assert_promtool_clean(exposition: &str) {
    let Some(promtool) = promtool() else { return };
    let out = pipe(&promtool, &["check", "metrics"], exposition.as_bytes());
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics complained:\n{report}"
    );
}

/// Compiles C `source` into a shared library to `LD_PRELOAD` into the exporter (to make a libc
/// call slow or hang, as a directory server or a disk can), with the C compiler every Rust
/// toolchain links with.
pub fn preload_shim(name: &str, source: &str) -> PathBuf {
    let c = temp_file(&format!("{name}.c"), source);
    let lib = c.with_file_name(format!("lib{name}.so"));
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&c)
        .arg("-ldl")
        .output()
        .expect("cc (a C compiler comes with every Rust toolchain that links)");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    lib
}

/// Energy (J) of `square:low:high:period` (low for the first half of each period) over [0, t].
pub fn square_energy(low: f64, high: f64, period: f64, t: f64) -> f64 {
    let cycles = (t / period).floor();
    let phase = t - cycles * period;
    let half = period / 2.0;
    let partial = if phase < half {
        low * phase
    } else {
        low * half + high * (phase - half)
    };
    cycles * (low + high) * half + partial
}
