//! Physical units as newtypes, and the one place where they convert.
//!
//! Energy is kept in joules while accounting (the unit NVML's millijoule counter and power × time
//! give directly) and converted to kWh only at the edge, because kWh is the unit of bills and of
//! carbon factors (g/kWh).

use std::ops::{Add, AddAssign};

/// Joules in one kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;

/// Power in watts.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Watts(pub f64);

impl Watts {
    /// Converts an NVML milliwatt reading.
    pub fn from_milliwatts(mw: u32) -> Watts {
        Watts(f64::from(mw) / 1000.0)
    }
}

/// Energy in joules.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Joules(pub f64);

impl Joules {
    /// Converts a RAPL/hwmon microjoule counter value or difference.
    pub fn from_microjoules(uj: u64) -> Joules {
        Joules(uj as f64 / 1e6)
    }

    /// The same energy in kilowatt-hours.
    pub fn kwh(self) -> f64 {
        self.0 / JOULES_PER_KWH
    }
}

impl Add for Joules {
    type Output = Joules;
    fn add(self, rhs: Joules) -> Joules {
        Joules(self.0 + rhs.0)
    }
}

impl AddAssign for Joules {
    fn add_assign(&mut self, rhs: Joules) {
        self.0 += rhs.0;
    }
}

/// Carbon intensity of electricity in grams of CO2-equivalent per kWh.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct GramsPerKwh(pub f64);

/// Grams in one (international avoirdupois) pound, exactly.
pub const GRAMS_PER_POUND: f64 = 453.592_37;

impl GramsPerKwh {
    /// Converts a rate in pounds per MWh (WattTime's unit): × 453.59237 g/lb ÷ 1000 kWh/MWh.
    pub fn from_lb_per_mwh(lb_per_mwh: f64) -> GramsPerKwh {
        GramsPerKwh(lb_per_mwh * GRAMS_PER_POUND / 1000.0)
    }
}

/// Mass of CO2-equivalent emissions in grams.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Grams(pub f64);

impl AddAssign for Grams {
    fn add_assign(&mut self, rhs: Grams) {
        self.0 += rhs.0;
    }
}

/// Emissions of `energy` drawn by IT equipment: the facility's overhead (PUE) scales the energy
/// taken from the grid, and the grid's intensity turns that into grams.
pub fn emissions(energy: Joules, pue: f64, intensity: GramsPerKwh) -> Grams {
    Grams(energy.kwh() * pue * intensity.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Watts::from_milliwatts(312_500), Watts(312.5));
        assert_eq!(Joules::from_microjoules(3_600_000_000_000).kwh(), 1.0);
    }

    #[test]
    fn pounds_per_mwh() {
        assert!((GramsPerKwh::from_lb_per_mwh(1000.0).0 - 453.592_37).abs() < 1e-9);
        assert_eq!(GramsPerKwh::from_lb_per_mwh(0.0), GramsPerKwh(0.0));
    }

    #[test]
    fn one_kwh_at_pue_and_intensity() {
        let g = emissions(Joules(JOULES_PER_KWH), 1.5, GramsPerKwh(400.0));
        assert!((g.0 - 600.0).abs() < 1e-9);
    }
}
