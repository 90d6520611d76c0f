//! Energy from power averages that the device timed itself (`powermetrics` reports each
//! sample's average power and the `elapsed_ns` it covers): `E = Σ P̄ᵢ × Δtᵢ`.
//!
//! Unlike the trapezoid rule, this is exact for whatever the device measured, whatever our
//! sampling: the averages tile time, so nothing between two of them is guessed. An average
//! that can't be true (not finite, negative, above what a board can draw) or that claims an
//! interval of zero or longer than `max_interval` is rejected and counted, never accounted.

use std::time::Duration;

use super::plausibility::check_power;
use crate::backend::PowerAverage;
use crate::units::{Joules, Watts};

/// What a batch of averages adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summed {
    /// Energy of the accepted averages.
    pub energy: Joules,
    /// The latest accepted average, if any.
    pub latest: Option<Watts>,
    /// How many averages were rejected.
    pub rejected: u64,
}

/// Sums `averages` (oldest first) for a board with power limit `limit`; `None` energy when
/// none was accepted.
pub fn sum(averages: &[PowerAverage], limit: Option<Watts>, max_interval: Duration) -> Summed {
    let mut out = Summed::default();
    for a in averages {
        let interval_ok = !a.over.is_zero() && a.over <= max_interval;
        match check_power(a.power, limit).filter(|_| interval_ok) {
            Some(p) => {
                out.energy += Joules(p.0 * a.over.as_secs_f64());
                out.latest = Some(p);
            }
            None => out.rejected += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(5);

    fn avg(watts: f64, ns: u64) -> PowerAverage {
        PowerAverage {
            power: Watts(watts),
            over: Duration::from_nanos(ns),
        }
    }

    /// Each average counts for exactly its own interval, however unevenly they are spaced.
    #[test]
    fn each_average_times_its_own_interval() {
        let s = sum(
            &[
                avg(2.5, 1_000_000_000),
                avg(10.0, 250_000_000),
                avg(0.0, 3_000_000_000),
            ],
            None,
            MAX,
        );
        // 2.5 W × 1 s + 10 W × 0.25 s + 0 W × 3 s = 5 J.
        assert_eq!(s.energy, Joules(5.0));
        assert_eq!(s.latest, Some(Watts(0.0)));
        assert_eq!(s.rejected, 0);
        assert_eq!(sum(&[], None, MAX), Summed::default());
    }

    /// Impossible values and intervals are counted and add nothing.
    #[test]
    fn impossible_averages_are_rejected() {
        let s = sum(
            &[
                avg(f64::NAN, 1_000_000_000),
                avg(-1.0, 1_000_000_000),
                avg(6_000.0, 1_000_000_000),
                avg(3.0, 0),
                avg(3.0, 6_000_000_000),
                avg(4.0, 500_000_000),
            ],
            None,
            MAX,
        );
        assert_eq!(s.energy, Joules(2.0));
        assert_eq!(s.latest, Some(Watts(4.0)));
        assert_eq!(s.rejected, 5);
    }
}
