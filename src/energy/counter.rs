//! Differences of a cumulative hardware energy counter, in microjoules.
//!
//! Two kinds of counter go down: NVML's (millijoules since the driver loaded) restarts from zero
//! when the driver reloads or the GPU resets, so a lower value is a reset and the new value is
//! the energy since; RAPL's `energy_uj` wraps around at `max_energy_range_uj`, so a lower value
//! is a wrap and the energy is what remained to the top plus the new value.

use std::time::Duration;

/// What one counter reading means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterStep {
    /// First reading: only a baseline, no energy yet.
    Baseline,
    /// Microjoules consumed over `over` since the last reading (across a wrap, if any).
    Delta {
        /// Energy in microjoules.
        uj: u64,
        /// Time since the previous reading.
        over: Duration,
    },
    /// The counter went down without a wrap range: it restarted within `over`, and `uj` were
    /// consumed since.
    Reset {
        /// Energy in microjoules since the restart.
        uj: u64,
        /// Time since the previous reading.
        over: Duration,
    },
}

/// Remembers the last counter value and when it was read.
#[derive(Debug, Clone, Default)]
pub struct CounterTracker {
    last: Option<(Duration, u64)>,
    /// Time before `last`'s timestamp that the reading really dates from (a reading restored
    /// from the state file was taken before this process started).
    carry: Duration,
}

impl CounterTracker {
    /// Continues from a reading `uj` taken `age` before monotonic time `at`.
    pub fn resume(&mut self, at: Duration, uj: u64, age: Duration) {
        self.last = Some((at, uj));
        self.carry = age;
    }

    /// What the counter value `uj` read at monotonic time `at` means against the current
    /// base, without moving the base: the caller decides, after its plausibility check, whether
    /// to [`accept`](Self::accept) it. `wraps_at` is the counter's range for counters that wrap
    /// around (RAPL), `None` for counters that reset.
    pub fn measure(&self, at: Duration, uj: u64, wraps_at: Option<u64>) -> CounterStep {
        let Some((t0, last)) = self.last else {
            return CounterStep::Baseline;
        };
        let over = at.saturating_sub(t0) + self.carry;
        match wraps_at {
            _ if uj >= last => CounterStep::Delta {
                uj: uj - last,
                over,
            },
            Some(range) => CounterStep::Delta {
                uj: range.saturating_sub(last).saturating_add(uj),
                over,
            },
            None => CounterStep::Reset { uj, over },
        }
    }

    /// Makes `uj`, read at `at`, the base the next reading is measured from.
    pub fn accept(&mut self, at: Duration, uj: u64) {
        self.last = Some((at, uj));
        self.carry = Duration::ZERO;
    }

    /// [`measure`](Self::measure) and [`accept`](Self::accept) in one, for readings that need
    /// no check.
    pub fn step(&mut self, at: Duration, uj: u64, wraps_at: Option<u64>) -> CounterStep {
        let step = self.measure(at, uj, wraps_at);
        self.accept(at, uj);
        step
    }

    /// The accepted base: the last counter value measured from, if any.
    pub fn base(&self) -> Option<u64> {
        self.last.map(|(_, uj)| uj)
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
        let delta = |uj, over| CounterStep::Delta { uj, over: s(over) };
        let reset = |uj, over| CounterStep::Reset { uj, over: s(over) };
        assert_eq!(c.step(s(0), 5_000, None), CounterStep::Baseline);
        assert_eq!(c.step(s(1), 5_000, None), delta(0, 1));
        assert_eq!(c.step(s(2), 8_500, None), delta(3_500, 1));
        assert_eq!(c.step(s(3), 1_200, None), reset(1_200, 1));
        assert_eq!(c.step(s(5), 2_000, None), delta(800, 2));
        assert_eq!(c.step(s(6), u64::MAX, None), delta(u64::MAX - 2_000, 1));
        assert_eq!(c.step(s(7), 0, None), reset(0, 1));
    }

    /// A reading restored from the state file dates from before this process: the first step
    /// covers the downtime too.
    #[test]
    fn resume_counts_the_time_before_start() {
        let mut c = CounterTracker::default();
        c.resume(s(0), 1_000, s(0));
        c.resume(s(10), 1_000, s(3_600));
        assert_eq!(
            c.step(s(11), 9_000, None),
            CounterStep::Delta {
                uj: 8_000,
                over: s(3_601)
            }
        );
        assert_eq!(
            c.step(s(12), 10_000, None),
            CounterStep::Delta {
                uj: 1_000,
                over: s(1)
            }
        );
    }

    /// RAPL: `energy_uj` runs from 0 to `max_energy_range_uj` and starts again.
    /// Measuring alone never moves the base: a reading the caller rejects leaves the next one
    /// measured from the last accepted value, over the whole time since.
    #[test]
    fn measure_does_not_move_the_base() {
        let mut c = CounterTracker::default();
        c.step(s(0), 1_000, None);
        let spike = c.measure(s(1), u64::MAX / 2, None);
        assert_eq!(
            spike,
            CounterStep::Delta {
                uj: u64::MAX / 2 - 1_000,
                over: s(1)
            }
        );
        assert_eq!(c.base(), Some(1_000));
        assert_eq!(
            c.step(s(2), 3_000, None),
            CounterStep::Delta {
                uj: 2_000,
                over: s(2)
            }
        );
    }

    #[test]
    fn wrap_around() {
        let mut c = CounterTracker::default();
        let range = 262_143_328_850;
        assert_eq!(
            c.step(s(0), range - 1_000_000, Some(range)),
            CounterStep::Baseline
        );
        assert_eq!(
            c.step(s(1), 4_000_000, Some(range)),
            CounterStep::Delta {
                uj: 5_000_000,
                over: s(1)
            }
        );
        assert_eq!(
            c.step(s(2), 9_000_000, Some(range)),
            CounterStep::Delta {
                uj: 5_000_000,
                over: s(1)
            }
        );
    }
}
