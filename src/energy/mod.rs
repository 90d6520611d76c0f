//! The accounting core: pure functions and small state machines over readings and timestamps,
//! with no clock, device or I/O, so every rule here is unit-tested directly.
//!
//! - [`counter`]: differences of the hardware energy counter, with reset detection;
//! - [`trapezoid`]: energy by trapezoid integration of power where no counter exists;
//! - [`plausibility`]: which readings are physically possible;
//! - [`estimate`]: a utilization-based power model where no sensor exists;
//! - [`ledger`]: one device's running totals of energy, idle energy and CO2e.

pub mod counter;
pub mod estimate;
pub mod ledger;
pub mod plausibility;
pub mod trapezoid;

pub use estimate::{EstimateSettings, PowerModel};
pub use ledger::{Factors, Ledger, Outcome, Step, Totals};

use crate::backend::Capabilities;

/// Where a device's energy figure comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EnergySource {
    /// Differences of the device's cumulative energy counter: exact, independent of sampling.
    Counter {
        /// Range of a counter that wraps around (RAPL), in µJ; `None` for one that resets.
        wraps_at_uj: Option<u64>,
    },
    /// Trapezoid integration of power readings: as good as the sampling and the power reading.
    Integrated,
    /// Trapezoid integration of a power estimate from utilization: a model, not a measurement.
    Estimated(PowerModel),
    /// Nothing to measure or estimate energy from.
    Unavailable,
}

impl EnergySource {
    /// The `energy_source` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySource::Counter { .. } => "counter",
            EnergySource::Integrated => "integrated",
            EnergySource::Estimated(_) => "estimated",
            EnergySource::Unavailable => "none",
        }
    }

    /// The best source a device offers: its counter, else its power reading, else an estimate
    /// from utilization if a power model is known. `force_model` estimates even where a sensor
    /// exists (for boards whose sensor is known to be wrong).
    pub fn choose(
        caps: &Capabilities,
        wraps_at_uj: Option<u64>,
        model: Option<PowerModel>,
        force_model: bool,
    ) -> EnergySource {
        match model {
            Some(m) if caps.utilization && force_model => EnergySource::Estimated(m),
            _ if caps.energy_counter => EnergySource::Counter { wraps_at_uj },
            _ if caps.power => EnergySource::Integrated,
            Some(m) if caps.utilization => EnergySource::Estimated(m),
            _ => EnergySource::Unavailable,
        }
    }
}
