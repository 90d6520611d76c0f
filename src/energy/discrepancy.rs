//! Whether a hardware energy counter agrees with the power readings.
//!
//! On a device with an energy counter, the ledger also integrates the power readings (the 1 s
//! average on NVIDIA Ampere and newer) by trapezoid, and this window compares the two over the
//! same sample intervals:
//!
//! ```text
//! ratio = E_counter / E_integrated − 1
//! ```
//!
//! both summed over the intervals that ended in the last [`WINDOW`] (5 minutes) in which the
//! counter advanced normally (no restart, no rejected step) and the interval was bracketed by
//! two accepted power readings. 0 when they agree, +0.5 when the counter counts 50 % more than
//! the power readings say, −0.75 when it counts a quarter. A 1 s average lags the load by about
//! half a second, so on a pulsed load the ratio over a short window swings; over minutes the
//! lag is a small share of the energy.

use std::collections::VecDeque;
use std::time::Duration;

use crate::units::Joules;

/// The rolling window the counter and the integrated power are compared over.
pub const WINDOW: Duration = Duration::from_secs(300);

/// One compared interval.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pair {
    /// When it ended (monotonic).
    at: Duration,
    /// How long it was.
    over: Duration,
    counter: Joules,
    integrated: Joules,
}

/// The counter's and the integrated power's energy over the same intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Energy by the hardware counter.
    pub counter: Joules,
    /// Energy by trapezoid integration of the power readings.
    pub integrated: Joules,
    /// Time the compared intervals cover.
    pub covered: Duration,
}

impl Comparison {
    /// `counter / integrated − 1`; `None` while the integrated energy is 0.
    pub fn ratio(&self) -> Option<f64> {
        (self.integrated.0 > 0.0).then(|| self.counter.0 / self.integrated.0 - 1.0)
    }
}

/// The intervals of the last [`WINDOW`].
#[derive(Debug, Clone, Default)]
pub struct Discrepancy {
    pairs: VecDeque<Pair>,
}

impl Discrepancy {
    /// Adds the interval of length `over` that ended at `at`, in which the counter counted
    /// `counter` and the power readings integrate to `integrated`; forgets intervals that
    /// ended more than [`WINDOW`] before `at`.
    pub fn add(&mut self, at: Duration, over: Duration, counter: Joules, integrated: Joules) {
        self.pairs.push_back(Pair {
            at,
            over,
            counter,
            integrated,
        });
        while let Some(first) = self.pairs.front() {
            if at.saturating_sub(first.at) < WINDOW {
                break;
            }
            self.pairs.pop_front();
        }
    }

    /// The sums over the window so far (shorter than [`WINDOW`] in the first 5 minutes);
    /// `None` before the first interval.
    pub fn comparison(&self) -> Option<Comparison> {
        if self.pairs.is_empty() {
            return None;
        }
        let mut sum = Comparison {
            counter: Joules(0.0),
            integrated: Joules(0.0),
            covered: Duration::ZERO,
        };
        for p in &self.pairs {
            sum.counter += p.counter;
            sum.integrated += p.integrated;
            sum.covered += p.over;
        }
        Some(sum)
    }

    /// The exported ratio over the window so far: `None` before the first compared interval
    /// and while the integrated energy is 0.
    pub fn ratio(&self) -> Option<f64> {
        self.comparison().and_then(|c| c.ratio())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    /// 200 W by the readings for 10 s is 2000 J; a counter at 1.5 times the rate counts
    /// 3000 J: ratio 3000 / 2000 − 1 = 0.5.
    #[test]
    fn a_fast_counter_reads_its_excess() {
        let mut d = Discrepancy::default();
        for i in 1..=10 {
            d.add(s(i), s(1), Joules(300.0), Joules(200.0));
        }
        assert_eq!(d.ratio(), Some(0.5));
        let c = d.comparison().expect("compared");
        assert_eq!(
            (c.counter, c.integrated, c.covered),
            (Joules(3000.0), Joules(2000.0), s(10))
        );
    }

    /// Agreement is 0; a counter counting a quarter of the energy reads −0.75.
    #[test]
    fn agreement_is_zero_and_a_slow_counter_negative() {
        let mut d = Discrepancy::default();
        for i in 1..=6 {
            d.add(s(i), s(1), Joules(150.0), Joules(150.0));
        }
        assert_eq!(d.ratio(), Some(0.0));
        let mut d = Discrepancy::default();
        for i in 1..=6 {
            d.add(s(i), s(1), Joules(25.0), Joules(100.0));
        }
        assert_eq!(d.ratio(), Some(-0.75));
    }

    /// No ratio before the first interval, nor while the power readings integrate to 0.
    #[test]
    fn nothing_to_say_without_integrated_energy() {
        let mut d = Discrepancy::default();
        assert_eq!((d.comparison(), d.ratio()), (None, None));
        d.add(s(1), s(1), Joules(120.0), Joules(100.0));
        let ratio = d.ratio().expect("ratio");
        assert!((ratio - 0.2).abs() < 1e-12, "{ratio}");
        let mut idle = Discrepancy::default();
        for i in 1..=10 {
            idle.add(s(i), s(1), Joules(5.0), Joules(0.0));
        }
        assert_eq!(idle.ratio(), None);
    }

    /// After 5 minutes the first intervals leave the window: 300 s at +100 % then 300 s in
    /// agreement reads 0; halfway through, (150·2 + 150·1) / 300 − 1 = +0.5.
    #[test]
    fn old_intervals_leave_the_window() {
        let mut d = Discrepancy::default();
        for i in 1..=300 {
            d.add(s(i), s(1), Joules(2.0), Joules(1.0));
        }
        assert_eq!(d.ratio(), Some(1.0));
        for i in 301..=450 {
            d.add(s(i), s(1), Joules(1.0), Joules(1.0));
        }
        assert_eq!(d.ratio(), Some(0.5));
        assert_eq!(d.comparison().map(|c| c.covered), Some(s(300)));
        for i in 451..=600 {
            d.add(s(i), s(1), Joules(1.0), Joules(1.0));
        }
        assert_eq!(d.ratio(), Some(0.0));
    }
}
