//! The accounting core: pure functions and small state machines over readings and timestamps,
//! with no clock, device or I/O, so every rule here is unit-tested directly.
//!
//! - [`counter`]: differences of the hardware energy counter, with reset detection;
//! - [`trapezoid`]: energy by trapezoid integration of power where no counter exists;
//! - [`plausibility`]: which readings are physically possible;
//! - [`ledger`]: one GPU's running totals of energy, idle energy and CO2e.

pub mod counter;
pub mod ledger;
pub mod plausibility;
pub mod trapezoid;

pub use ledger::{Factors, GpuLedger, Observation, Outcome, Totals};

/// Where a GPU's energy figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnergySource {
    /// Differences of the device's cumulative energy counter: exact, independent of sampling.
    Counter,
    /// Trapezoid integration of power readings: as good as the sampling and the power reading.
    Integrated,
}

impl EnergySource {
    /// The `energy_source` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySource::Counter => "counter",
            EnergySource::Integrated => "integrated",
        }
    }
}
