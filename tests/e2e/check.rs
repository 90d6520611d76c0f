//! `gpu-carbon-exporter check` as a user runs it: the exporter's flags, then `check`. On the
//! fake NVML, the sysfs fixture and a failing intensity API mock; against a running exporter's
//! state file and address; exit 0 when all is well, 1 naming each problem, 2 for bad flags.

use crate::carbon_mock::{MockApi, Reply};
use crate::support::{fake_nvml_lib, now_unix, run_to_exit, temp_file, Exporter, Scrape};

/// One GPU with a counter, processes and utilization; GPU 1 of `bad` also has a counter
/// that counts 1.5 times what its power readings say.
fn scenario(bad: bool) -> String {
    let mut s = format!(
        "epoch = {}
[gpu]
uuid = GPU-c0c0c0c0-0000-0000-0000-000000000000
power = trace:0=150,30=450
util = const:80
process = pid=4242 sm=const:80
",
        now_unix()
    );
    if bad {
        s.push_str(
            "[gpu]
uuid = GPU-bad00000-0000-0000-0000-000000000001
power = const:200
counter_scale = 1.5
",
        );
    }
    s
}

/// Runs `check` on the fake NVML with `scenario(bad)`, a fresh state file and a free address.
fn check_fake_nvml(bad: bool) -> (Option<i32>, String) {
    check_scenario(&scenario(bad))
}

/// Runs `check` on the fake NVML with `scenario`, a fresh state file and a free address.
fn check_scenario(scenario: &str) -> (Option<i32>, String) {
    let file = temp_file("scenario.txt", scenario);
    let state = file.with_file_name("state.json");
    let (status, out) = run_to_exit(
        &[
            &format!("--nvml.library-path={}", fake_nvml_lib().display()),
            &format!("--state.file={}", state.display()),
            "--web.listen-address=127.0.0.1:0",
            "--sample.interval=200ms",
            "check",
            "--check.duration=2s",
        ],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    // Nothing of the ledger is created, and the directory probe is gone again.
    let dir = std::fs::read_dir(state.parent().expect("dir")).expect("list dir");
    let names: Vec<String> = dir
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["scenario.txt"], "{out}");
    (status.code(), out)
}

fn line<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?}:\n{out}"))
}

#[test]
fn a_good_gpu_passes_with_every_capability_named() {
    let (code, out) = check_fake_nvml(false);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("GPU 0 NVIDIA H100 80GB HBM3 GPU-c0c0c0c0-0000-0000-0000-000000000000 (nvml)"),
        "{out}"
    );
    // 2 s at 200 ms: 11 samples.
    for what in ["energy counter", "power", "utilization"] {
        let l = line(&out, &format!("ok       {what} "));
        assert!(l.ends_with("11 of 11 readings"), "{l}");
    }
    let l = line(&out, "ok       processes");
    assert!(l.contains("(at most 1 at once)"), "{l}");
    assert!(line(&out, "-        MIG").ends_with("not enabled"), "{out}");
    // The counter is the exact integral of the ramp, and the readings are instantaneous.
    let l = line(&out, "ok       energy  ");
    assert!(l.contains("+0.0 % (limit ±10 %)"), "{l}");
    assert!(
        line(&out, "ok       static").contains("480 g/kWh, zone WORLD"),
        "{out}"
    );
    assert!(
        line(&out, "ok       read").contains("nothing saved yet"),
        "{out}"
    );
    assert!(
        line(&out, "ok       lock").contains("no exporter holds it"),
        "{out}"
    );
    assert!(line(&out, "ok       127.0.0.1:0").contains("free"), "{out}");
    assert!(out.ends_with("Result: all well.\n"), "{out}");
}

/// A counter at 1.5 times the power readings: 3000 J against 2000 J is +50 %, named as the
/// one problem, GPU 0 still fine.
/// MIG GPUs: the instances NVML lists and where their activity comes from; an instance list
/// or GPM that can't be read is a problem, since the energy split depends on them.
#[test]
fn mig_instances_and_gpm_are_checked() {
    let scenario = format!(
        "epoch = {}
[gpu]
uuid = GPU-00000000-0000-0000-0000-00000000m1g0
power = const:400
mig = yes
gpm = yes
mig_instance = gi=1 sm=16 profile=1g.10gb activity=const:50
mig_instance = gi=2 sm=32 profile=2g.20gb activity=const:100
[gpu]
uuid = GPU-00000000-0000-0000-0000-00000000m1g1
name = NVIDIA A100-SXM4-40GB
power = const:300
mig = yes
sm_count = 108
mig_instance = gi=1 sm=14 profile=1g.5gb
[gpu]
uuid = GPU-00000000-0000-0000-0000-00000000m1g2
power = const:150
mig = yes
gpm = yes
mig_instance = gi=1 sm=14 activity=const:0 gpm_error=0.5:0.5
[gpu]
uuid = GPU-00000000-0000-0000-0000-00000000m1g3
power = const:100
mig = unreadable
",
        now_unix()
    );
    let (code, out) = check_scenario(&scenario);
    assert_eq!(code, Some(1), "{out}");
    let mig: Vec<&str> = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("MIG"))
        .map(str::trim)
        .collect();
    assert_eq!(mig.len(), 4, "{out}");
    assert!(
        mig[0].starts_with("ok")
            && mig[0].ends_with("enabled, 2 instances (1g.10gb, 2g.20gb), activity from GPM"),
        "{out}"
    );
    assert!(
        mig[1].starts_with("ok")
            && mig[1].ends_with("enabled, 1 instance (1g.5gb), activity from processes (no GPM)"),
        "{out}"
    );
    assert!(
        mig[2].starts_with("PROBLEM") && mig[2].contains("GPM failed"),
        "{out}"
    );
    assert!(
        mig[3].starts_with("PROBLEM")
            && mig[3].contains("instances unreadable in 11 of 11 samples"),
        "{out}"
    );
}

#[test]
fn a_counter_at_the_wrong_rate_fails_the_check_naming_the_gpu() {
    let (code, out) = check_fake_nvml(true);
    assert_eq!(code, Some(1), "{out}");
    let problem = "GPU 1 NVIDIA H100 80GB HBM3 GPU-bad00000-0000-0000-0000-000000000001 (nvml): energy: counter ";
    let l = line(&out, &format!("- {problem}"));
    assert!(l.ends_with("+50.0 % (limit ±10 %)"), "{l}");
    assert!(out.contains("\nResult: 1 problem:\n"), "{out}");
    assert!(line(&out, "ok       energy  ").contains("+0.0 %"), "{out}");
}

/// The intensity API answers 500: the check fails naming the provider and the status.
#[test]
fn a_failing_intensity_provider_fails_the_check() {
    let mock = MockApi::start(|_, _| Reply::json(500, r#"{"error":"down"}"#));
    let url = format!("--carbon.electricitymaps.url={}/v3", mock.url());
    let (status, out) = run_to_exit(
        &[
            "--demo",
            "--sample.interval=200ms",
            "--web.listen-address=127.0.0.1:0",
            "--carbon.provider=electricitymaps",
            "--carbon.electricitymaps.zone=DE",
            "--carbon.http-timeout=2s",
            &url,
            "check",
            "--check.duration=1s",
        ],
        &[("GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN", "t0ken")],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    let l = line(
        &out,
        "- carbon intensity: electricitymaps: fetch failed: HTTP 500",
    );
    assert!(l.contains("fallback"), "{l}");
    assert_eq!(mock.requests().len(), 1, "one fetch, no retries");
}

/// Next to a running exporter: its address and its state file are in use, which is fine;
/// `check` neither writes the ledger nor locks the exporter out (it commits on).
#[test]
fn beside_a_running_exporter_the_check_passes_and_leaves_its_ledger_alone() {
    let state = temp_file("placeholder", "").with_file_name("state.json");
    let state_flag = format!("--state.file={}", state.display());
    let exporter = Exporter::start(&["--demo", "--sample.interval=100ms", &state_flag], &[]);
    exporter.wait_ready();
    let writes = |s: &Scrape| s.value("gpu_carbon_exporter_state_writes_total", &[]);
    let before = writes(&exporter.scrape());
    let (status, out) = run_to_exit(
        &[
            "--demo",
            "--sample.interval=100ms",
            &state_flag,
            &format!("--web.listen-address={}", exporter.addr),
            "check",
            "--check.duration=500ms",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        line(&out, "ok       lock").contains("a running exporter holds it"),
        "{out}"
    );
    assert!(
        line(&out, "ok       write").contains("can be written"),
        "{out}"
    );
    let l = line(&out, &format!("ok       {}", exporter.addr));
    assert!(
        l.contains("a running gpu-carbon-exporter answers on it"),
        "{l}"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = exporter.scrape();
    assert!(writes(&after) > before, "the exporter stopped committing");
    assert_eq!(
        after.value("gpu_carbon_exporter_state_persisting", &[]),
        1.0
    );
    assert!(!exporter.log().contains("locked"), "{}", exporter.log());
}

/// An address another program holds, and a state file in a directory that does not exist:
/// two problems, each named.
#[test]
fn a_taken_address_and_an_unwritable_state_file_are_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address");
    let missing = temp_file("placeholder", "").with_file_name("no-such-dir/state.json");
    let (status, out) = run_to_exit(
        &[
            "--demo",
            "--sample.interval=200ms",
            &format!("--state.file={}", missing.display()),
            &format!("--web.listen-address={addr}"),
            "check",
            "--check.duration=200ms",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    let l = line(
        &out,
        &format!("- listen address: {addr}: taken by a program"),
    );
    assert!(l.contains("could not listen"), "{l}");
    let dir = missing.parent().expect("dir").display().to_string();
    assert!(
        line(
            &out,
            &format!("- state file {}: write: {dir}", missing.display())
        )
        .contains("No such file"),
        "{out}"
    );
    assert!(out.contains("\nResult: 2 problems:\n"), "{out}");
}

/// AMD and Intel GPUs and RAPL domains from the sysfs fixture: what each supports, and the
/// energy source the exporter would use.
#[test]
fn sysfs_devices_are_reported_with_what_they_support() {
    let sysfs = format!(
        "--path.sysfs={}/tests/fixtures/sysfs",
        env!("CARGO_MANIFEST_DIR")
    );
    let (status, out) = run_to_exit(
        &[
            "--no-collector.nvml",
            "--collector.hwmon",
            "--collector.rapl",
            &sysfs,
            "--sample.interval=200ms",
            "--web.listen-address=127.0.0.1:0",
            "check",
            "--check.duration=400ms",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(0), "{out}");
    let amd = out
        .split("GPU 0 AMD Instinct MI210")
        .nth(1)
        .and_then(|rest| rest.split("\nGPU 1").next())
        .unwrap_or_else(|| panic!("no AMD GPU:\n{out}"));
    assert!(
        amd.contains("-        energy counter   not supported by this device"),
        "{amd}"
    );
    assert!(
        amd.contains("ok       power            3 of 3 readings"),
        "{amd}"
    );
    assert!(amd.contains("from integrated power readings"), "{amd}");
    assert!(
        amd.contains("the hwmon collector does not list them"),
        "{amd}"
    );
    assert!(out.contains("host domain package-0 (rapl)"), "{out}");
}

#[test]
fn bad_check_flags_exit_2_naming_the_flag() {
    for (args, needle) in [
        (&["check", "--check.duration=soon"][..], "--check.duration"),
        (
            &["--sample.interval=1s", "check", "--check.duration=500ms"][..],
            "at least --sample.interval",
        ),
        (&["check", "--no.such-flag"][..], "--no.such-flag"),
    ] {
        let args: Vec<&str> = ["--demo"].iter().chain(args).copied().collect();
        let (status, out) = run_to_exit(&args, &[]);
        assert_eq!(status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains(needle), "{args:?}: {out}");
    }
    // Like every flag, it can come from its environment variable.
    let (status, out) = run_to_exit(
        &["--demo", "check"],
        &[("GPU_CARBON_EXPORTER_CHECK_DURATION", "soon")],
    );
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("invalid value \"soon\" for --check.duration"),
        "{out}"
    );
}

/// NVML that can't start is the check's first problem, with the library and NVML's error;
/// the other parts are still checked.
#[test]
fn nvml_that_cannot_start_is_named() {
    let file = temp_file("scenario.txt", "init = driver_not_loaded\n[gpu]\n");
    let (status, out) = run_to_exit(
        &[
            &format!("--nvml.library-path={}", fake_nvml_lib().display()),
            "--web.listen-address=127.0.0.1:0",
            "--sample.interval=200ms",
            "check",
            "--check.duration=200ms",
        ],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    let l = line(&out, "- devices: collectors: could not initialise NVML");
    assert!(l.contains("driver is not loaded"), "{l}");
    assert!(out.contains("\nResult: 1 problem:\n"), "{out}");
    assert!(line(&out, "ok       127.0.0.1:0").contains("free"), "{out}");
}

/// A flag the exporter only warns about (a host path that is not a directory) is a problem for
/// the check, named with its flag.
#[test]
fn a_host_path_that_is_not_a_directory_is_named() {
    let (status, out) = run_to_exit(
        &[
            "--demo",
            "--path.rootfs=/no/such/rootfs",
            "--web.listen-address=127.0.0.1:0",
            "check",
            "--check.duration=1s",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(1), "{out}");
    let l = line(
        &out,
        "- configuration: --path.rootfs: /no/such/rootfs: no such directory",
    );
    assert!(l.contains("etc/passwd"), "{l}");
    assert!(out.contains("\nResult: 1 problem:\n"), "{out}");
}
