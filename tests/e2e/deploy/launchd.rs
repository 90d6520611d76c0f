//! The launchd property list (`deploy/launchd/*.plist`): it must be a property list that Apple's
//! format readers accept (`plutil` isn't here; Python's `plistlib` reads the same XML format),
//! run as a daemon that launchd restarts on failure, and start the real binary with its
//! arguments (on Linux with the stand-in powermetrics, a temp state file, the listen port 0,
//! and `--no-collector.nvml`, which is what macOS defaults to).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{pipe, repo, temp_file, tool, Exporter};

const PLIST: &str = "deploy/launchd/io.github.gpu-carbon-exporter.plist";
const READ: &str = "import json, plistlib, sys; \
    print(json.dumps(plistlib.loads(sys.stdin.buffer.read(), fmt=plistlib.FMT_XML)))";

fn daemon() -> Option<Value> {
    let python = tool("python3", "apt-get install python3")?;
    let text = std::fs::read(repo(PLIST)).expect("read plist");
    let out = pipe(&python, &["-c", READ], &text);
    assert!(
        out.status.success(),
        "{PLIST} is not a property list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("plistlib's JSON"))
}

#[test]
fn launchd_plist_is_a_daemon_launchd_restarts() {
    let Some(d) = daemon() else { return };
    let label = d["Label"].as_str().expect("Label");
    assert!(
        PLIST.ends_with(&format!("{label}.plist")),
        "file named for its Label"
    );
    assert_eq!(d["RunAtLoad"], Value::Bool(true));
    assert_eq!(d["KeepAlive"]["SuccessfulExit"], Value::Bool(false));
    assert!(d["ThrottleInterval"].as_u64().is_some_and(|s| s >= 10));
    assert!(d.get("UserName").is_none(), "powermetrics needs root");
    let args = d["ProgramArguments"].as_array().expect("ProgramArguments");
    assert_eq!(args[0], "/usr/local/bin/gpu-carbon-exporter");
    assert!(args.iter().any(|a| a == "--collector.powermetrics"));
}

/// Its arguments start the binary and serve the powermetrics domains.
#[test]
fn launchd_arguments_start_the_exporter() {
    let Some(d) = daemon() else { return };
    let scenarios = temp_file("1", "");
    let dir: PathBuf = scenarios.parent().expect("dir").to_path_buf();
    let sample = repo("tests/fixtures/powermetrics/apple-silicon.plist");
    let fake = repo("tests/fake-powermetrics/powermetrics");
    std::fs::write(&scenarios, format!("sample {}\nhang\n", sample.display())).expect("write");
    let state = dir.join("state.json");
    let mut args: Vec<String> = d["ProgramArguments"]
        .as_array()
        .expect("ProgramArguments")
        .iter()
        .skip(1)
        .map(|a| a.as_str().expect("string").to_string())
        .map(|a| match a.strip_prefix("--state.file=") {
            Some(_) => format!("--state.file={}", state.display()),
            None => a,
        })
        .collect();
    args.push(format!("--powermetrics.path={}", fake.display()));
    args.push("--no-collector.nvml".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = Exporter::start(&args, &[("FAKE_POWERMETRICS_DIR", path(&dir))]);
    e.wait_ready();
    let s = e.scrape();
    let domains: Vec<&str> = s
        .find(
            "gpu_host_energy_kwh_total",
            &[("energy_source", "integrated")],
        )
        .iter()
        .filter_map(|x| x.label("domain"))
        .collect();
    assert_eq!(domains.len(), 3, "{domains:?}");
    assert_eq!(e.terminate().code(), Some(0));
    assert!(state.is_file(), "the state file is written");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}
