//! Start-up as a user meets it: bad flags exit 2 naming the flag; --help and --version work.

use crate::support::run_to_exit;

#[test]
fn bad_values_exit_2_naming_the_flag() {
    let cases: [(&str, &str); 8] = [
        ("--carbon.zone=XX", "--carbon.zone"),
        ("--carbon.intensity=5000", "--carbon.intensity"),
        ("--carbon.pue=0.5", "--carbon.pue"),
        ("--sample.interval=fast", "--sample.interval"),
        (
            "--web.listen-address=not-an-address",
            "--web.listen-address",
        ),
        ("--web.telemetry-path=/", "--web.telemetry-path"),
        ("--log.level=loud", "--log.level"),
        ("--no.such-flag", "--no.such-flag"),
    ];
    for (arg, flag) in cases {
        let (status, out) = run_to_exit(&["--demo", arg], &[]);
        assert_eq!(status.code(), Some(2), "{arg}: {out}");
        assert!(
            out.contains(flag),
            "{arg}: message should name {flag}: {out}"
        );
    }
}

#[test]
fn intensity_and_zone_together_are_refused() {
    let (status, out) = run_to_exit(
        &["--demo", "--carbon.zone=DE", "--carbon.intensity=100"],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("--carbon.zone") && out.contains("--carbon.intensity"),
        "{out}"
    );
}

#[test]
fn unbindable_address_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let (status, out) = run_to_exit(&["--demo", &format!("--web.listen-address={addr}")], &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains(&addr.to_string()) && out.contains("--web.listen-address"),
        "{out}"
    );
}

#[test]
fn help_lists_flags_with_defaults_and_version_prints() {
    let (status, out) = run_to_exit(&["--help"], &[]);
    assert_eq!(status.code(), Some(0));
    for needle in [
        "--web.listen-address",
        "[default: :9402]",
        "--web.telemetry-path",
        "[default: /metrics]",
        "--sample.interval",
        "[default: 1s]",
        "--nvml.library-path",
        "--carbon.zone",
        "--carbon.pue",
        "--log.format",
        "--demo",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
    let (status, out) = run_to_exit(&["--version"], &[]);
    assert_eq!(status.code(), Some(0));
    // As Prometheus' own tools print it: version and revision, build date, toolchain, target.
    let first = format!(
        "gpu-carbon-exporter {} (revision: ",
        env!("CARGO_PKG_VERSION")
    );
    assert!(out.starts_with(&first), "{out}");
    for needle in [
        "build date:    20",
        "rustc version: rustc 1.",
        "platform:      ",
    ] {
        assert!(out.contains(needle), "--version lacks {needle}:\n{out}");
    }
    assert!(out.contains(std::env::consts::ARCH), "{out}");
    let revision = out[first.len()..].split(')').next().unwrap_or("");
    assert!(!revision.is_empty() && revision != "unknown", "{out}");
}

/// A misspelt variable would otherwise be ignored without a word and its default stay in force.
#[test]
fn a_misspelt_variable_is_warned_about_with_a_suggestion() {
    let e = crate::support::Exporter::start(
        &["--demo"],
        &[
            ("GPU_CARBON_EXPORTER_CARBON_ZOEN", "DE"),
            ("GPU_CARBON_EXPORTER_CARBON_PUE", "1.2"),
        ],
    );
    e.wait_ready();
    let log = e.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no flag reads"))
        .collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("variable=GPU_CARBON_EXPORTER_CARBON_ZOEN")
            && warned[0].contains("did_you_mean=GPU_CARBON_EXPORTER_CARBON_ZONE")
            && warned[0].contains("level=warn"),
        "{log}"
    );
}
