//! Real gRPC servers for the attribution tests: Python `grpcio` serving the kubelet
//! pod-resources API and the runtime's CRI API (`grpc_server.py`, stubs generated from the
//! vendored `proto/` files), and a broken socket.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::repo;

/// One container of a pod: (name, container ID, device IDs it was given).
pub type Container<'a> = (&'a str, &'a str, &'a [&'a str]);

/// One pod: (namespace, name, UID, containers).
pub type Pod<'a> = (&'a str, &'a str, &'a str, &'a [Container<'a>]);

/// The Python server; killed when dropped.
pub struct Servers {
    child: Child,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether Python `grpcio` and `grpcio-tools` can be imported; missing, the test skips (fails
/// under CI, where `.ci/run` installs them).
pub fn grpc_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 grpcio is required under CI (pip install grpcio grpcio-tools)"
        );
        eprintln!("SKIP: python3 grpcio not installed (pip install grpcio grpcio-tools)");
    }
    ok
}

/// Serves `pods` on the pod-resources socket and/or the CRI socket given, until dropped.
pub fn serve(pods: &[Pod], pod_resources: Option<&Path>, cri: Option<&Path>) -> Servers {
    let spec: Vec<serde_json::Value> = pods
        .iter()
        .map(|(ns, name, uid, containers)| {
            let containers: Vec<_> = containers
                .iter()
                .map(
                    |(c, id, devices)| serde_json::json!({"name": c, "id": id, "devices": devices}),
                )
                .collect();
            serde_json::json!({"namespace": ns, "name": name, "uid": uid, "containers": containers})
        })
        .collect();
    let file = std::env::temp_dir().join(format!(
        "gce-grpc-spec-{}-{}.json",
        std::process::id(),
        pods.first().map_or("none", |p| p.1)
    ));
    std::fs::write(&file, serde_json::json!({ "pods": spec }).to_string()).expect("spec");
    let mut cmd = Command::new("python3");
    cmd.arg(repo("tests/e2e/attribution/grpc_server.py"))
        .arg(repo("proto"))
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(p) = pod_resources {
        cmd.arg("--pod-resources").arg(p);
    }
    if let Some(p) = cri {
        cmd.arg("--cri").arg(p);
    }
    let mut child = cmd.spawn().expect("start grpc_server.py");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    assert_eq!(line.trim(), "ready", "grpc_server.py did not start");
    Servers { child }
}

/// A socket that accepts connections and closes them at once: a broken kubelet.
pub fn serve_broken(path: &Path) -> PathBuf {
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind broken kubelet");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    path.to_path_buf()
}
