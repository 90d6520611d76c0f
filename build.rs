//! Records the git revision for `gpu_carbon_exporter_build_info{revision}`: from the
//! `GPU_CARBON_EXPORTER_REVISION` environment variable if set, else from `git rev-parse`; and
//! generates the gRPC clients of the kubelet pod-resources and CRI APIs from the vendored
//! official `.proto` files (proto/README.md) with the pure-Rust `protox`, so a build needs no
//! `protoc`.

use std::process::Command;

fn main() {
    if let Err(err) = grpc() {
        // A build script reports failure by panicking; the message names the bad file.
        panic!("generating gRPC clients: {err}");
    }
    // A build without .git (e.g. a container build) can pass the revision in.
    println!("cargo:rerun-if-env-changed=GPU_CARBON_EXPORTER_REVISION");
    if let Ok(rev) = std::env::var("GPU_CARBON_EXPORTER_REVISION") {
        if !rev.trim().is_empty() {
            println!(
                "cargo:rustc-env=GPU_CARBON_EXPORTER_REVISION={}",
                rev.trim()
            );
            return;
        }
    }
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=GPU_CARBON_EXPORTER_REVISION={revision}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// Compiles `proto/podresources/api.proto` (package `v1`) and `proto/cri/api.proto` (package
/// `runtime.v1`) into clients only: the exporter never serves either API.
fn grpc() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/podresources/api.proto", "proto/cri/api.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
