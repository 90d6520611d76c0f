//! Which hwmon channel a GPU's energy, power and limit come from.
//!
//! hwmon numbers its sensors by channel (`energy1_input`, `energy2_input`, …) and may name each
//! in `energyN_label`. Intel's xe driver exposes `card` (the whole card) as channel 1 and `pkg`
//! (the GPU package, without memory and board) as channel 2, but Data Center GPU Max and DG2
//! boards have only `pkg`; i915 has one unlabelled channel; amdgpu labels its power channel
//! `PPT`. The rules: the energy counter of the `card` channel if there is one, else of the
//! lowest readable channel; without a counter, the power reading chosen the same way
//! (`powerN_average`, else `powerN_input` when the average can't be read); the limit of the
//! same channel. The chosen channel's label (or `energyN` / `powerN` without one) is reported,
//! so a package-only figure is never mistaken for the card's.

use std::path::{Path, PathBuf};

use crate::backend::sysfs::{entries, read_text, read_u64};

/// The sensor files of one GPU's chosen channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Sensors {
    /// Cumulative energy, µJ.
    pub energy: Option<PathBuf>,
    /// Power, µW.
    pub power: Option<PathBuf>,
    /// Power limit, µW.
    pub limit: Option<PathBuf>,
    /// The channel's label, lower case, or `energyN` / `powerN` where it has none.
    pub channel: Option<String>,
}

/// The channel to read in `hwmon`; `amd` chooses the limit file (`powerN_cap` on amdgpu,
/// `powerN_max` on Intel).
pub(super) fn choose(hwmon: &Path, amd: bool) -> Sensors {
    let energy = best(hwmon, "energy", &["input"]);
    let power_only = energy
        .is_none()
        .then(|| best(hwmon, "power", &["average", "input"]));
    let Some((kind, n, label)) = energy
        .map(|(n, label, _)| ("energy", n, label))
        .or_else(|| {
            power_only
                .flatten()
                .map(|(n, label, _)| ("power", n, label))
        })
    else {
        return Sensors::default();
    };
    let file = |name: String| Some(hwmon.join(name)).filter(|p| read_u64(p).is_ok());
    Sensors {
        energy: (kind == "energy").then(|| hwmon.join(format!("energy{n}_input"))),
        power: file(format!("power{n}_average")).or_else(|| file(format!("power{n}_input"))),
        limit: file(format!("power{n}_{}", if amd { "cap" } else { "max" })),
        channel: Some(label.unwrap_or_else(|| format!("{kind}{n}"))),
    }
}

/// The readable channel of `kind` (`energy`, `power`) to use: the one labelled `card`, else
/// the lowest numbered. A channel counts as readable when one of its `suffixes` files reads as
/// a number. Returns the channel number, its label and the file that read.
fn best(hwmon: &Path, kind: &str, suffixes: &[&str]) -> Option<(u32, Option<String>, PathBuf)> {
    let mut readable: Vec<(u32, Option<String>, PathBuf)> = channels(hwmon, kind)
        .into_iter()
        .filter_map(|n| {
            let file = suffixes
                .iter()
                .map(|s| hwmon.join(format!("{kind}{n}_{s}")))
                .find(|p| read_u64(p).is_ok())?;
            let label = read_text(&hwmon.join(format!("{kind}{n}_label")))
                .ok()
                .map(|l| l.to_ascii_lowercase())
                .filter(|l| !l.is_empty());
            Some((n, label, file))
        })
        .collect();
    readable.sort_by_key(|(n, label, _)| (label.as_deref() != Some("card"), *n));
    readable.into_iter().next()
}

/// The channel numbers that have any `kind` file (`energy2_input` → 2).
fn channels(hwmon: &Path, kind: &str) -> Vec<u32> {
    let mut found: Vec<u32> = entries(hwmon, |n| n.starts_with(kind))
        .into_iter()
        .filter_map(|(name, _)| {
            let rest = name.strip_prefix(kind)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sysfs::fake::Tree;

    const H: &str = "hwmon0";

    fn sensors(t: &Tree, amd: bool) -> Sensors {
        choose(&t.root().join(H), amd)
    }

    fn name(p: &Option<PathBuf>) -> Option<String> {
        p.as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    }

    /// xe since 6.8 on Data Center GPU Max / DG2: only the package channel, as channel 2.
    #[test]
    fn xe_package_only_channel_is_read_and_named() {
        let t = Tree::new("xe-pkg");
        t.file("hwmon0/name", "xe");
        t.file("hwmon0/energy2_input", "5000000");
        t.file("hwmon0/energy2_label", "pkg");
        t.file("hwmon0/power2_max", "300000000");
        t.file("hwmon0/power2_label", "pkg");
        let s = sensors(&t, false);
        assert_eq!(name(&s.energy).as_deref(), Some("energy2_input"));
        assert_eq!(name(&s.limit).as_deref(), Some("power2_max"));
        assert_eq!(s.channel.as_deref(), Some("pkg"));
    }

    /// With both, the card channel (which includes memory and board) wins.
    #[test]
    fn xe_card_channel_is_preferred() {
        let t = Tree::new("xe-both");
        t.file("hwmon0/energy1_input", "7000000");
        t.file("hwmon0/energy1_label", "card");
        t.file("hwmon0/energy2_input", "5000000");
        t.file("hwmon0/energy2_label", "pkg");
        t.file("hwmon0/power1_max", "400000000");
        t.file("hwmon0/power2_max", "300000000");
        let s = sensors(&t, false);
        assert_eq!(name(&s.energy).as_deref(), Some("energy1_input"));
        assert_eq!(name(&s.limit).as_deref(), Some("power1_max"));
        assert_eq!(s.channel.as_deref(), Some("card"));
    }

    /// i915: one unlabelled channel.
    #[test]
    fn unlabelled_channel_is_named_by_its_file() {
        let t = Tree::new("i915");
        t.file("hwmon0/energy1_input", "123");
        t.file("hwmon0/power1_max", "225000000");
        let s = sensors(&t, false);
        assert_eq!(name(&s.energy).as_deref(), Some("energy1_input"));
        assert_eq!(s.channel.as_deref(), Some("energy1"));
    }

    /// amdgpu: `power1_average` exists but fails to read (seen on some boards): fall back to
    /// `power1_input` instead of having no power at all.
    #[test]
    fn failing_power_average_falls_back_to_power_input() {
        let t = Tree::new("amd-input");
        t.dir("hwmon0/power1_average");
        t.file("hwmon0/power1_input", "180000000");
        t.file("hwmon0/power1_label", "PPT");
        t.file("hwmon0/power1_cap", "300000000");
        let s = sensors(&t, true);
        assert_eq!(s.energy, None);
        assert_eq!(name(&s.power).as_deref(), Some("power1_input"));
        assert_eq!(name(&s.limit).as_deref(), Some("power1_cap"));
        assert_eq!(s.channel.as_deref(), Some("ppt"));
    }

    /// An unreadable counter is not chosen; nothing readable means nothing chosen.
    #[test]
    fn unreadable_files_are_not_chosen() {
        let t = Tree::new("none");
        t.dir("hwmon0/energy1_input");
        t.file("hwmon0/temp1_input", "38000");
        assert_eq!(sensors(&t, false), Sensors::default());
    }
}
