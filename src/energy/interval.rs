//! Energy of a power figure that is already the average over the interval since the previous
//! one (a host estimate from the CPU time used in that interval): the rectangle
//! `power × interval`, which is exact for such averages where the trapezoid would blur a
//! change of load across two intervals. A missing figure is bridged by the next one (whose
//! average then covers both intervals), up to a maximum gap.

use std::time::Duration;

use crate::units::{Joules, Watts};

/// When the last accepted average was taken.
#[derive(Debug, Clone, Default)]
pub struct IntervalAverage {
    last: Option<Duration>,
}

impl IntervalAverage {
    /// Takes the average power over the interval ending at `at` (`None` if missing) and
    /// returns that interval's energy, if the previous accepted figure is no older than
    /// `max_gap`.
    pub fn step(
        &mut self,
        at: Duration,
        power: Option<Watts>,
        max_gap: Duration,
    ) -> Option<Joules> {
        let power = power?;
        let energy = match self.last {
            Some(t0) if at > t0 && at - t0 <= max_gap => {
                Some(Joules(power.0 * (at - t0).as_secs_f64()))
            }
            _ => None,
        };
        self.last = Some(at);
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
    fn rectangles_of_interval_averages() {
        let mut a = IntervalAverage::default();
        assert_eq!(a.step(s(0.0), Some(Watts(10.0)), GAP), None);
        assert_eq!(a.step(s(1.0), Some(Watts(10.0)), GAP), Some(Joules(10.0)));
        // A load change is the next interval's average alone, not blurred into this one.
        assert_eq!(a.step(s(2.0), Some(Watts(30.0)), GAP), Some(Joules(30.0)));
        // A missing figure: the next average covers both intervals.
        assert_eq!(a.step(s(3.0), None, GAP), None);
        assert_eq!(a.step(s(4.0), Some(Watts(20.0)), GAP), Some(Joules(40.0)));
        // Past the gap nothing is counted, and counting goes on from there.
        assert_eq!(a.step(s(10.0), Some(Watts(20.0)), GAP), None);
        assert_eq!(a.step(s(11.0), Some(Watts(20.0)), GAP), Some(Joules(20.0)));
        // Time that does not advance adds nothing.
        assert_eq!(a.step(s(11.0), Some(Watts(20.0)), GAP), None);
    }
}
