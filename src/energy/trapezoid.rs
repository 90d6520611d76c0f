//! Energy by trapezoid integration of power readings: between two readings the power is
//! assumed to change linearly, which is exact for constant and linearly changing loads.
//!
//! On NVIDIA Ampere and newer, `nvmlDeviceGetPowerUsage` is an average over the last second, so
//! sampling at 1 s or faster integrates every part of the load; slower sampling misses what
//! happens between readings. A reading that is missing or rejected is bridged by the next good
//! one, up to a maximum gap; past that the energy in between is unknown and not counted.

use std::time::Duration;

use crate::units::{Joules, Watts};

/// The last accepted power point.
#[derive(Debug, Clone, Default)]
pub struct Trapezoid {
    last: Option<(Duration, Watts)>,
}

impl Trapezoid {
    /// When the last accepted power reading was taken, if any.
    pub fn last_at(&self) -> Option<Duration> {
        self.last.map(|(at, _)| at)
    }

    /// Takes the power reading at `at` (`None` if missing or rejected) and returns the energy
    /// since the previous accepted reading, if there is one no older than `max_gap`.
    pub fn step(
        &mut self,
        at: Duration,
        power: Option<Watts>,
        max_gap: Duration,
    ) -> Option<Joules> {
        let power = power?;
        let energy = match self.last {
            Some((t0, p0)) if at > t0 && at - t0 <= max_gap => {
                Some(Joules((p0.0 + power.0) / 2.0 * (at - t0).as_secs_f64()))
            }
            _ => None,
        };
        self.last = Some((at, power));
        energy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_secs(5);

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn exact_for_linear_power() {
        // P(t) = 100 + 20 t over 0..10 s: 1000 + 1000 = 2000 J.
        let mut tr = Trapezoid::default();
        let mut total = 0.0;
        for i in 0..=40 {
            let t = i as f64 * 0.25;
            if let Some(e) = tr.step(s(t), Some(Watts(100.0 + 20.0 * t)), GAP) {
                total += e.0;
            }
        }
        assert!((total - 2000.0).abs() < 1e-9, "{total}");
    }

    #[test]
    fn bridges_a_missing_reading_but_not_a_long_gap() {
        let mut tr = Trapezoid::default();
        assert_eq!(tr.step(s(0.0), Some(Watts(100.0)), GAP), None);
        assert_eq!(tr.step(s(1.0), None, GAP), None);
        assert_eq!(
            tr.step(s(2.0), Some(Watts(100.0)), GAP),
            Some(Joules(200.0))
        );
        assert_eq!(
            tr.step(s(8.0), Some(Watts(100.0)), GAP),
            None,
            "6 s gap > 5 s"
        );
        assert_eq!(
            tr.step(s(9.0), Some(Watts(300.0)), GAP),
            Some(Joules(200.0))
        );
    }
}
