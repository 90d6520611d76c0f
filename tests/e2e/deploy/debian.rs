//! The Debian package's files under `deploy/debian/` (built by `scripts/build-deb.sh`; the
//! installed package is checked by `tests/deb/check-installed.sh`):
//!
//! - its systemd unit is the reviewed one of `deploy/systemd/` (verified, exposure ≤ 2.0,
//!   started by every launch test) with only the binary's path changed, so the two never drift;
//! - its `postrm` purges exactly the state directory that unit gives the ledger, and keeps the
//!   `#DEBHELPER#` token where cargo-deb inserts the systemd snippets.

use std::process::Command;

use super::{read, run, UNIT};
use crate::support::{repo, tool};

const DEBIAN_UNIT: &str = "deploy/debian/gpu-carbon-exporter.service";
const POSTRM: &str = "deploy/debian/postrm";
/// Where `[package.metadata.deb]` installs the binary.
const PACKAGED_BIN: &str = "/usr/bin/gpu-carbon-exporter";

/// The lines from `[Unit]` on: what systemd reads, comments included (they explain the lines).
fn body(rel: &str) -> Vec<String> {
    let text = read(rel);
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let start = lines
        .iter()
        .position(|l| l == "[Unit]")
        .unwrap_or_else(|| panic!("{rel}: no [Unit] section"));
    lines[start..].to_vec()
}

#[test]
fn debian_unit_is_the_reviewed_unit_with_the_packaged_binary() {
    let reviewed = body(UNIT);
    let packaged = body(DEBIAN_UNIT);
    assert_eq!(
        reviewed.len(),
        packaged.len(),
        "{DEBIAN_UNIT} and {UNIT} differ in length"
    );
    let mut differences = Vec::new();
    for (a, b) in reviewed.iter().zip(&packaged) {
        if a == b {
            continue;
        }
        if a.starts_with("ExecStart=") && *b == format!("ExecStart={PACKAGED_BIN}") {
            continue;
        }
        differences.push(format!("{UNIT}: {a}\n{DEBIAN_UNIT}: {b}"));
    }
    assert!(
        differences.is_empty(),
        "the package's unit must be the reviewed one with ExecStart={PACKAGED_BIN}:\n{}",
        differences.join("\n")
    );
    assert!(
        packaged.contains(&format!("ExecStart={PACKAGED_BIN}")),
        "{DEBIAN_UNIT}: ExecStart is not {PACKAGED_BIN}"
    );
}

#[test]
fn debian_postrm_purges_the_units_state_directory_and_keeps_the_debhelper_token() {
    let unit = read(DEBIAN_UNIT);
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{DEBIAN_UNIT}: no {key}"))
            .to_string()
    };
    let dir = value("StateDirectory=");
    assert!(unit.contains("\nDynamicUser=yes\n"), "{DEBIAN_UNIT}");
    // The ledger lives in the state directory, so purging that directory purges the ledger.
    let state_file = value("Environment=GPU_CARBON_EXPORTER_STATE_FILE=");
    assert!(
        state_file.starts_with(&format!("/var/lib/{dir}/")),
        "{DEBIAN_UNIT}: ledger {state_file} outside /var/lib/{dir}"
    );
    let postrm = read(POSTRM);
    let purge = postrm
        .split("if [ \"$1\" = \"purge\" ]; then")
        .nth(1)
        .and_then(|rest| rest.split("\nfi\n").next())
        .unwrap_or_else(|| panic!("{POSTRM}: no purge branch"));
    // With DynamicUser=yes systemd keeps the directory under /var/lib/private and links to it.
    for want in [
        format!("rm -rf /var/lib/private/{dir}"),
        format!("rm -rf /var/lib/{dir}"),
    ] {
        assert!(
            purge.lines().any(|l| l.trim() == want),
            "{POSTRM}: purge lacks `{want}`"
        );
    }
    // cargo-deb replaces every occurrence of the token, one in a comment included.
    assert_eq!(
        postrm.matches("#DEBHELPER#").count(),
        1,
        "{POSTRM}: cargo-deb needs the #DEBHELPER# token exactly once"
    );
    assert!(
        postrm.lines().any(|l| l == "#DEBHELPER#"),
        "{POSTRM}: #DEBHELPER# on a line of its own"
    );
    if let Some(sh) = tool("sh", "apt-get install dash") {
        let ran = run(Command::new(sh).arg("-n").arg(repo(POSTRM)), None);
        ran.assert_clean("sh -n postrm");
    }
}
