//! `yamllint --strict` on every YAML file under `deploy/` and `grafana/`.

use std::process::Command;

use super::run;
use crate::support::{repo, tool};

const YAMLLINT_CONFIG: &str = "deploy/.yamllint";

#[test]
fn yaml_under_deploy_and_grafana_lints_clean() {
    let Some(yamllint) = tool("yamllint", "python3 -m pip install yamllint") else {
        return;
    };
    let ran = run(
        Command::new(yamllint)
            .args(["--strict", "--format", "parsable", "--config-file"])
            .arg(repo(YAMLLINT_CONFIG))
            .arg(repo("deploy"))
            .arg(repo("grafana")),
        None,
    );
    ran.assert_clean("yamllint --strict");
}
