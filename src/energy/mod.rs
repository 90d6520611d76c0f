//! The accounting core: pure functions and small state machines over readings and timestamps,
//! with no clock, device or I/O, so every rule here is unit-tested directly.
//!
//! - [`counter`]: differences of the hardware energy counter, with reset detection;
//! - [`trapezoid`]: energy by trapezoid integration of power where no counter exists;
//! - [`plausibility`]: which readings are physically possible;
//! - [`estimate`]: a utilization-based power model where no sensor exists;
//! - [`ledger`]: one device's running totals of energy, idle energy and CO2e;
//! - [`mig`]: a MIG GPU's energy split among its instances, and their running totals.

pub mod counter;
pub mod estimate;
pub mod ledger;
pub mod mig;
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

/// The kind of an [`EnergySource`], without its parameters: what the `energy_source` label
/// says, what a snapshot and the ledger keep (a device that is gone needs no power model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A hardware energy counter.
    Counter,
    /// Integrated power readings.
    Integrated,
    /// Integrated power estimates.
    Estimated,
    /// No energy figure.
    #[serde(rename = "none")]
    Unavailable,
}

impl SourceKind {
    /// The `energy_source` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Counter => "counter",
            SourceKind::Integrated => "integrated",
            SourceKind::Estimated => "estimated",
            SourceKind::Unavailable => "none",
        }
    }
}

impl EnergySource {
    /// Its kind.
    pub fn kind(self) -> SourceKind {
        match self {
            EnergySource::Counter { .. } => SourceKind::Counter,
            EnergySource::Integrated => SourceKind::Integrated,
            EnergySource::Estimated(_) => SourceKind::Estimated,
            EnergySource::Unavailable => SourceKind::Unavailable,
        }
    }

    /// The `energy_source` label value.
    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    /// The range of a counter that wraps around, if this is one.
    pub fn wraps_at_uj(self) -> Option<u64> {
        match self {
            EnergySource::Counter { wraps_at_uj } => wraps_at_uj,
            _ => None,
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
