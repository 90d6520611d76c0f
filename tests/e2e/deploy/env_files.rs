//! The option files shown to users (the systemd unit's environment file and the Kubernetes
//! ConfigMap's) name only variables that the binary reads.

use super::{read, KUBE_ENV, UNIT_ENV};
use crate::support;

/// The option files shown to users name only variables that the binary reads.
#[test]
fn option_files_name_only_the_exporters_variables() {
    let problems: Vec<String> = [UNIT_ENV, KUBE_ENV]
        .into_iter()
        .flat_map(env_file_problems)
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every variable an environment file sets, or shows commented out, is one of the binary's.
fn env_file_problems(rel: &str) -> Vec<String> {
    let help = support::run_to_exit(&["--help"], &[]).1;
    let is_name = |k: &&str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let text = read(rel);
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(is_name)
        .collect();
    let mut problems: Vec<String> = names
        .iter()
        .filter(|k| !help.contains(&format!("[env: {k}=")))
        .map(|k| format!("{rel}: {k} is not a variable of the exporter"))
        .collect();
    if names.is_empty() {
        problems.push(format!("{rel}: no GPU_CARBON_EXPORTER_* variables"));
    }
    problems
}
