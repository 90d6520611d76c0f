//! The accounting core: pure functions and small state machines over readings and timestamps,
//! with no clock, device or I/O, so every rule here is unit-tested directly.
//!
//! - [`counter`]: differences of the hardware energy counter, with reset detection;
//! - [`trapezoid`]: energy by trapezoid integration of power where no counter exists;
//! - [`discrepancy`]: where a counter exists, how far it disagrees with integrated power;
//! - [`averages`]: energy of power averages the device timed itself (`powermetrics`);
//! - [`plausibility`]: which readings are physically possible;
//! - [`estimate`]: a utilization-based power model where no sensor exists;
//! - [`host`]: the host CPU and memory model where there is no RAPL (Cloud Carbon Footprint);
//! - [`interval`]: energy of power figures that are already interval averages;
//! - [`ledger`]: one device's running totals of energy, idle energy and CO2e;
//! - [`mig`]: a MIG GPU's energy split among its instances, and their running totals.

pub mod averages;
pub mod counter;
pub mod discrepancy;
pub mod estimate;
pub mod host;
pub mod interval;
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
    /// Power averages the device timed itself, each times its interval (`powermetrics`): as
    /// good as the device's power figure, independent of the sampling. Labelled `integrated`.
    Averaged,
    /// Trapezoid integration of a power estimate from utilization: a model, not a measurement.
    Estimated(PowerModel),
    /// The host model ([`host`]) of a host domain without RAPL, from its size and utilization
    /// over each sample interval: a model, not a measurement.
    Modelled(host::DomainModel),
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
    /// Integrated power readings (or averages).
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
            EnergySource::Integrated | EnergySource::Averaged => SourceKind::Integrated,
            EnergySource::Estimated(_) | EnergySource::Modelled(_) => SourceKind::Estimated,
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

    /// The best source a device offers: its counter, else its power reading (summed as
    /// averages where the device `averages` its own power), else an estimate from utilization
    /// if a power model is known. `force_model` estimates even where a sensor exists (for
    /// boards whose sensor is known to be wrong).
    pub fn choose(
        caps: &Capabilities,
        wraps_at_uj: Option<u64>,
        averages: bool,
        model: Option<PowerModel>,
        force_model: bool,
    ) -> EnergySource {
        match model {
            Some(m) if caps.utilization && force_model => EnergySource::Estimated(m),
            _ if caps.energy_counter => EnergySource::Counter { wraps_at_uj },
            _ if caps.power && averages => EnergySource::Averaged,
            _ if caps.power => EnergySource::Integrated,
            Some(m) if caps.utilization => EnergySource::Estimated(m),
            _ => EnergySource::Unavailable,
        }
    }
}
