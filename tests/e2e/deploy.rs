//! Deployment files under `deploy/` checked offline, with the tools their users would run, one
//! module per target:
//!
//! - [`systemd`]: `systemd-analyze verify` and `security --offline=yes` on the unit;
//! - [`debian`]: the Debian package's unit is that unit with `/usr/bin`; its `postrm` purges
//!   the unit's state directory (the installed package: `tests/deb/check-installed.sh`);
//! - [`env_files`]: the option files name only the binary's variables;
//! - [`container`]: `hadolint` on the Dockerfile; HEALTHCHECK and probes hit served endpoints;
//! - [`kubernetes`]: `kubectl kustomize` builds, `kubernetes-validate --strict`, the wiring
//!   between the objects, and the generated PrometheusRule;
//! - [`compose`]: `docker-compose config`, mounts, and agreement with the shipped Prometheus
//!   and Grafana files;
//! - [`yamllint`]: `yamllint --strict` on every YAML file under `deploy/` and `grafana/`;
//! - [`launchd`]: the launchd property list read by `plistlib`, its arguments started;
//! - [`launch`]: every deploy file's arguments and environment, started on the real binary.
//!
//! This file keeps the paths and helpers they share. YAML is read with `serde_yaml_ng`. A
//! missing tool skips its test with `SKIP: <tool> not installed`, except under `CI`,
//! where the test fails naming the tool.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::support::{read_path, repo, tool};

mod compose;
mod container;
mod debian;
mod env_files;
mod kubernetes;
mod launch;
mod launchd;
mod systemd;
mod yamllint;

const UNIT: &str = "deploy/systemd/gpu-carbon-exporter.service";
const UNIT_ENV: &str = "deploy/systemd/gpu-carbon-exporter.env";
const DOCKERFILE: &str = "deploy/docker/Dockerfile";
const KUSTOMIZE_DIR: &str = "deploy/kubernetes";
const KUBE_ENV: &str = "deploy/kubernetes/exporter.env";
const COMPOSE: &str = "deploy/compose/compose.yaml";
const COMPOSE_GPU: &str = "deploy/compose/compose.gpu.yaml";
const RULES_DIR: &str = "deploy/prometheus/rules";

/// The exporter's default port, which every deployment path uses.
const PORT: u64 = 9402;
/// The job name that the rules and the dashboard select.
const JOB: &str = "gpu-carbon-exporter";
/// Every external command ends after this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// The `containerPort` that a probe's or Service's `port` (a number or a port name) means.
fn container_port(container: &Value, port: &Value) -> u64 {
    port.as_u64().unwrap_or_else(|| {
        let ports = container["ports"].as_array().into_iter().flatten();
        ports
            .into_iter()
            .find(|p| p["name"] == *port)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or(0)
    })
}

fn kustomize_build_dir(dir: &str) -> Option<Vec<Value>> {
    let kubectl = tool(
        "kubectl",
        "kubectl with kustomize v5 (google-cloud-cli's kubectl)",
    )?;
    let ran = run(Command::new(kubectl).arg("kustomize").arg(repo(dir)), None);
    assert!(ran.status.success(), "kubectl kustomize: {}", ran.report());
    let docs = yaml_docs(&ran.stdout);
    Some(docs.unwrap_or_else(|e| panic!("kubectl kustomize {dir}: YAML parse failed: {e}")))
}

/// The `(INSTRUCTION, arguments)` pairs of the Dockerfile, continuation lines joined.
fn dockerfile_instructions() -> Vec<(String, String)> {
    let text = read(DOCKERFILE);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        current.push_str(line.trim_end_matches('\\').trim());
        current.push(' ');
        if line.ends_with('\\') {
            continue;
        }
        if let Some((name, args)) = current.trim().split_once(' ') {
            out.push((name.to_uppercase(), args.trim().to_string()));
        }
        current.clear();
    }
    out
}

/// `(port, path)` of an `http://host:port/path` URL.
fn url_port_path(url: &str) -> (u64, String) {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let port = authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
    (port.unwrap_or(80), format!("/{path}"))
}

/// The active `NAME=value` lines of an environment file (commented-out ones skipped).
fn env_assignments(rel: &str) -> Vec<(String, String)> {
    read(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn read(rel: &str) -> String {
    read_path(&repo(rel))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// Tools and YAML

/// The one YAML document of a file.
fn yaml_file(path: &Path) -> Value {
    let mut docs = yaml_docs(&read_path(path))
        .unwrap_or_else(|e| panic!("{}: YAML parse failed: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: want one YAML document", path.display());
    docs.remove(0)
}

/// The non-empty documents of a YAML stream, as JSON values.
fn yaml_docs(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let docs = serde_yaml_ng::Deserializer::from_str(text).map(Value::deserialize);
    let docs: Vec<Value> = docs.collect::<Result<_, _>>()?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// What a finished command printed.
struct Ran {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn report(&self) -> String {
        format!(
            "{} exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// Succeeded and printed nothing at all.
    fn assert_clean(&self, what: &str) {
        let quiet = self.stdout.trim().is_empty() && self.stderr.trim().is_empty();
        assert!(
            self.status.success() && quiet,
            "{what} was not clean: {}",
            self.report()
        );
    }
}

/// Runs `cmd` to completion, feeding it `input`, killed and failing after [`TOOL_TIMEOUT`].
fn run(cmd: &mut Command, input: Option<&str>) -> Ran {
    let what = format!("{cmd:?}");
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let (Some(text), Some(mut pipe)) = (input, child.stdin.take()) {
        let text = text.to_string();
        thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {TOOL_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ran {
        what,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}
