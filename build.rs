//! Records the build facts that `--version` prints (as Prometheus' own tools do) and
//! `gpu_carbon_exporter_build_info` exports: the git revision (from the
//! `GPU_CARBON_EXPORTER_REVISION` environment variable if set, else from `git rev-parse`), the
//! build date (UTC; `SOURCE_DATE_EPOCH` for reproducible builds), the rustc version and the
//! target; and generates the gRPC clients of the kubelet pod-resources and CRI APIs from the
//! vendored official `.proto` files (proto/README.md) with the pure-Rust `protox`, so a build
//! needs no `protoc`.

use std::process::Command;

fn main() {
    build_facts();
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

fn build_facts() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=GCE_BUILD_DATE={}", utc(secs));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GCE_BUILD_RUSTC={version}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=GCE_BUILD_TARGET={target}");
}

/// `YYYYMMDD-HH:MM:SS` in UTC, as Prometheus prints its build date (days to civil date after
/// Howard Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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
