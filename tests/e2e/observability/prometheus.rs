//! A real Prometheus server, started for one test and killed when dropped.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::{temp_path, ChildGuard, TempDir};
use super::{PROMETHEUS_CONFIG, RULES_DIR, WAIT_LIMIT};
use crate::support::{read_path as read, repo, yaml_files};

pub struct Prometheus {
    addr: SocketAddr,
    http: ureq::Agent,
    log_file: PathBuf,
    // Field order matters: the process is killed before its directory is removed.
    child: ChildGuard,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free port with the shipped config (target rewritten to `target`,
    /// intervals shortened to 1 s) and the shipped rules, and waits until it is ready.
    pub fn start(bin: &Path, target: SocketAddr) -> Prometheus {
        Prometheus::start_with(bin, target, &[])
    }

    /// [`Prometheus::start`] with more command-line flags (`--enable-feature=…`).
    pub fn start_with(bin: &Path, target: SocketAddr, flags: &[&str]) -> Prometheus {
        let dir = TempDir(temp_path("prometheus"));
        let rules_dir = dir.0.join("rules");
        fs::create_dir_all(&rules_dir).expect("create temp dir");
        for file in yaml_files(RULES_DIR) {
            // Groups with their own (1 m) interval would first run up to a minute late.
            let text = read(&file).replace("interval: 1m", "interval: 1s");
            fs::write(rules_dir.join(file.file_name().expect("name")), text).expect("copy rules");
        }
        let config = rewrite(
            &read(&repo(PROMETHEUS_CONFIG)),
            &[
                ("localhost:9402", &target.to_string()),
                ("scrape_interval: 15s", "scrape_interval: 1s"),
                ("evaluation_interval: 15s", "evaluation_interval: 1s"),
                ("- rules/*.yml", &format!("- {}/*.yml", rules_dir.display())),
            ],
        );
        let config_file = dir.0.join("prometheus.yml");
        fs::write(&config_file, config).expect("write config");

        let addr = free_port();
        let log_file = dir.0.join("prometheus.log");
        let log = fs::File::create(&log_file).expect("create log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut prom = Prometheus {
            addr,
            http: http_client(),
            log_file,
            child: ChildGuard(child),
            _dir: dir,
        };
        prom.wait_ready();
        prom
    }

    /// Polls `/-/ready`, failing at once if Prometheus exits (a bad config, say).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            if matches!(self.get("/-/ready", &[]), Ok((200, _))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after {WAIT_LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Polls `done` until it holds, failing the test after `WAIT_LIMIT`.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT_LIMIT;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "gave up waiting {WAIT_LIMIT:?} for {what}; prometheus log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// GETs `path` with the `query` parameters (percent-encoded by `ureq`): status and body.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, String), ureq::Error> {
        let url = format!("http://{}{path}", self.addr);
        let mut resp = self
            .http
            .get(&url)
            .query_pairs(query.iter().copied())
            .call()?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string()?))
    }

    fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let (status, text) = self
            .get(path, query)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("HTTP {status}: not JSON ({e}): {text}"))?;
        if status != 200 || body["status"] != "success" {
            return Err(format!("HTTP {status}: {}", body["error"]));
        }
        Ok(body["data"].clone())
    }

    /// An instant query; `Err` when it fails or returns no data.
    pub fn try_query(&self, expr: &str) -> Result<Vec<Value>, String> {
        self.try_query_at(expr, None)
    }

    /// An instant query at `time` (Unix seconds; now if `None`).
    pub fn try_query_at(&self, expr: &str, time: Option<f64>) -> Result<Vec<Value>, String> {
        let time = time.map(|t| t.to_string());
        let mut query = vec![("query", expr)];
        query.extend(time.as_deref().map(|t| ("time", t)));
        let data = self.api("/api/v1/query", &query)?;
        let result = match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => data["result"].as_array().cloned(),
            Some("scalar") => Some(vec![data["result"].clone()]),
            _ => None,
        }
        .unwrap_or_default();
        if result.is_empty() {
            return Err("no data".into());
        }
        Ok(result)
    }

    /// A range query from `start` to `end` (Unix seconds) every `step` seconds, as Grafana
    /// sends it; the series of the matrix.
    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Vec<Value> {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        let query = [
            ("query", expr),
            ("start", &start),
            ("end", &end),
            ("step", &step),
        ];
        let data = self
            .api("/api/v1/query_range", &query)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    pub fn query(&self, expr: &str) -> Vec<Value> {
        self.try_query(expr).unwrap_or_default()
    }

    /// Every rule of every group, with `group` added.
    pub fn rules(&self) -> Vec<Value> {
        let data = self.api("/api/v1/rules", &[]).expect("GET /api/v1/rules");
        let mut out = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                let mut rule = rule.clone();
                rule["group"] = group["name"].clone();
                out.push(rule);
            }
        }
        out
    }
}

/// Replaces each `from` (which must occur) with `to`.
fn rewrite(text: &str, edits: &[(&str, &str)]) -> String {
    edits.iter().fold(text.to_string(), |acc, (from, to)| {
        assert!(
            acc.contains(from),
            "{PROMETHEUS_CONFIG} no longer contains {from:?}"
        );
        acc.replace(from, to)
    })
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A client for Prometheus's API: the status of a non-2xx answer is returned, not an error;
/// no redirects, and no proxy from the environment.
fn http_client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .into()
}
