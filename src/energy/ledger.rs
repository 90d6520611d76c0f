//! One GPU's running totals: energy, the part of it drawn at 0 % utilization, and its CO2e.
//! Totals only ever grow; every reading that could make them wrong is rejected and reported.

use std::time::Duration;

use super::averages;
use super::counter::{CounterStep, CounterTracker};
use super::discrepancy::Discrepancy;
use super::interval::IntervalAverage;
use super::plausibility::{check_power, max_energy};
use super::trapezoid::Trapezoid;
use super::EnergySource;
use crate::backend::Reading;
use crate::units::{emissions, Grams, GramsPerKwh, Joules, Watts};

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
    /// Power to report: the reading if it was possible, the estimate for an estimated source,
    /// or the counter's average over its step where there is no reading.
    pub power: Option<Watts>,
    /// What this reading added to the totals.
    pub step: Step,
    /// The power reading was impossible and ignored.
    pub implausible_power: bool,
    /// The energy counter moved more than the board could draw; the step was ignored.
    pub implausible_energy: bool,
    /// The energy counter restarted.
    pub counter_reset: bool,
}

/// What one reading added to a ledger's totals: the one figure every later stage (the
/// per-workload split, the snapshot) takes, rather than diffing totals before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Step {
    /// Energy.
    pub energy: Joules,
    /// The idle part of it.
    pub idle: Joules,
    /// Its emissions, PUE included.
    pub co2e: Grams,
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
    /// How often the hardware energy counter restarted (not counting RAPL wrap-arounds).
    pub counter_resets: u64,
}

/// One GPU's accounting state.
#[derive(Debug, Clone)]
pub struct Ledger {
    source: EnergySource,
    max_gap: Duration,
    counter: CounterTracker,
    /// A counter reading rejected as implausible, with its time: the base stays where it was,
    /// but if the next reading agrees with this one the counter really moved (see
    /// [`Ledger::rejected`]).
    suspect: Option<(Duration, u64)>,
    trapezoid: Trapezoid,
    interval: IntervalAverage,
    /// A counter's energy against the integrated power readings, over the same intervals.
    discrepancy: Discrepancy,
    limit: Option<Watts>,
    totals: Totals,
}

impl Ledger {
    /// A ledger at zero. `max_gap` is the longest interval power integration may bridge.
    pub fn new(source: EnergySource, max_gap: Duration) -> Ledger {
        Ledger {
            source,
            max_gap,
            counter: CounterTracker::default(),
            suspect: None,
            trapezoid: Trapezoid::default(),
            interval: IntervalAverage::default(),
            discrepancy: Discrepancy::default(),
            limit: None,
            totals: Totals::default(),
        }
    }

    /// Continues from saved `totals`, and, for a counter source, from a counter reading `uj`
    /// taken `age` before monotonic time `at` (so the first step covers the downtime).
    pub fn resume(&mut self, totals: Totals, counter: Option<(u64, Duration)>, at: Duration) {
        self.totals = totals;
        if let (EnergySource::Counter { .. }, Some((uj, age))) = (self.source, counter) {
            self.counter.resume(at, uj, age);
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

    /// How the counter compares with the integrated power readings over the last window
    /// (always empty for a source other than a counter).
    pub fn discrepancy(&self) -> &Discrepancy {
        &self.discrepancy
    }

    /// Accounts one tick's readings.
    ///
    /// With a counter, energy is the counter's difference (across a wrap for counters that
    /// wrap); after a restart it is the larger of the counter's new value (energy since the
    /// restart, a lower bound) and the trapezoid of the power readings around it. A counter
    /// step larger than the board could draw in its interval is rejected without moving the
    /// counter's base (see [`Ledger::rejected`]). Without a counter,
    /// energy is the trapezoid of the accepted power readings, or of the power model's
    /// estimates; the host model's estimate, from the utilization over the interval just
    /// ended, counts as the rectangle of that interval; with averages the device timed itself,
    /// the sum of each average times its interval (see [`averages`]). Energy counts as idle
    /// when the utilization reading at the end of its interval is 0.
    pub fn observe(&mut self, at: Duration, obs: &Reading, factors: Factors) -> Outcome {
        if obs.power_limit.is_some() {
            self.limit = obs.power_limit;
        }
        let measured = obs.power.and_then(|p| check_power(p, self.limit));
        let power = match self.source {
            EnergySource::Estimated(model) => obs.utilization.map(|u| model.power_at(u)),
            EnergySource::Modelled(model) => model.power(obs.host_size, obs.utilization),
            _ => measured,
        };
        let mut out = Outcome {
            power,
            implausible_power: obs.power.is_some() && measured.is_none(),
            ..Outcome::default()
        };
        let since = self.trapezoid.last_at().map(|t0| at.saturating_sub(t0));
        let integrated = self.trapezoid.step(at, power, self.max_gap);
        let energy = match (self.source, obs.energy_uj) {
            (EnergySource::Averaged, _) => self.averaged(obs, &mut out),
            (EnergySource::Integrated | EnergySource::Estimated(_), _) => integrated,
            (EnergySource::Modelled(_), _) => self.interval.step(at, power, self.max_gap),
            (EnergySource::Counter { wraps_at_uj }, Some(uj)) => {
                let step = self.counter_energy(at, uj, wraps_at_uj, integrated, &mut out);
                // Compared only where the power readings integrate over exactly the counter's
                // interval: not across a restart, a rejected step or a missed reading.
                if let (Some((counter, over)), Some(integrated)) = (step, integrated) {
                    if !out.counter_reset && since == Some(over) {
                        self.discrepancy.add(at, over, counter, integrated);
                    }
                }
                step.map(|(energy, _)| energy)
            }
            (EnergySource::Counter { .. } | EnergySource::Unavailable, _) => None,
        };
        if let Some(energy) = energy {
            out.step = self.add(energy, obs.utilization == Some(0.0), factors);
        }
        out
    }

    /// Energy of the averages that arrived this tick; the power to show is the latest accepted
    /// one, else the reading (the backend's latest average, when no new one arrived).
    fn averaged(&mut self, obs: &Reading, out: &mut Outcome) -> Option<Joules> {
        let summed = averages::sum(&obs.averages, self.limit, self.max_gap);
        out.implausible_power |= summed.rejected > 0;
        out.power = summed.latest.or(out.power);
        summed.latest.map(|_| summed.energy)
    }

    fn counter_energy(
        &mut self,
        at: Duration,
        uj: u64,
        wraps_at: Option<u64>,
        integrated: Option<Joules>,
        out: &mut Outcome,
    ) -> Option<(Joules, Duration)> {
        let (energy, over, reset) = match self.counter.measure(at, uj, wraps_at) {
            CounterStep::Baseline => {
                self.counter.accept(at, uj);
                return None;
            }
            CounterStep::Delta { uj, over } => (Joules::from_microjoules(uj), over, false),
            CounterStep::Reset { uj, over } => {
                let since = Joules::from_microjoules(uj);
                let estimate = integrated.filter(|e| *e > since).unwrap_or(since);
                (estimate, over, true)
            }
        };
        let (energy, over) = if energy > max_energy(over, self.limit) {
            self.rejected(at, uj, wraps_at, out)?
        } else {
            out.counter_reset = reset;
            self.totals.counter_resets += u64::from(reset);
            (energy, over)
        };
        self.suspect = None;
        self.counter.accept(at, uj);
        if out.power.is_none() && !over.is_zero() {
            out.power = Some(Watts(energy.0 / over.as_secs_f64()));
        }
        Some((energy, over))
    }

    /// A counter reading `uj` at `at` that is more than the board could draw since the base.
    ///
    /// One wild value (a firmware glitch, a torn read) must cost nothing, so the base stays
    /// where it was: the next good reading is measured from it over both intervals, and no
    /// hardware reset is counted when the counter "comes back down". But when the next reading
    /// advances plausibly from the rejected one rather than from the base, the counter really
    /// moved to a new level: counting goes on from there with the energy since the rejected reading, and
    /// only the interval of the jump is lost. Returns that energy and its interval when the jump
    /// is confirmed; `None` (and the reading counted as implausible) otherwise.
    fn rejected(
        &mut self,
        at: Duration,
        uj: u64,
        wraps_at: Option<u64>,
        out: &mut Outcome,
    ) -> Option<(Joules, Duration)> {
        let confirmed = self.suspect.and_then(|(t0, prev)| {
            let mut from_suspect = CounterTracker::default();
            from_suspect.accept(t0, prev);
            match from_suspect.measure(at, uj, wraps_at) {
                CounterStep::Delta { uj, over } => Some((Joules::from_microjoules(uj), over)),
                CounterStep::Baseline | CounterStep::Reset { .. } => None,
            }
            // A counter that runs advances between readings; one that repeats the wild value
            // is a stuck reading, not a new level.
            .filter(|(energy, over)| energy.0 > 0.0 && *energy <= max_energy(*over, self.limit))
        });
        if confirmed.is_none() {
            out.implausible_energy = true;
            self.suspect = Some((at, uj));
        }
        confirmed
    }

    /// The counter value that the next reading will be measured from (saved in the state file
    /// so that a restart measures from it too).
    pub fn counter_base(&self) -> Option<u64> {
        self.counter.base()
    }

    fn add(&mut self, energy: Joules, idle: bool, factors: Factors) -> Step {
        let step = Step {
            energy,
            idle: if idle { energy } else { Joules(0.0) },
            co2e: emissions(energy, factors.pue, factors.intensity),
        };
        self.totals.energy += step.energy;
        self.totals.idle_energy += step.idle;
        self.totals.co2e += step.co2e;
        step
    }
}

#[cfg(test)]
mod tests;
