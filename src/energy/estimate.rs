//! Power where a GPU has no sensor: a linear model of utilization,
//! `P ≈ P_idle + (P_rated − P_idle) × utilization`, the "rated power × utilization" estimate
//! teams fall back to, with an idle floor so an allocated but unused GPU isn't counted as free.
//! Estimates are labelled `energy_source="estimated"` wherever they are exported.
//!
//! Rated power is the board power of the vendor's datasheet. Idle power is not published for
//! most boards; the table uses [`IDLE_FRACTION`] of the rated power, an assumption in line with
//! what idle data-center GPUs report (H100 SXM: ~70 W of 700 W). Override both with
//! `--estimate.rated-watts` and `--estimate.idle-watts` when you know better.

use crate::units::Watts;

/// Assumed idle draw as a share of rated board power (see the module docs).
pub const IDLE_FRACTION: f64 = 0.1;

/// A linear power model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerModel {
    /// Draw at 0 % utilization.
    pub idle: Watts,
    /// Draw at 100 % utilization (the board's rated power).
    pub rated: Watts,
}

impl PowerModel {
    /// A model from rated power alone, with the assumed idle share.
    pub fn from_rated(rated: Watts) -> PowerModel {
        PowerModel {
            idle: Watts(rated.0 * IDLE_FRACTION),
            rated,
        }
    }

    /// Estimated power at `utilization` (0–1; clamped).
    pub fn power_at(&self, utilization: f64) -> Watts {
        let u = if utilization.is_finite() {
            utilization.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Watts(self.idle.0 + (self.rated.0 - self.idle.0) * u)
    }
}

/// Rated board power by product name, from NVIDIA's datasheets (maximum board power / TDP).
/// Matched as a case-insensitive substring of the NVML name, first match wins, so more specific
/// names come first.
const RATED: [(&str, f64, &str); 16] = [
    ("H100 80GB HBM3", 700.0, "H100 SXM5 datasheet, 2023"),
    ("H100 NVL", 400.0, "H100 NVL datasheet, 2023"),
    ("H100 PCIe", 350.0, "H100 PCIe datasheet, 2023"),
    ("A100-SXM4", 400.0, "A100 datasheet, 2021"),
    ("A100 80GB PCIe", 300.0, "A100 datasheet, 2021"),
    ("A100-PCIE-40GB", 250.0, "A100 datasheet, 2021"),
    ("L40S", 350.0, "L40S datasheet, 2023"),
    ("L40", 300.0, "L40 datasheet, 2022"),
    ("L4", 72.0, "L4 datasheet, 2023"),
    ("A40", 300.0, "A40 datasheet, 2021"),
    ("A30", 165.0, "A30 datasheet, 2021"),
    ("A10G", 150.0, "A10 datasheet, 2021 (A10G: AWS variant)"),
    ("A10", 150.0, "A10 datasheet, 2021"),
    ("A2", 60.0, "A2 datasheet, 2021"),
    ("Tesla T4", 70.0, "T4 datasheet, 2019"),
    ("V100-SXM2", 300.0, "V100 datasheet, 2020"),
];

/// The table's model for a product name, if it is listed.
pub fn model_for(name: &str) -> Option<PowerModel> {
    let lower = name.to_lowercase();
    RATED
        .iter()
        .find(|(pattern, _, _)| contains_word(&lower, &pattern.to_lowercase()))
        .map(|&(_, rated, _)| PowerModel::from_rated(Watts(rated)))
}

/// `pattern` occurs in `text` not glued to a following letter or digit ("L4" must not match
/// "L40S", "A10" must not match "A100").
fn contains_word(text: &str, pattern: &str) -> bool {
    text.match_indices(pattern).any(|(i, _)| {
        text[i + pattern.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

/// How power is estimated for devices without a sensor.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EstimateSettings {
    /// Estimate even where a sensor exists.
    pub force: bool,
    /// A model for every device, from flags; otherwise the built-in table by product name.
    pub model: Option<PowerModel>,
}

impl EstimateSettings {
    /// The model for a device named `name`: the flags' one, else the built-in table's.
    pub fn model_for(&self, name: &str) -> Option<PowerModel> {
        self.model.or_else(|| model_for(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_model() {
        let m = PowerModel {
            idle: Watts(50.0),
            rated: Watts(350.0),
        };
        assert_eq!(m.power_at(0.0), Watts(50.0));
        assert_eq!(m.power_at(0.5), Watts(200.0));
        assert_eq!(m.power_at(1.0), Watts(350.0));
        assert_eq!(m.power_at(1.7), Watts(350.0));
        assert_eq!(m.power_at(f64::NAN), Watts(50.0));
    }

    #[test]
    fn table_lookup_by_name() {
        let rated = |n: &str| model_for(n).map(|m| m.rated.0);
        assert_eq!(rated("NVIDIA H100 80GB HBM3"), Some(700.0));
        assert_eq!(rated("NVIDIA A100-SXM4-80GB"), Some(400.0));
        assert_eq!(rated("NVIDIA A100-PCIE-40GB"), Some(250.0));
        assert_eq!(rated("NVIDIA L4"), Some(72.0));
        assert_eq!(rated("NVIDIA L40S"), Some(350.0));
        assert_eq!(rated("NVIDIA A10"), Some(150.0));
        assert_eq!(rated("Tesla T4"), Some(70.0));
        assert_eq!(rated("NVIDIA GeForce RTX 4090"), None);
        assert_eq!(model_for("Tesla T4").map(|m| m.idle), Some(Watts(7.0)));
    }
}
