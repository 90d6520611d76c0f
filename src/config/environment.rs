//! Environment variables that look like the exporter's but that nothing reads. clap ignores
//! variables it does not know, so a misspelt `GPU_CARBON_EXPORTER_CARBON_ZOEN=DE` in a systemd
//! environment file or a ConfigMap would silently leave the default in force.

use std::ffi::OsString;

use clap::CommandFactory;

use crate::carbon::providers::{electricitymaps, watttime};
use crate::cli::Cli;

/// The prefix of every variable the exporter reads.
pub const PREFIX: &str = "GPU_CARBON_EXPORTER_";

/// A variable with the exporter's prefix that no flag or credential reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// Its name.
    pub name: String,
    /// The known variable it most likely meant, if one is close.
    pub did_you_mean: Option<String>,
}

/// Every variable the exporter reads: one per flag, the credentials read directly, and the
/// build's revision.
pub fn known_variables() -> Vec<String> {
    let cli = Cli::command();
    let mut known: Vec<String> = cli
        .get_arguments()
        .chain(cli.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    known.extend(
        [
            electricitymaps::TOKEN_ENV,
            watttime::USERNAME_ENV,
            watttime::PASSWORD_ENV,
            // Read by build.rs (the container build sets it), and set by Cargo for `cargo run`.
            "GPU_CARBON_EXPORTER_REVISION",
        ]
        .map(String::from),
    );
    known
}

/// The variables among `names` (e.g. every name in the process environment) that carry the
/// exporter's prefix but that it does not read, in the order given.
pub fn unknown_variables(names: impl IntoIterator<Item = OsString>) -> Vec<UnknownVariable> {
    let known = known_variables();
    names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.starts_with(PREFIX) && !known.contains(n))
        .map(|name| UnknownVariable {
            did_you_mean: closest(&name, &known),
            name,
        })
        .collect()
}

/// The known name within three edits of `name`, if any (the nearest).
fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (edits(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(names: &[&str]) -> Vec<UnknownVariable> {
        unknown_variables(names.iter().map(OsString::from))
    }

    #[test]
    fn flags_and_credentials_are_known() {
        assert!(unknown(&[
            "GPU_CARBON_EXPORTER_CARBON_ZONE",
            "GPU_CARBON_EXPORTER_NO_COLLECTOR_ATTRIBUTION",
            "GPU_CARBON_EXPORTER_CHECK_DURATION",
            "GPU_CARBON_EXPORTER_CARBON_WATTTIME_PASSWORD",
            "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN",
            "PATH",
            "NVIDIA_VISIBLE_DEVICES",
        ])
        .is_empty());
    }

    #[test]
    fn a_misspelt_variable_is_found_with_a_suggestion() {
        assert_eq!(
            unknown(&["HOME", "GPU_CARBON_EXPORTER_CARBON_ZOEN"]),
            [UnknownVariable {
                name: "GPU_CARBON_EXPORTER_CARBON_ZOEN".into(),
                did_you_mean: Some("GPU_CARBON_EXPORTER_CARBON_ZONE".into()),
            }]
        );
        assert_eq!(
            unknown(&["GPU_CARBON_EXPORTER_SOMETHING_ELSE_ENTIRELY"])[0].did_you_mean,
            None
        );
    }

    #[test]
    fn edit_distance() {
        assert_eq!(edits("ZONE", "ZOEN"), 2);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
