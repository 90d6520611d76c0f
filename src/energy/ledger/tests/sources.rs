//! The ledger's other sources: the host model, self-timed power averages, and the counter
//! compared with integrated power.

use super::*;

/// The host model: each interval's estimate (from its utilization and vCPUs) times its length,
/// so a load change lands in the interval where it happened; a reading without what the model
/// needs adds nothing and the next one covers both intervals.
#[test]
fn host_model_energy_is_the_rectangle_of_each_interval() {
    use crate::energy::host::{CpuCoefficients, DomainModel};
    let cpu = DomainModel::Cpu(CpuCoefficients {
        min: Watts(1.0),
        max: Watts(3.0),
    });
    let mut l = Ledger::new(EnergySource::Modelled(cpu), GAP);
    let host = |vcpus: Option<f64>, u: Option<f64>| crate::backend::Reading {
        host_size: vcpus,
        utilization: u,
        ..Default::default()
    };
    assert_eq!(
        l.observe(at(0.0), &host(Some(4.0), Some(0.5)), F)
            .step
            .energy,
        Joules(0.0)
    );
    // 4 × (1 + 0.5 × 2) = 8 W over 1 s, then 4 × (1 + 2) = 12 W over the next.
    let out = l.observe(at(1.0), &host(Some(4.0), Some(0.5)), F);
    assert_eq!(
        (out.power, out.step.energy),
        (Some(Watts(8.0)), Joules(8.0))
    );
    let out = l.observe(at(2.0), &host(Some(4.0), Some(1.0)), F);
    assert_eq!(out.step.energy, Joules(12.0));
    // No utilization: no power, nothing added; the next reading covers both seconds.
    assert_eq!(l.observe(at(3.0), &host(Some(4.0), None), F).power, None);
    let out = l.observe(at(4.0), &host(Some(2.0), Some(0.0)), F);
    assert_eq!(out.step.energy, Joules(4.0));
    assert_eq!(l.totals().energy, Joules(24.0));
    assert!(close(
        l.totals().co2e.0,
        24.0 / JOULES_PER_KWH * 1.5 * 400.0
    ));
}

/// The readings say 200 W; the counter advances 300 J a second: over 10 s the counter's
/// 3000 J against the integrated 2000 J is a discrepancy of 3000 / 2000 − 1 = +0.5.
#[test]
fn a_counter_at_the_wrong_rate_shows_in_the_discrepancy() {
    let mut l = Ledger::new(COUNTER, GAP);
    for i in 0..=10u64 {
        l.see(&obs(i as f64, 200.0, Some(300_000 * i), 0.5), F);
    }
    let c = l.discrepancy().comparison().expect("compared");
    assert_eq!(
        (c.counter, c.integrated),
        (Joules(3_000.0), Joules(2_000.0))
    );
    assert_eq!(c.covered, at(10.0));
    assert_eq!(l.discrepancy().ratio(), Some(0.5));
}

/// Only intervals the counter and the power readings both cover alone are compared: not the
/// one across a missed counter reading (the counter's step spans two readings of power), not
/// a restart, not a rejected spike, not the first interval after it.
#[test]
fn only_like_for_like_intervals_are_compared() {
    let mut l = Ledger::new(COUNTER, GAP);
    let mj = [
        Some(0),
        Some(100_000),
        None,
        Some(300_000),
        Some(50_000),
        Some(150_000),
    ];
    for (i, mj) in mj.into_iter().enumerate() {
        l.see(&obs(i as f64, 100.0, mj, 0.5), F);
    }
    // Spike at 6 s, then back on track at 7 s (measured from 5 s over two intervals).
    l.see(&obs(6.0, 100.0, Some(900_000_000), 0.5), F);
    l.see(&obs(7.0, 100.0, Some(350_000), 0.5), F);
    l.see(&obs(8.0, 100.0, Some(450_000), 0.5), F);
    // Compared: 0–1, 4–5 and 7–8 s, 100 J each by both.
    let c = l.discrepancy().comparison().expect("compared");
    assert_eq!((c.counter, c.integrated), (Joules(300.0), Joules(300.0)));
    assert_eq!(c.covered, at(3.0));
    // Every interval still counts: 100 W for 8 s (the restart's by the power readings).
    assert_eq!(l.totals().energy, Joules(800.0));
}

/// Averages the device timed itself (powermetrics) count for exactly their own intervals,
/// however many arrive at a tick, none included; the power shown is the latest one, and CO2e
/// follows the energy.
#[test]
fn averages_are_summed_over_their_own_intervals() {
    use crate::backend::PowerAverage;
    let avg = |w: f64, s: f64| PowerAverage {
        power: Watts(w),
        over: at(s),
    };
    let mut l = Ledger::new(EnergySource::Averaged, GAP);
    let ticks: [(Vec<PowerAverage>, Option<f64>); 4] = [
        (vec![avg(3.0, 1.0)], Some(3.0)),
        (vec![], Some(3.0)),
        (vec![avg(10.0, 0.5), avg(20.0, 1.5)], Some(20.0)),
        (vec![avg(9_999.0, 1.0), avg(2.0, 6.0)], Some(2.0)),
    ];
    let mut rejected = 0;
    for (i, (averages, latest)) in ticks.into_iter().enumerate() {
        let reading = crate::backend::Reading {
            power: latest.map(Watts),
            averages,
            ..Default::default()
        };
        let out = l.observe(at(i as f64), &reading, F);
        rejected += usize::from(out.implausible_power);
        assert_eq!(out.power, latest.map(Watts));
    }
    // 3 J + 5 J + 30 J; the 9,999 W average is impossible, the 6 s one longer than the gap.
    assert_eq!(rejected, 1);
    let t = l.totals();
    assert_eq!(t.energy, Joules(38.0));
    let grams = 38.0 / JOULES_PER_KWH * 1.5 * 400.0;
    assert!(close(t.co2e.0, grams), "{t:?}");
    assert_eq!(l.source().as_str(), "integrated");
}
