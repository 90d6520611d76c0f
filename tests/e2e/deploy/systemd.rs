//! The systemd unit: `systemd-analyze verify` (no output) and `systemd-analyze security
//! --offline=yes` (exposure at most 2.0) on `deploy/systemd/gpu-carbon-exporter.service`, which
//! must keep the NVIDIA device nodes reachable. `verify` insists that `ExecStart=` exists, so it
//! runs on a copy whose `ExecStart=` is this build's binary.

use std::process::Command;

use super::{read, run, UNIT};
use crate::support::{self, repo, tool};

const MAX_EXPOSURE: f64 = 2.0;

/// `unit` with its `ExecStart=` running this build's binary (`verify` insists it exists).
fn with_this_binary(unit: &str) -> String {
    let exec = format!("ExecStart={}", support::exporter_bin().display());
    unit.lines()
        .map(|l| {
            if l.starts_with("ExecStart=") {
                exec.as_str()
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn systemd_unit_verifies_without_output() {
    let Some(analyze) = tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let unit = read(UNIT);
    let starts = unit.lines().filter(|l| l.starts_with("ExecStart=")).count();
    assert_eq!(starts, 1, "{UNIT}: want exactly one ExecStart= line");
    let path = support::temp_file("gpu-carbon-exporter.service", &with_this_binary(&unit));
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

/// The attribution drop-in loads cleanly beside the unit and only makes other users' processes
/// visible (hidepid off) and their UIDs real (no user namespace). (`systemd-analyze security
/// --offline` can't tell these two apart from the unit's own settings, so it isn't used here.)
#[test]
fn attribution_drop_in_shows_other_users_processes_and_nothing_more() {
    let Some(analyze) = tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let dir = support::temp_file("placeholder", "").with_file_name("units");
    let _ = std::fs::remove_dir_all(&dir);
    let drop_ins = dir.join("gpu-carbon-exporter.service.d");
    std::fs::create_dir_all(&drop_ins).expect("mkdir");
    let unit = with_this_binary(&read(UNIT));
    std::fs::write(dir.join("gpu-carbon-exporter.service"), unit).expect("unit");
    let conf = read("deploy/systemd/gpu-carbon-exporter.service.d/attribution.conf");
    let settings: Vec<&str> = conf
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.starts_with('['))
        .collect();
    assert_eq!(settings, ["ProtectProc=default", "PrivateUsers=no"]);
    std::fs::write(drop_ins.join("attribution.conf"), &conf).expect("drop-in");
    // Given the unit's path, `verify` also loads the drop-ins in `<unit>.d/` beside it (an
    // unknown key there would be reported).
    let verify = run(
        Command::new(&analyze)
            .arg("verify")
            .arg(dir.join("gpu-carbon-exporter.service")),
        None,
    );
    verify.assert_clean("systemd-analyze verify with the drop-in");
    let _ = std::fs::remove_dir_all(&dir);
}
