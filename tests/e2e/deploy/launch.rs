//! Every deploy file's command line, started for real: the exact arguments and environment
//! that the systemd unit (and each option example of its environment file), the Dockerfile's
//! ENTRYPOINT/CMD/ENV (and the `docker run` examples in its header), the compose files (alone
//! and with the GPU override) and both DaemonSets with their ConfigMaps give the binary. Each
//! must start, become ready, serve a scrape that passes `promtool check metrics`, and name no
//! variable the binary doesn't read. (A compose override with a flag that doesn't exist once
//! made the GPU stack exit 2 and restart-loop while every static check passed.)
//!
//! What stands in for the machine, and only that, differs from production:
//! - NVIDIA's `libnvidia-ml.so.1` is the fake NVML, found by the loader through
//!   `LD_LIBRARY_PATH` (and `--nvml.library-path` examples point at it);
//! - the systemd `StateDirectory` (`/var/lib/gpu-carbon-exporter`) is a temp dir;
//! - the listen port is 0 (the host part is kept), so tests never collide on 9402.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::{
    dockerfile_instructions, env_assignments, kustomize_build_dir, read, yaml_file, COMPOSE,
    COMPOSE_GPU, DOCKERFILE, UNIT, UNIT_ENV,
};
use crate::support::{self, fake_nvml_lib, repo, temp_file, Exporter};

const LISTEN_ENV: &str = "GPU_CARBON_EXPORTER_WEB_LISTEN_ADDRESS";
const STATE_DIR: &str = "/var/lib/gpu-carbon-exporter";
/// Two GPUs on the fake NVML.
const SCENARIO: &str = "[gpu]\npower = const:200\n[gpu]\npower = const:300\n";

/// One way a deploy file starts the binary.
#[derive(Debug, Clone)]
struct Launch {
    what: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    fn new(what: impl Into<String>, args: Vec<String>, env: Vec<(String, String)>) -> Launch {
        Launch {
            what: what.into(),
            args,
            env,
        }
    }

    /// GPUs it should serve: 4 simulated with `--demo`, else the fake NVML's 2.
    fn gpus(&self) -> usize {
        let demo = self.args.iter().any(|a| a == "--demo")
            || self
                .env
                .iter()
                .any(|(k, v)| k == "GPU_CARBON_EXPORTER_DEMO" && v == "true");
        if demo {
            4
        } else {
            2
        }
    }
}

#[test]
fn every_deploy_file_starts_the_real_binary_and_serves_a_scrape() {
    let mut launches = systemd();
    launches.extend(docker());
    launches.extend(compose());
    for dir in [
        "deploy/kubernetes",
        "deploy/kubernetes-overlays/attribution",
    ] {
        if let Some(objects) = kustomize_build_dir(dir) {
            launches.push(daemonset(dir, &objects));
        }
    }
    let machine = Machine::new();
    let mut problems = Vec::new();
    for launch in &launches {
        if let Err(why) = std::panic::catch_unwind(|| machine.check(launch)) {
            let why = why
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            problems.push(format!("{}: {launch:?}\n{why}", launch.what));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    // The files that must always be covered, whatever tools are installed.
    assert!(launches.len() >= 12, "{launches:#?}");
}

/// What the binary finds on the machine: the fake NVML as `libnvidia-ml.so.1`, a state dir.
struct Machine {
    lib_dir: PathBuf,
    scenario: PathBuf,
    state_dir: PathBuf,
}

impl Machine {
    fn new() -> Machine {
        let scenario = temp_file("scenario.txt", SCENARIO);
        let lib_dir = scenario.parent().expect("temp dir").join("lib");
        std::fs::create_dir_all(&lib_dir).expect("lib dir");
        let link = lib_dir.join("libnvidia-ml.so.1");
        if !link.exists() {
            std::os::unix::fs::symlink(fake_nvml_lib(), &link).expect("symlink NVML");
        }
        let state_dir = scenario.parent().expect("temp dir").join("state");
        std::fs::create_dir_all(&state_dir).expect("state dir");
        Machine {
            lib_dir,
            scenario,
            state_dir,
        }
    }

    /// A value as it reads on this machine: machine paths swapped, listen port 0.
    fn localise(&self, key: Option<&str>, value: &str) -> String {
        let fake = fake_nvml_lib().display().to_string();
        if key == Some(LISTEN_ENV) {
            return with_port_zero(value);
        }
        if let Some(v) = value.strip_prefix("--web.listen-address=") {
            return format!("--web.listen-address={}", with_port_zero(v));
        }
        if value.ends_with("libnvidia-ml.so.1") && value.starts_with('/') {
            return fake;
        }
        value.replace(STATE_DIR, &self.state_dir.display().to_string())
    }

    /// Starts `launch`, waits until ready, scrapes, stops.
    fn check(&self, launch: &Launch) {
        let mut cmd = Command::new(support::exporter_bin());
        cmd.env_clear()
            .env("LD_LIBRARY_PATH", &self.lib_dir)
            .env("FAKE_NVML_SCENARIO", &self.scenario);
        let mut listens = false;
        for (k, v) in &launch.env {
            listens |= k == LISTEN_ENV;
            cmd.env(k, self.localise(Some(k), v));
        }
        for a in &launch.args {
            listens |= a.starts_with("--web.listen-address");
            cmd.arg(self.localise(None, a));
        }
        if !listens {
            cmd.env(LISTEN_ENV, "127.0.0.1:0");
        }
        let e = Exporter::spawn(cmd);
        e.wait_ready();
        let s = e.scrape();
        assert_eq!(s.find("gpu_info", &[]).len(), launch.gpus(), "{}", s.text);
        support::assert_promtool_clean(&s.text);
        let log = e.log();
        assert!(!log.contains("no flag reads"), "unknown variable:\n{log}");
        assert!(!log.contains("level=error"), "{log}");
    }
}

/// `host:port` (or `:port`, `[v6]:port`) with port 0.
fn with_port_zero(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, _)) => format!("{host}:0"),
        None => addr.to_string(),
    }
}

/// The unit's `ExecStart=` arguments and `Environment=` lines, with the shipped options file
/// (every assignment in it commented out), then with each option example in turn.
fn systemd() -> Vec<Launch> {
    let unit = read(UNIT);
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{UNIT}: no ExecStart="));
    let args: Vec<String> = exec.split_whitespace().skip(1).map(String::from).collect();
    let mut env: Vec<(String, String)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(env_assignments(UNIT_ENV));
    let mut out = vec![Launch::new(UNIT, args.clone(), env.clone())];
    for line in read(UNIT_ENV).lines() {
        let Some((k, v)) = line.strip_prefix('#').and_then(|l| l.split_once('=')) else {
            continue;
        };
        if !k.starts_with("GPU_CARBON_EXPORTER_") {
            continue;
        }
        let mut with = env.clone();
        with.push((k.to_string(), v.to_string()));
        out.push(Launch::new(
            format!("{UNIT_ENV}: {line}"),
            args.clone(),
            with,
        ));
    }
    out
}

/// The final stage's ENTRYPOINT + CMD and ENV, bare and with the `docker run` examples'
/// arguments from the file's header.
fn docker() -> Vec<Launch> {
    let instructions = dockerfile_instructions();
    let last_from = instructions
        .iter()
        .rposition(|(n, _)| n == "FROM")
        .unwrap_or(0);
    let stage = &instructions[last_from..];
    let exec_form = |name: &str| -> Vec<String> {
        stage
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, a)| serde_json::from_str(a).expect("exec form"))
            .unwrap_or_default()
    };
    let entrypoint = exec_form("ENTRYPOINT");
    assert!(
        entrypoint
            .first()
            .is_some_and(|e| e.ends_with("/gpu-carbon-exporter")),
        "{DOCKERFILE}: ENTRYPOINT {entrypoint:?}"
    );
    let cmd = exec_form("CMD");
    let env: Vec<(String, String)> = stage
        .iter()
        .filter(|(n, _)| n == "ENV")
        .flat_map(|(_, a)| a.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let base: Vec<String> = entrypoint[1..].iter().chain(&cmd).cloned().collect();
    let mut out = vec![Launch::new(DOCKERFILE, base, env.clone())];
    for line in read(DOCKERFILE).lines() {
        let words: Vec<&str> = line.trim_start_matches('#').split_whitespace().collect();
        if words.first() != Some(&"docker") || words.get(1) != Some(&"run") {
            continue;
        }
        let Some(image) = words.iter().position(|w| *w == "gpu-carbon-exporter") else {
            continue;
        };
        // Arguments after the image replace CMD.
        let args = entrypoint[1..]
            .iter()
            .cloned()
            .chain(words[image + 1..].iter().map(|w| w.to_string()))
            .collect();
        out.push(Launch::new(
            format!("{DOCKERFILE}: {}", line.trim()),
            args,
            env.clone(),
        ));
    }
    out
}

/// The exporter service's command and environment in `compose.yaml`, and with
/// `compose.gpu.yaml` on top (a later file's `command` replaces, `environment` merges).
fn compose() -> Vec<Launch> {
    let base = yaml_file(&repo(COMPOSE));
    let gpu = yaml_file(&repo(COMPOSE_GPU));
    let service = |v: &Value| v["services"]["exporter"].clone();
    let (args, env) = service_command(&service(&base), (Vec::new(), Vec::new()));
    let alone = Launch::new(COMPOSE, args.clone(), env.clone());
    let (args, env) = service_command(&service(&gpu), (args, env));
    vec![
        alone,
        Launch::new(format!("{COMPOSE} + {COMPOSE_GPU}"), args, env),
    ]
}

/// Arguments and environment.
type Invocation = (Vec<String>, Vec<(String, String)>);

fn service_command(service: &Value, (mut args, mut env): Invocation) -> Invocation {
    assert!(
        service["entrypoint"].is_null(),
        "compose entrypoint overrides are not modelled here"
    );
    if let Some(list) = service["command"].as_array() {
        args = list
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
    }
    match &service["environment"] {
        Value::Object(map) => {
            for (k, v) in map {
                let v = v.as_str().map_or_else(|| v.to_string(), String::from);
                env.retain(|(key, _)| key != k);
                env.push((k.clone(), v));
            }
        }
        Value::Array(list) => {
            for kv in list.iter().filter_map(Value::as_str) {
                if let Some((k, v)) = kv.split_once('=') {
                    env.retain(|(key, _)| key != k);
                    env.push((k.into(), v.into()));
                }
            }
        }
        _ => {}
    }
    (args, env)
}

/// The DaemonSet's container as built by kustomize: `command`/`args`, `envFrom` its ConfigMap's
/// data, then `env` (which wins, as in Kubernetes).
fn daemonset(dir: &str, objects: &[Value]) -> Launch {
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("{dir}: no {kind}"))
    };
    let ds = find("DaemonSet");
    let c = &ds["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c["command"].is_null(),
        "{dir}: a command replaces the image's ENTRYPOINT"
    );
    let args = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    let mut env = Vec::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        let name = &from["configMapRef"]["name"];
        let cm = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == *name)
            .unwrap_or_else(|| panic!("{dir}: envFrom names no ConfigMap {name}"));
        for (k, v) in cm["data"].as_object().into_iter().flatten() {
            env.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) else {
            continue;
        };
        env.retain(|(key, _)| key != k);
        env.push((k.into(), v.into()));
    }
    Launch::new(format!("{dir} DaemonSet"), args, env)
}
