//! Differences of a cumulative hardware energy counter (NVML: millijoules since the driver
//! loaded). The counter restarts from zero when the driver reloads or the GPU resets; a value
//! lower than the last one is therefore a reset, and the new value is energy since the reset.

use std::time::Duration;

/// What one counter reading means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterStep {
    /// First reading: only a baseline, no energy yet.
    Baseline,
    /// Millijoules consumed over `over` since the last reading.
    Delta {
        /// Energy in millijoules.
        mj: u64,
        /// Time since the previous reading.
        over: Duration,
    },
    /// The counter went down: it restarted within `over`, and `mj` were consumed since.
    Reset {
        /// Energy in millijoules since the restart.
        mj: u64,
        /// Time since the previous reading.
        over: Duration,
    },
}

/// Remembers the last counter value and when it was read.
#[derive(Debug, Clone, Default)]
pub struct CounterTracker {
    last: Option<(Duration, u64)>,
}

impl CounterTracker {
    /// Takes the counter value `mj` read at monotonic time `at`.
    pub fn step(&mut self, at: Duration, mj: u64) -> CounterStep {
        let step = match self.last {
            None => CounterStep::Baseline,
            Some((t0, last)) if mj >= last => CounterStep::Delta {
                mj: mj - last,
                over: at.saturating_sub(t0),
            },
            Some((t0, _)) => CounterStep::Reset {
                mj,
                over: at.saturating_sub(t0),
            },
        };
        self.last = Some((at, mj));
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    #[test]
    fn deltas_and_resets() {
        let mut c = CounterTracker::default();
        let delta = |mj, over| CounterStep::Delta { mj, over: s(over) };
        let reset = |mj, over| CounterStep::Reset { mj, over: s(over) };
        assert_eq!(c.step(s(0), 5_000), CounterStep::Baseline);
        assert_eq!(c.step(s(1), 5_000), delta(0, 1));
        assert_eq!(c.step(s(2), 8_500), delta(3_500, 1));
        assert_eq!(c.step(s(3), 1_200), reset(1_200, 1));
        assert_eq!(c.step(s(5), 2_000), delta(800, 2));
        assert_eq!(c.step(s(6), u64::MAX), delta(u64::MAX - 2_000, 1));
        assert_eq!(c.step(s(7), 0), reset(0, 1));
    }
}
