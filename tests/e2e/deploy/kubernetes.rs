//! Kubernetes: `kubectl kustomize deploy/kubernetes` builds; `kubernetes-validate --strict`
//! accepts the core kinds; the CRD kinds (ServiceMonitor, PrometheusRule) and the wiring
//! between the objects are checked here; the PrometheusRule is what
//! `scripts/gen-prometheusrule.py` generates from `deploy/prometheus/rules/*.yml`.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::{
    container_port, file_name, kustomize_build_dir, run, yaml_file, JOB, KUSTOMIZE_DIR, PORT,
    RULES_DIR,
};
use crate::support::{self, read_path, repo, tool, yaml_files};

const PROMETHEUS_RULE: &str = "deploy/kubernetes/prometheusrule.yaml";
const GENERATOR: &str = "scripts/gen-prometheusrule.py";
/// Resident memory measured with 8 GPUs at 1 Hz and the ledger on (docs/benchmarks.md,
/// `scripts/bench-footprint.sh`): keep it in step with the figure there.
const MEASURED_RSS_BYTES: f64 = 7.7e6;
/// Kubernetes releases whose schemas the core objects must satisfy: the oldest the
/// validator knows that is still common in managed clusters, and its newest.
const KUBERNETES_VERSIONS: [Option<&str>; 2] = [Some("1.28"), None];

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
    let Some(objects) = kustomize_build() else {
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
            yaml_file(f)["groups"]
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

/// `python3` if it can import PyYAML, which the PrometheusRule generator needs.
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
