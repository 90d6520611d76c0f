//! Compose: `docker-compose config` (Debian's Compose 1.29; no Docker engine is needed)
//! accepts the files, and the stack mounts paths that exist and agrees with the shipped
//! Prometheus and Grafana files on service names and ports.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{run, url_port_path, yaml_file, COMPOSE, COMPOSE_GPU, JOB, PORT};
use crate::support::{repo, tool, yaml_files};

const PROMETHEUS_DIR: &str = "deploy/prometheus";

#[test]
fn compose_files_pass_docker_compose_config() {
    let Some(compose) = tool("docker-compose", "apt-get install docker-compose") else {
        return;
    };
    for files in [&[COMPOSE][..], &[COMPOSE, COMPOSE_GPU]] {
        let mut cmd = Command::new(&compose);
        for f in files {
            cmd.arg("-f").arg(repo(f));
        }
        run(cmd.args(["config", "--quiet"]), None).assert_clean("docker-compose config");
    }
}

#[test]
fn compose_mounts_exist_and_the_exporter_is_built_here_and_runs_demo() {
    let compose = yaml_file(&repo(COMPOSE));
    let stack = Stack::new(&compose);
    let mut problems = stack.mount_problems(&compose["volumes"]);

    let exporter = &stack.services["exporter"];
    if !command(exporter).iter().any(|a| a == "--demo") {
        problems.push("the exporter does not run --demo by default".into());
    }
    let context = exporter["build"]["context"].as_str().unwrap_or("?");
    let context = stack.dir.join(context);
    let dockerfile = exporter["build"]["dockerfile"].as_str().unwrap_or("?");
    if !context.join(dockerfile).is_file() || !context.join("Cargo.toml").is_file() {
        problems.push(format!(
            "build {context:?} {dockerfile} is not this repository"
        ));
    }
    // What a person opens: every service's port, published on loopback only.
    for (name, service) in stack.services.as_object().into_iter().flatten() {
        if let Err(why) = stack.published(name) {
            problems.push(why);
        }
        let ports = service["ports"].as_array().into_iter().flatten();
        for port in ports.filter_map(Value::as_str) {
            if !port.starts_with("127.0.0.1:") {
                problems.push(format!("{name}: {port} is published beyond loopback"));
            }
        }
    }
    assert!(problems.is_empty(), "{COMPOSE}:\n{}", problems.join("\n"));
}

#[test]
fn compose_prometheus_uses_the_shipped_config_and_reaches_the_exporter() {
    let compose = yaml_file(&repo(COMPOSE));
    let stack = Stack::new(&compose);
    let mut problems = Vec::new();

    let mounted = stack.mount_source("prometheus", "/etc/prometheus");
    if mounted.as_deref().map(canonical) != Some(canonical(&repo(PROMETHEUS_DIR))) {
        problems.push(format!(
            "does not mount {PROMETHEUS_DIR} at /etc/prometheus"
        ));
    }
    let config = yaml_file(&repo(&format!("{PROMETHEUS_DIR}/prometheus.yml")));
    let mut scrapes_exporter = false;
    for job in config["scrape_configs"].as_array().into_iter().flatten() {
        let statics = job["static_configs"].as_array().into_iter().flatten();
        let targets = statics.flat_map(|s| s["targets"].as_array().into_iter().flatten());
        for target in targets.filter_map(Value::as_str) {
            match stack.resolve("prometheus", target) {
                Ok(to) => scrapes_exporter |= to == "exporter" && job["job_name"] == JOB,
                Err(why) => problems.push(format!("scrape target {target}: {why}")),
            }
        }
    }
    if !scrapes_exporter {
        problems.push(format!(
            "no job {JOB} in prometheus.yml reaches the exporter"
        ));
    }
    // Rule paths are relative to the config: the mounted folder must hold them.
    for pattern in config["rule_files"].as_array().into_iter().flatten() {
        let pattern = pattern.as_str().unwrap_or_default();
        let (dir, suffix) = pattern.rsplit_once("/*").unwrap_or((pattern, ""));
        let entries = fs::read_dir(repo(PROMETHEUS_DIR).join(dir));
        let mut found = entries.into_iter().flatten().flatten();
        if !found.any(|e| e.path().to_string_lossy().ends_with(suffix)) {
            problems.push(format!("rule_files {pattern} matches nothing in the mount"));
        }
    }
    assert!(
        problems.is_empty(),
        "{COMPOSE}, prometheus:\n{}",
        problems.join("\n")
    );
}

#[test]
fn compose_grafana_uses_the_shipped_provisioning_and_reaches_prometheus() {
    let compose = yaml_file(&repo(COMPOSE));
    let problems = Stack::new(&compose).grafana_problems();
    assert!(
        problems.is_empty(),
        "{COMPOSE}, grafana:\n{}",
        problems.join("\n")
    );
}

#[test]
fn compose_gpu_override_reads_real_gpus_through_nvml_only() {
    let gpu = yaml_file(&repo(COMPOSE_GPU));
    let exporter = &gpu["services"]["exporter"];
    let args = command(exporter);
    assert!(
        !args.is_empty() && !args.iter().any(|a| a == "--demo"),
        "{COMPOSE_GPU}: command {args:?} must replace --demo"
    );
    let devices = &exporter["deploy"]["resources"]["reservations"]["devices"][0];
    let capabilities = devices["capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        devices["driver"] == "nvidia" && capabilities == [Value::from("utility")],
        "{COMPOSE_GPU}: want every nvidia device with the utility capability only: {devices}"
    );
}

/// The services of a compose file, read from the file's folder.
struct Stack<'a> {
    dir: PathBuf,
    services: &'a Value,
}

impl Stack<'_> {
    fn new(compose: &Value) -> Stack<'_> {
        Stack {
            dir: repo(COMPOSE)
                .parent()
                .expect("compose folder")
                .to_path_buf(),
            services: &compose["services"],
        }
    }

    /// Every bind-mounted host path exists; every named volume is declared.
    fn mount_problems(&self, declared: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, _) in self.services.as_object().into_iter().flatten() {
            for (source, target) in self.volumes(name) {
                let bind = source.starts_with('.') || source.starts_with('/');
                if bind && !self.dir.join(&source).exists() {
                    problems.push(format!("{name}: mounts {source} (missing) at {target}"));
                }
                if !bind && declared.get(&source).is_none() {
                    problems.push(format!("{name}: volume {source} is not declared"));
                }
            }
        }
        problems
    }

    fn volumes(&self, service: &str) -> Vec<(String, String)> {
        let list = self.services[service]["volumes"].as_array();
        list.into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|v| {
                let mut parts = v.split(':');
                let source = parts.next().unwrap_or_default().to_string();
                (source, parts.next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// The host path mounted at `target` in `service`.
    fn mount_source(&self, service: &str, target: &str) -> Option<PathBuf> {
        self.volumes(service)
            .into_iter()
            .find(|(_, t)| t == target)
            .map(|(s, _)| self.dir.join(s))
    }

    /// The service whose network namespace `service` runs in.
    fn namespace<'s>(&'s self, service: &'s str) -> &'s str {
        let mode = self.services[service]["network_mode"].as_str();
        mode.and_then(|m| m.strip_prefix("service:"))
            .unwrap_or(service)
    }

    /// The port each service listens on: the images' defaults, or the exporter's flag.
    fn listens(&self, service: &str) -> Option<u64> {
        match service {
            "exporter" => Some(
                command(&self.services[service])
                    .iter()
                    .find_map(|a| a.strip_prefix("--web.listen-address="))
                    .map_or(PORT, |a| url_port_path(&format!("http://{a}/")).0),
            ),
            "prometheus" => Some(9090),
            "grafana" => Some(3000),
            _ => None,
        }
    }

    /// The service that `host:port`, dialled from `from`, reaches, or why none does.
    fn resolve(&self, from: &str, target: &str) -> Result<String, String> {
        let (host, port) = target.rsplit_once(':').ok_or("no port")?;
        let port: u64 = port.parse().map_err(|_| "bad port")?;
        let netns = match host {
            "localhost" | "127.0.0.1" => self.namespace(from),
            name if self.services.get(name).is_some() => self.namespace(name),
            other => return Err(format!("{other} is not a service of the stack")),
        };
        let names = self
            .services
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, _)| n);
        let found = names
            .filter(|n| self.namespace(n) == netns)
            .find(|n| self.listens(n) == Some(port));
        let service = found.ok_or(format!("nothing listens on {port} in {netns}'s network"))?;
        Ok(service.clone())
    }

    /// `service`'s port is published to the host, by the owner of its network namespace.
    fn published(&self, service: &str) -> Result<(), String> {
        let Some(port) = self.listens(service) else {
            return Ok(());
        };
        let owner = self.namespace(service);
        let ports = self.services[owner]["ports"]
            .as_array()
            .into_iter()
            .flatten();
        let mut published = ports.filter_map(Value::as_str);
        if !published.any(|p| p.ends_with(&format!(":{port}"))) {
            return Err(format!("{service} on {port} is not published by {owner}"));
        }
        Ok(())
    }

    /// Grafana mounts the shipped provisioning; its datasource reaches Prometheus and its
    /// dashboard provider's folder holds the dashboard.
    fn grafana_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(provisioning) = self.mount_source("grafana", "/etc/grafana/provisioning") else {
            return vec!["grafana does not mount a provisioning folder".into()];
        };
        for file in yaml_files(&provisioning.join("datasources").to_string_lossy()) {
            for ds in yaml_file(&file)["datasources"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let url = ds["url"].as_str().unwrap_or_default();
                let target = url.trim_start_matches("http://").trim_end_matches('/');
                match self.resolve("grafana", target) {
                    Ok(s) if s == "prometheus" => {}
                    Ok(s) => problems.push(format!("datasource {url} reaches {s}")),
                    Err(why) => problems.push(format!("datasource {url}: {why}")),
                }
            }
        }
        for file in yaml_files(&provisioning.join("dashboards").to_string_lossy()) {
            for provider in yaml_file(&file)["providers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let path = provider["options"]["path"].as_str().unwrap_or_default();
                let holds_json = self.mount_source("grafana", path).is_some_and(|d| {
                    let entries = fs::read_dir(d).into_iter().flatten().flatten();
                    entries
                        .into_iter()
                        .any(|e| e.path().extension() == Some(OsStr::new("json")))
                });
                if !holds_json {
                    problems.push(format!(
                        "dashboard provider path {path}: no dashboards mounted"
                    ));
                }
            }
        }
        let home =
            &self.services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
        if let Some(home) = home.as_str() {
            let (dir, file) = home.rsplit_once('/').unwrap_or_default();
            if !self
                .mount_source("grafana", dir)
                .is_some_and(|d| d.join(file).is_file())
            {
                problems.push(format!("home dashboard {home} is not mounted"));
            }
        }
        problems
    }
}

fn command(service: &Value) -> Vec<String> {
    let args = service["command"].as_array().into_iter().flatten();
    args.filter_map(Value::as_str).map(String::from).collect()
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
