//! The accounting rules, checked on hand-computable readings.

use super::*;
use crate::energy::PowerModel;
use crate::units::Grams;
use crate::units::JOULES_PER_KWH;

/// Sources other than a GPU's counter and power: the host model, self-timed averages, and the
/// counter checked against power.
mod sources;

const GAP: Duration = Duration::from_secs(5);
const COUNTER: EnergySource = EnergySource::Counter { wraps_at_uj: None };
const F: Factors = Factors {
    pue: 1.5,
    intensity: GramsPerKwh(400.0),
};

fn at(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One tick's readings at `at`, written as the old tests wrote them.
#[derive(Debug, Clone, Default)]
struct Obs {
    at: Duration,
    power: Option<Watts>,
    energy_uj: Option<u64>,
    utilization: Option<f64>,
    power_limit: Option<Watts>,
}

trait See {
    fn see(&mut self, o: &Obs, f: Factors) -> Outcome;
}

impl See for Ledger {
    fn see(&mut self, o: &Obs, f: Factors) -> Outcome {
        let reading = crate::backend::Reading {
            power: o.power,
            energy_uj: o.energy_uj,
            utilization: o.utilization,
            power_limit: o.power_limit,
            ..Default::default()
        };
        Ledger::observe(self, o.at, &reading, f)
    }
}

fn obs(t: f64, power: f64, mj: Option<u64>, util: f64) -> Obs {
    Obs {
        at: at(t),
        power: Some(Watts(power)),
        energy_uj: mj.map(|m| m * 1000),
        utilization: Some(util),
        power_limit: Some(Watts(700.0)),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn counter_energy_and_co2e() {
    let mut l = Ledger::new(COUNTER, GAP);
    // 300 W for 10 s: counter advances 300,000 mJ per second from an arbitrary start.
    for i in 0..=10u64 {
        l.see(&obs(i as f64, 300.0, Some(7_000_000 + 300_000 * i), 0.5), F);
    }
    let t = l.totals();
    assert_eq!(t.energy, Joules(3_000.0));
    assert_eq!(t.idle_energy, Joules(0.0));
    let expected_g = 3_000.0 / JOULES_PER_KWH * 1.5 * 400.0;
    assert!(close(t.co2e.0, expected_g), "{} vs {expected_g}", t.co2e.0);
}

#[test]
fn a_missed_counter_reading_is_covered_by_the_next() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 300.0, Some(1_000), 0.5), F);
    l.see(&obs(1.0, 300.0, None, 0.5), F);
    let out = l.see(&obs(2.0, 300.0, Some(601_000), 0.5), F);
    assert_eq!(out.step.energy, Joules(600.0));
    assert_eq!(l.totals().energy, Joules(600.0));
}

#[test]
fn a_counter_reset_never_loses_or_reverses_energy() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 200.0, Some(50_000_000), 0.5), F);
    l.see(&obs(1.0, 200.0, Some(50_200_000), 0.5), F);
    // Driver reload: the counter restarts at 0 and shows 50 J since.
    let out = l.see(&obs(2.0, 200.0, Some(50_000), 0.5), F);
    assert!(out.counter_reset);
    // The power readings say 200 J for the interval, more than the 50 J the counter saw.
    assert_eq!(out.step.energy, Joules(200.0));
    l.see(&obs(3.0, 200.0, Some(250_000), 0.5), F);
    let t = l.totals();
    assert_eq!(t.energy, Joules(600.0));
    assert_eq!(t.counter_resets, 1);
}

#[test]
fn after_a_reset_without_power_the_counter_value_is_the_lower_bound() {
    let mut l = Ledger::new(COUNTER, GAP);
    let mut o = obs(0.0, 0.0, Some(10_000_000), 0.5);
    o.power = None;
    l.see(&o, F);
    o.at = at(1.0);
    o.energy_uj = Some(120_000_000);
    assert_eq!(l.see(&o, F).step.energy, Joules(120.0));
}

/// One wild counter value (as outside testing saw on a real board) is rejected without moving
/// the base: no phantom hardware reset when the counter "comes back", and the next good reading
/// covers both intervals, so nothing is lost.
#[test]
fn a_single_counter_spike_is_rejected_without_moving_the_base() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 300.0, Some(1_000_000), 0.5), F);
    l.see(&obs(1.0, 300.0, Some(1_300_000), 0.5), F);
    // +1,000,000 J in one second from a 700 W board.
    let out = l.see(&obs(2.0, 300.0, Some(2_000_000_000), 0.5), F);
    assert!(out.implausible_energy);
    assert!(!out.counter_reset);
    assert_eq!(out.step.energy, Joules(0.0));
    assert_eq!(l.counter_base(), Some(1_300_000_000), "base unmoved");
    // The wild value stays in the file for a few ticks: a stuck reading confirms nothing.
    for t in [2.25, 2.5, 2.75] {
        assert!(
            l.see(&obs(t, 300.0, Some(2_000_000_000), 0.5), F)
                .implausible_energy
        );
    }
    // Back to the true value: 300 J per second since t = 1.
    let out = l.see(&obs(3.0, 300.0, Some(1_900_000), 0.5), F);
    assert!(!out.implausible_energy && !out.counter_reset);
    assert_eq!(
        out.step.energy,
        Joules(600.0),
        "both intervals, nothing lost"
    );
    assert_eq!(out.power, Some(Watts(300.0)));
    let t = l.totals();
    assert_eq!(t.energy, Joules(900.0));
    assert_eq!(t.counter_resets, 0, "no phantom reset");
}

/// Two wild readings that disagree with each other confirm nothing: both are rejected and the
/// next good reading is still measured from the unmoved base.
#[test]
fn two_spikes_in_a_row_that_disagree_are_both_rejected() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 300.0, Some(1_000_000), 0.5), F);
    assert!(
        l.see(&obs(1.0, 300.0, Some(9_000_000_000), 0.5), F)
            .implausible_energy
    );
    assert!(
        l.see(&obs(2.0, 300.0, Some(5_000_000_000), 0.5), F)
            .implausible_energy
    );
    let out = l.see(&obs(3.0, 300.0, Some(1_900_000), 0.5), F);
    assert_eq!(out.step.energy, Joules(900.0));
    assert_eq!(l.totals().counter_resets, 0);
}

/// When the counter really moved to a new level (two readings agree with each other, not with
/// the base), counting goes on from the new level: only the interval of the jump is lost, and
/// it is not a hardware reset.
#[test]
fn a_confirmed_counter_jump_rebases_after_one_rejected_interval() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 300.0, Some(1_000_000), 0.5), F);
    let out = l.see(&obs(1.0, 300.0, Some(1_001_000_000), 0.5), F);
    assert!(out.implausible_energy);
    let out = l.see(&obs(2.0, 300.0, Some(1_001_300_000), 0.5), F);
    assert!(!out.implausible_energy, "confirmed by the second reading");
    assert_eq!(out.step.energy, Joules(300.0));
    l.see(&obs(3.0, 300.0, Some(1_001_600_000), 0.5), F);
    let t = l.totals();
    assert_eq!(t.energy, Joules(600.0));
    assert_eq!(t.counter_resets, 0);
    assert_eq!(l.counter_base(), Some(1_001_600_000_000));
}

/// An implausible step after a counter restart is rejected and not counted as a reset either.
#[test]
fn an_implausible_reset_is_not_counted_as_a_reset() {
    let mut l = Ledger::new(COUNTER, GAP);
    l.see(&obs(0.0, 300.0, Some(9_000_000_000), 0.5), F);
    // Down to a value no restart one second ago could have reached.
    let out = l.see(&obs(1.0, 300.0, Some(8_000_000_000), 0.5), F);
    assert!(out.implausible_energy && !out.counter_reset);
    assert_eq!(l.totals().counter_resets, 0);
}

#[test]
fn integration_is_exact_for_a_ramp_and_bridges_a_glitch() {
    let mut l = Ledger::new(EnergySource::Integrated, GAP);
    let mut rejected = 0;
    for i in 0..=100 {
        let t = i as f64 * 0.1;
        let true_power = 100.0 + 30.0 * t; // 100 W → 400 W over 10 s: 2500 J
        let reported = if (40..43).contains(&i) {
            7_000.0
        } else {
            true_power
        };
        let out = l.see(&obs(t, reported, None, 0.5), F);
        rejected += usize::from(out.implausible_power);
        assert_eq!(out.power.is_none(), out.implausible_power);
    }
    assert_eq!(rejected, 3);
    assert!(close(l.totals().energy.0, 2_500.0), "{:?}", l.totals());
}

#[test]
fn integration_does_not_bridge_a_long_outage() {
    let mut l = Ledger::new(EnergySource::Integrated, GAP);
    l.see(&obs(0.0, 100.0, None, 0.5), F);
    l.see(&obs(1.0, 100.0, None, 0.5), F);
    l.see(&obs(60.0, 100.0, None, 0.5), F);
    l.see(&obs(61.0, 100.0, None, 0.5), F);
    assert_eq!(l.totals().energy, Joules(200.0));
}

#[test]
fn idle_energy_is_energy_at_zero_utilization() {
    let mut l = Ledger::new(COUNTER, GAP);
    let mut mj = 0;
    for i in 0..=20u64 {
        let util = if i > 10 { 0.0 } else { 0.9 };
        let power = if i > 10 { 60.0 } else { 500.0 };
        l.see(&obs(i as f64, power, Some(mj), util), F);
        mj += (power * 1000.0) as u64;
    }
    // Intervals 1..=10 end busy; 11..=20 end idle. The counter lags one tick: interval i
    // carries the power read at i-1.
    let t = l.totals();
    assert_eq!(t.energy, Joules(10.0 * 500.0 + 500.0 + 9.0 * 60.0));
    assert_eq!(t.idle_energy, Joules(500.0 + 9.0 * 60.0));
}

#[test]
fn co2e_uses_the_intensity_in_force_at_each_step() {
    let mut l = Ledger::new(COUNTER, GAP);
    let kwh = JOULES_PER_KWH as u64 * 1000; // 1 kWh in mJ
    let f = |g| Factors {
        pue: 1.0,
        intensity: GramsPerKwh(g),
    };
    l.see(&obs(0.0, 0.0, Some(0), 0.5), f(100.0));
    let mut big = obs(3_600.0, 0.0, Some(kwh), 0.5);
    big.power_limit = Some(Watts(1_000.0));
    l.see(&big, f(100.0));
    big.at = at(7_200.0);
    big.energy_uj = Some(2 * kwh * 1000);
    l.see(&big, f(500.0));
    assert!(close(l.totals().co2e.0, 600.0), "{:?}", l.totals());
    assert_eq!(l.totals().energy.kwh(), 2.0);
}

#[test]
fn a_wrapping_counter_is_not_a_reset_and_gives_power() {
    let range = 1_000_000_000; // 1 kJ in µJ
    let mut l = Ledger::new(
        EnergySource::Counter {
            wraps_at_uj: Some(range),
        },
        GAP,
    );
    let mut o = Obs {
        at: at(0.0),
        energy_uj: Some(range - 20_000_000),
        ..Obs::default()
    };
    l.see(&o, F);
    o.at = at(1.0);
    o.energy_uj = Some(30_000_000);
    let out = l.see(&o, F);
    assert!(!out.counter_reset);
    assert_eq!(out.step.energy, Joules(50.0));
    assert_eq!(
        out.power,
        Some(Watts(50.0)),
        "power derived from the counter step"
    );
    assert_eq!(l.totals().counter_resets, 0);
}

#[test]
fn estimated_energy_follows_the_model() {
    let model = PowerModel {
        idle: Watts(30.0),
        rated: Watts(230.0),
    };
    let mut l = Ledger::new(EnergySource::Estimated(model), GAP);
    // utilization 50 % for 10 s: 130 W × 10 s; a power reading, if any, is ignored.
    for i in 0..=10 {
        let out = l.see(&obs(i as f64, 999.0, None, 0.5), F);
        assert_eq!(out.power, Some(Watts(130.0)));
    }
    assert!(close(l.totals().energy.0, 1_300.0));
}

#[test]
fn resumed_totals_continue_and_count_the_downtime() {
    let mut l = Ledger::new(COUNTER, GAP);
    let saved = Totals {
        energy: Joules(1_000.0),
        idle_energy: Joules(100.0),
        co2e: Grams(5.0),
        counter_resets: 2,
    };
    // The saved counter read 50 J one hour before this process's first tick at t = 0.
    l.resume(
        saved,
        Some((50_000_000, Duration::from_secs(3_600))),
        at(0.0),
    );
    // 300 W for that hour + 1 s: the first reading covers all of it.
    let out = l.see(&obs(1.0, 300.0, Some(50_000 + 300_000 * 3_601), 0.5), F);
    assert_eq!(out.step.energy, Joules(300.0 * 3_601.0));
    assert!(
        !out.implausible_energy,
        "the downtime is part of the interval"
    );
    let t = l.totals();
    assert_eq!(t.energy, Joules(1_000.0 + 300.0 * 3_601.0));
    assert_eq!(t.idle_energy, Joules(100.0));
    assert_eq!(t.counter_resets, 2);
}

#[test]
fn unavailable_accrues_nothing() {
    let mut l = Ledger::new(EnergySource::Unavailable, GAP);
    for i in 0..5 {
        l.see(&obs(i as f64, 100.0, Some(i * 1000), 0.0), F);
    }
    assert_eq!(l.totals(), Totals::default());
}
