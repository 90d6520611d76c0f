//! The shell scripts CI itself runs are clean for shellcheck: an error in one of them fails CI
//! before any test, or (in `scripts/fetch-prometheus3.sh`) could skip a check silently.

use std::process::Command;

use crate::support::{repo, tool};

const CI_SCRIPTS: &[&str] = &[
    ".ci/run",
    "scripts/build-deb.sh",
    "scripts/fetch-prometheus3.sh",
    "scripts/fuzz.sh",
];

#[test]
fn the_scripts_ci_runs_are_clean_for_shellcheck() {
    let Some(shellcheck) = tool("shellcheck", "apt-get install shellcheck") else {
        return;
    };
    for script in CI_SCRIPTS {
        let out = Command::new(&shellcheck)
            .arg(repo(script))
            .output()
            .expect("shellcheck");
        assert!(
            out.status.success(),
            "{script}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
