//! One GPU's running totals: energy, the part of it drawn at 0 % utilization, and its CO2e.
//! Totals only ever grow; every reading that could make them wrong is rejected and reported.

use std::time::Duration;

use super::counter::{CounterStep, CounterTracker};
use super::plausibility::{check_power, max_energy};
use super::trapezoid::Trapezoid;
use super::EnergySource;
use crate::units::{emissions, Grams, GramsPerKwh, Joules, Watts};

/// One tick's readings of a GPU, at monotonic time `at`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Monotonic time of the readings.
    pub at: Duration,
    /// Power reading, if any.
    pub power: Option<Watts>,
    /// Energy counter (mJ), if any.
    pub energy_mj: Option<u64>,
    /// Utilization (0–1), if any.
    pub utilization: Option<f64>,
    /// Enforced power limit, if known.
    pub power_limit: Option<Watts>,
}

/// The factors that turn energy into emissions, as in force at this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Factors {
    /// Power usage effectiveness of the facility (≥ 1).
    pub pue: f64,
    /// Carbon intensity of the electricity.
    pub intensity: GramsPerKwh,
}

/// What one observation did to the ledger.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The power reading, if it was possible.
    pub power: Option<Watts>,
    /// Energy added by this observation.
    pub energy: Joules,
    /// The power reading was impossible and ignored.
    pub implausible_power: bool,
    /// The energy counter moved more than the board could draw; the step was ignored.
    pub implausible_energy: bool,
    /// The energy counter restarted.
    pub counter_reset: bool,
}

/// Running totals since the exporter started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// All energy.
    pub energy: Joules,
    /// Energy drawn in intervals that ended at 0 % utilization.
    pub idle_energy: Joules,
    /// Emissions of `energy`, PUE included.
    pub co2e: Grams,
    /// How often the hardware energy counter restarted.
    pub counter_resets: u64,
}

/// One GPU's accounting state.
#[derive(Debug, Clone)]
pub struct GpuLedger {
    source: EnergySource,
    max_gap: Duration,
    counter: CounterTracker,
    trapezoid: Trapezoid,
    limit: Option<Watts>,
    totals: Totals,
}

impl GpuLedger {
    /// A ledger at zero. `max_gap` is the longest interval power integration may bridge.
    pub fn new(source: EnergySource, max_gap: Duration) -> GpuLedger {
        GpuLedger {
            source,
            max_gap,
            counter: CounterTracker::default(),
            trapezoid: Trapezoid::default(),
            limit: None,
            totals: Totals::default(),
        }
    }

    /// Where this ledger's energy comes from.
    pub fn source(&self) -> EnergySource {
        self.source
    }

    /// The totals so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Accounts one tick's readings.
    ///
    /// With a counter, energy is the counter's difference; after a restart it is the larger of
    /// the counter's new value (energy since the restart, a lower bound) and the trapezoid of
    /// the power readings around it. A counter step larger than the board could draw in its
    /// interval is rejected. Without a counter, energy is the trapezoid of the accepted power
    /// readings. Energy counts as idle when the utilization reading at the end of its interval
    /// is 0.
    pub fn observe(&mut self, obs: &Observation, factors: Factors) -> Outcome {
        if obs.power_limit.is_some() {
            self.limit = obs.power_limit;
        }
        let power = obs.power.and_then(|p| check_power(p, self.limit));
        let mut out = Outcome {
            power,
            implausible_power: obs.power.is_some() && power.is_none(),
            ..Outcome::default()
        };
        let integrated = self.trapezoid.step(obs.at, power, self.max_gap);
        let energy = match (self.source, obs.energy_mj) {
            (EnergySource::Integrated, _) => integrated,
            (EnergySource::Counter, None) => None,
            (EnergySource::Counter, Some(mj)) => {
                self.counter_energy(obs.at, mj, integrated, &mut out)
            }
        };
        if let Some(energy) = energy {
            self.add(energy, obs.utilization == Some(0.0), factors);
            out.energy = energy;
        }
        out
    }

    fn counter_energy(
        &mut self,
        at: Duration,
        mj: u64,
        integrated: Option<Joules>,
        out: &mut Outcome,
    ) -> Option<Joules> {
        let (energy, over) = match self.counter.step(at, mj) {
            CounterStep::Baseline => return None,
            CounterStep::Delta { mj, over } => (Joules::from_millijoules(mj), over),
            CounterStep::Reset { mj, over } => {
                out.counter_reset = true;
                self.totals.counter_resets += 1;
                let since = Joules::from_millijoules(mj);
                let estimate = integrated.filter(|e| *e > since).unwrap_or(since);
                (estimate, over)
            }
        };
        if energy > max_energy(over, self.limit) {
            out.implausible_energy = true;
            return None;
        }
        Some(energy)
    }

    fn add(&mut self, energy: Joules, idle: bool, factors: Factors) {
        self.totals.energy += energy;
        if idle {
            self.totals.idle_energy += energy;
        }
        self.totals.co2e += emissions(energy, factors.pue, factors.intensity);
    }
}

#[cfg(test)]
mod tests;
