//! `scripts/verify-on-gpu.sh`, which is meant for a machine with an NVIDIA GPU, PyTorch and
//! pynvml, run here as far as it can be: shellcheck; its refusals without pynvml, torch or a
//! CUDA GPU; and a whole run against the fake NVML, with stand-ins for pynvml (ctypes over the
//! fake library) and torch (`verify_script/*.py`), whose energy figures must agree.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::{exporter_bin, fake_nvml_lib, now_unix, repo, temp_file, tool};

fn script() -> PathBuf {
    repo("scripts/verify-on-gpu.sh")
}

fn run(args: &[&str], envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the script");
    let out = String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr);
    (status.code(), out)
}

/// A directory on PYTHONPATH holding the given stand-in modules (`verify_script/<name>.py`).
fn stand_ins(names: &[&str]) -> String {
    let dir = temp_file("placeholder", "").with_file_name("python");
    std::fs::create_dir_all(&dir).expect("python dir");
    for name in names {
        let from = repo(&format!("tests/e2e/verify_script/{name}.py"));
        std::fs::copy(&from, dir.join(format!("{name}.py"))).expect("copy stand-in");
    }
    dir.display().to_string()
}

#[test]
fn the_script_is_clean_for_shellcheck() {
    let status = Command::new("bash")
        .arg("-n")
        .arg(script())
        .status()
        .expect("bash");
    assert!(status.success());
    let Some(shellcheck) = tool("shellcheck", "apt-get install shellcheck") else {
        return;
    };
    let out = Command::new(shellcheck)
        .arg(script())
        .output()
        .expect("shellcheck");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs the whole script against the fake NVML playing `scenario`, with stand-in pynvml and
/// torch, `phases` load/idle phases of `seconds` each and a 1 s check; `envs` are added.
fn run_on_fake_nvml(
    scenario: &str,
    phases: &str,
    seconds: &str,
    envs: &[(&str, String)],
) -> (Option<i32>, String) {
    let scenario = temp_file("scenario.txt", scenario);
    let lib = fake_nvml_lib().display().to_string();
    let mut all = vec![
        ("PYTHONPATH", stand_ins(&["pynvml", "torch"])),
        ("FAKE_NVML_LIB", lib.clone()),
        ("FAKE_NVML_SCENARIO", scenario.display().to_string()),
    ];
    all.extend(envs.iter().cloned());
    let bin = exporter_bin().display().to_string();
    let library = format!("--nvml.library-path={lib}");
    let args = [
        "--phases",
        phases,
        "--load-seconds",
        seconds,
        "--idle-seconds",
        seconds,
        "--check-duration",
        "1s",
        &bin,
        "--",
        &library,
    ];
    run(&args, &all)
}

/// Without pynvml, without torch, or with a PyTorch that sees no GPU, the script stops at once
/// naming what is missing (exit 1); bad usage is exit 2.
#[test]
fn missing_prerequisites_are_named_before_anything_starts() {
    let bin = exporter_bin().display().to_string();
    let (code, out) = run(&[], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("usage: scripts/verify-on-gpu.sh"), "{out}");
    let (code, out) = run(&["/no/such/exporter"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("/no/such/exporter is not an executable file"),
        "{out}"
    );
    let (code, out) = run(&["--phases", "many", &bin], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("not a whole number: many"), "{out}");

    let cases = [
        (
            stand_ins(&[]),
            "yes",
            "pynvml is not importable by python3 (pip install nvidia-ml-py)",
        ),
        (
            stand_ins(&["pynvml"]),
            "yes",
            "torch is not importable by python3",
        ),
        (
            stand_ins(&["pynvml", "torch"]),
            "no",
            "torch sees no CUDA GPU",
        ),
    ];
    for (path, cuda, message) in cases {
        let envs = [
            ("PYTHONPATH", path),
            ("PYTHONNOUSERSITE", "1".to_string()),
            ("FAKE_TORCH_CUDA", cuda.to_string()),
        ];
        let (code, out) = run(&[&bin], &envs);
        assert_eq!(code, Some(1), "{out}");
        assert!(
            out.contains(&format!("verify-on-gpu: error: {message}")),
            "{out}"
        );
        assert!(!out.contains("== exporter"), "started something: {out}");
    }
}

/// The whole script against one fake 250 W GPU: `check` passes, and the exporter's energy, the
/// counter's delta and the integrated pynvml power agree (the exporter's samples lag its
/// scrapes by up to 200 ms at each end, about 3 % of this short run).
#[test]
fn a_run_against_the_fake_nvml_reports_agreeing_energies() {
    let scenario = format!("epoch = {}\n[gpu]\npower = const:250\n", now_unix());
    let (code, out) = run_on_fake_nvml(&scenario, "2", "1.5", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Result: all well."), "{out}");
    let joules = |label: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line:\n{out}"));
        line[line.find(label).expect("label") + label.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line}"))
    };
    let counter = joules("NVML energy counter delta");
    let exporter = joules("exporter gpu_energy_kwh_total");
    let integrated = joules("pynvml power integrated (10 Hz)");
    // About 6.3 s at 250 W.
    assert!((1_400.0..1_800.0).contains(&counter), "{out}");
    assert!((exporter / counter - 1.0).abs() < 0.05, "{out}");
    assert!((integrated / counter - 1.0).abs() < 0.05, "{out}");
    for needle in [
        "Attribution on GPU 0",
        "sample duration (all GPUs): median",
        "resident memory",
        "check: all well",
    ] {
        assert!(out.contains(needle), "no {needle:?}:\n{out}");
    }
}

/// When `check` finds a problem (a counter 1.5 times too fast), the script still measures,
/// then exits 1 saying so; either way it stops the exporter it started and removes its files.
#[test]
fn a_failed_check_exits_1_after_measuring_and_leaves_nothing_behind() {
    let scenario = format!(
        "epoch = {}\n[gpu]\npower = const:250\ncounter_scale = 1.5\n",
        now_unix()
    );
    let tmpdir = temp_file("placeholder", "").with_file_name("verify-tmp");
    std::fs::create_dir_all(&tmpdir).expect("mkdir");
    let envs = [("TMPDIR", tmpdir.display().to_string())];
    let (code, out) = run_on_fake_nvml(&scenario, "1", "1", &envs);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("PROBLEM  energy"), "{out}");
    assert!(
        out.contains("exporter gpu_energy_kwh_total"),
        "measured: {out}"
    );
    assert!(out.contains("check: found problems"), "{out}");
    let left: Vec<_> = std::fs::read_dir(&tmpdir).expect("ls").flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let still = Command::new("pgrep")
        .args(["-f", &tmpdir.display().to_string()])
        .output()
        .expect("pgrep");
    assert!(
        still.stdout.is_empty(),
        "an exporter still runs: {}",
        String::from_utf8_lossy(&still.stdout)
    );
}
