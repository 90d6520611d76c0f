//! What a simulated [`Gpu`] reports at scenario time `t`.
//!
//! Every function clamps `t` at 0 (the scenario starts at `t = 0`). These are
//! the exact values the FFI layer returns, so tests can compute expectations
//! with them.

use crate::scenario::Gpu;

/// Why a query fails at some instant, independent of the queried feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Inside `lost_at..lost_until`: `NVML_ERROR_GPU_IS_LOST` for every query.
    Lost,
    /// Inside an `error_at` window: `NVML_ERROR_UNKNOWN` for every reading.
    Transient,
}

/// Fallback "impossible" glitch reading when the power limit is unsupported.
pub const GLITCH_WITHOUT_LIMIT_W: f64 = 7000.0;

impl Gpu {
    /// The fault in effect at `t`, if any (`Lost` wins over `Transient`).
    pub fn fault_at(&self, t: f64) -> Option<Fault> {
        let t = t.max(0.0);
        if self.lost.is_some_and(|w| w.contains(t)) {
            Some(Fault::Lost)
        } else if self.errors.iter().any(|w| w.contains(t)) {
            Some(Fault::Transient)
        } else {
            None
        }
    }

    /// While a `hang_at` window is in effect at `t`, when the hang ends: the latest end of
    /// the windows that contain `t` (a reading made at `t` blocks until then).
    pub fn hang_until(&self, t: f64) -> Option<f64> {
        let t = t.max(0.0);
        self.hangs
            .iter()
            .filter(|w| w.contains(t))
            .map(|w| w.end)
            .reduce(f64::max)
    }

    /// Exact energy since `t = 0` in joules, `E(t) = ∫0^t P`;
    /// `None` if power is unsupported.
    pub fn energy_j(&self, t: f64) -> Option<f64> {
        let power = self.power.as_ref()?;
        Some(power.energy_between(0.0, t.max(0.0)))
    }

    /// Exact counter value in joules: `counter_scale × (E(t) - E(last reset <= t))`;
    /// `None` if the counter (or power) is unsupported.
    pub fn counter_j(&self, t: f64) -> Option<f64> {
        if !self.counter {
            return None;
        }
        let t = t.max(0.0);
        let total = self.energy_j(t)?;
        let resets_done = self.reset_at.partition_point(|&r| r <= t);
        let base = match resets_done.checked_sub(1) {
            Some(i) => self.energy_j(self.reset_at[i])?,
            None => 0.0,
        };
        Some(self.counter_scale * (total - base))
    }

    /// The counter as NVML reports it: millijoules, floored (with a 1 nJ
    /// allowance so that exact values are not floored below themselves by
    /// floating-point rounding).
    pub fn counter_mj(&self, t: f64) -> Option<u64> {
        let j = self.counter_j(t)?;
        // `as` saturates: negative rounding noise becomes 0.
        Some((j * 1000.0 + 1e-6).floor() as u64)
    }

    /// The power reading in watts, without glitches: `P(t)` when
    /// `power_window` is 0, otherwise the average over the last
    /// `power_window` seconds, `(E(t) - E(t - S)) / S`. Before `t = S` the
    /// window is shortened to `[0, t]` (and at `t = 0` the reading is `P(0)`),
    /// so a constant profile always reads its constant.
    pub fn power_w(&self, t: f64) -> Option<f64> {
        let power = self.power.as_ref()?;
        let t = t.max(0.0);
        let start = (t - self.power_window).max(0.0);
        if self.power_window <= 0.0 || t <= start {
            Some(power.value_at(t))
        } else {
            Some(power.energy_between(start, t) / (t - start))
        }
    }

    /// Whether a `glitch_at` window is in effect at `t`.
    pub fn glitching(&self, t: f64) -> bool {
        let t = t.max(0.0);
        self.glitches.iter().any(|w| w.contains(t))
    }

    /// What `nvmlDeviceGetPowerUsage` reports in mW (rounded), glitches
    /// included; `None` if power is unsupported.
    pub fn power_reading_mw(&self, t: f64) -> Option<u32> {
        let w = self.power_w(t)?;
        let w = if self.glitching(t) {
            10.0 * self.limit_w.unwrap_or(GLITCH_WITHOUT_LIMIT_W / 10.0)
        } else {
            w
        };
        Some(to_milli_u32(w))
    }

    /// Enforced power limit in mW; `None` if unsupported.
    pub fn limit_mw(&self) -> Option<u32> {
        self.limit_w.map(to_milli_u32)
    }

    /// `(min, max)` power-limit constraints in mW: `(limit / 4, limit)`.
    pub fn limit_constraints_mw(&self) -> Option<(u32, u32)> {
        self.limit_mw().map(|l| (l / 4, l))
    }

    /// `(gpu, memory)` utilization in percent: the profile clamped to
    /// 0..=100 and rounded; memory is half of it (integer division).
    pub fn utilization(&self, t: f64) -> Option<(u32, u32)> {
        let util = self.util.as_ref()?;
        let gpu = util.value_at(t.max(0.0)).clamp(0.0, 100.0).round() as u32;
        Some((gpu, gpu / 2))
    }
}

fn to_milli_u32(w: f64) -> u32 {
    // `as` saturates to 0..=u32::MAX.
    (w * 1000.0).round() as u32
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    fn gpu(keys: &str) -> crate::scenario::Gpu {
        let s = Scenario::parse(&format!("[gpu]\n{keys}")).expect("parse");
        s.gpus.into_iter().next().expect("one gpu")
    }

    #[test]
    fn counter_is_exact_integral() {
        let g = gpu("power = square:100:400:2");
        assert_eq!(g.counter_mj(10.0), Some(2_500_000));
        assert_eq!(g.counter_mj(0.5), Some(50_000));
        assert_eq!(g.counter_mj(-3.0), Some(0));
        let g = gpu("power = trace:0=100,10=300");
        assert_eq!(g.counter_mj(10.0), Some(2_000_000));
        assert_eq!(g.counter_mj(12.0), Some(2_600_000));
        // Floor, not round: 100 W for 1.23456789 s = 123.456789 J.
        let g = gpu("power = const:100");
        assert_eq!(g.counter_mj(1.234_567_89), Some(123_456));
    }

    #[test]
    fn a_scaled_counter_runs_at_its_scale() {
        let g = gpu("power = const:200\ncounter_scale = 1.5");
        assert_eq!(g.counter_mj(10.0), Some(3_000_000));
        assert_eq!(g.power_reading_mw(10.0), Some(200_000));
        assert_eq!(g.energy_j(10.0), Some(2000.0));
    }

    #[test]
    fn counter_with_resets() {
        let g = gpu("power = const:100\nreset_at = 10, 25");
        assert_eq!(g.counter_mj(9.0), Some(900_000));
        assert_eq!(g.counter_mj(10.0), Some(0));
        assert_eq!(g.counter_mj(12.0), Some(200_000));
        assert_eq!(g.counter_mj(24.999), Some(1_499_900));
        assert_eq!(g.counter_mj(30.0), Some(500_000));
        // Energy keeps accumulating independently of the counter.
        assert_eq!(g.energy_j(30.0), Some(3000.0));

        let g = gpu("power = trace:0=0,10=1000\nreset_at = 5");
        // E(8) - E(5) = (500 + 800) / 2 * 3 = 1950 J.
        assert_eq!(g.counter_mj(8.0), Some(1_950_000));
    }

    #[test]
    fn counter_unsupported() {
        assert_eq!(gpu("counter = no").counter_mj(5.0), None);
        assert_eq!(gpu("power = unsupported").counter_mj(5.0), None);
        assert_eq!(gpu("power = unsupported").power_reading_mw(5.0), None);
    }

    #[test]
    fn power_window_averages() {
        let g = gpu("power = square:100:400:2\npower_window = 1");
        // Window [1.5, 2.5]: 0.5 s at 400 + 0.5 s at 100.
        assert_eq!(g.power_w(2.5), Some(250.0));
        // Window [1, 2] is entirely high.
        assert_eq!(g.power_w(2.0), Some(400.0));
        // Shortened window before t = 1: [0, 0.5] entirely low.
        assert_eq!(g.power_w(0.5), Some(100.0));
        assert_eq!(g.power_w(0.0), Some(100.0));

        let g = gpu("power = trace:0=0,10=1000\npower_window = 2");
        // Average of a linear ramp over [4, 6] is its midpoint value.
        let w = g.power_w(6.0).expect("power");
        assert!((w - 500.0).abs() < 1e-9, "{w}");
        assert_eq!(g.power_reading_mw(6.0), Some(500_000));

        let g = gpu("power = const:123.4\npower_window = 1");
        assert_eq!(g.power_reading_mw(0.2), Some(123_400));
        assert_eq!(g.power_reading_mw(50.0), Some(123_400));
    }

    #[test]
    fn instantaneous_power() {
        let g = gpu("power = square:100:400:2");
        assert_eq!(g.power_reading_mw(0.9), Some(100_000));
        assert_eq!(g.power_reading_mw(1.1), Some(400_000));
    }

    #[test]
    fn glitch_reads_ten_times_the_limit() {
        let g = gpu("power = const:100\nlimit_w = 300\nglitch_at = 5:1");
        assert_eq!(g.power_reading_mw(4.9), Some(100_000));
        assert_eq!(g.power_reading_mw(5.0), Some(3_000_000));
        assert_eq!(g.power_reading_mw(6.0), Some(100_000));
        // The counter is unaffected.
        assert_eq!(g.counter_mj(6.0), Some(600_000));
        let g = gpu("limit_w = unsupported\nglitch_at = 0:10");
        assert_eq!(g.power_reading_mw(1.0), Some(7_000_000));
    }

    #[test]
    fn faults() {
        use super::Fault;
        let g = gpu("lost_at = 10\nlost_until = 20\nerror_at = 5:1, 15:10");
        assert_eq!(g.fault_at(4.0), None);
        assert_eq!(g.fault_at(5.5), Some(Fault::Transient));
        assert_eq!(g.fault_at(6.0), None);
        assert_eq!(g.fault_at(10.0), Some(Fault::Lost));
        assert_eq!(g.fault_at(19.9), Some(Fault::Lost));
        assert_eq!(g.fault_at(20.0), Some(Fault::Transient));
        assert_eq!(g.fault_at(25.0), None);
        // Energy consumed while lost is in the counter.
        assert_eq!(g.counter_mj(25.0), Some(2_500_000));
        let g = gpu("lost_at = 3");
        assert_eq!(g.fault_at(1e9), Some(Fault::Lost));
    }

    #[test]
    fn hangs_last_until_their_window_ends() {
        let g = gpu("hang_at = 2:3, 4:2, 10:1");
        assert_eq!(g.hang_until(1.9), None);
        assert_eq!(g.hang_until(2.0), Some(5.0));
        // Overlapping windows: a call in both blocks until the later end.
        assert_eq!(g.hang_until(4.5), Some(6.0));
        assert_eq!(g.hang_until(6.0), None);
        assert_eq!(g.hang_until(10.5), Some(11.0));
        // A hang is no fault: the call then answers as usual.
        assert_eq!(g.fault_at(3.0), None);
        assert_eq!(gpu("").hang_until(3.0), None);
    }

    #[test]
    fn limits_and_utilization() {
        let g = gpu("limit_w = 350\nutil = trace:0=-20,10=180");
        assert_eq!(g.limit_mw(), Some(350_000));
        assert_eq!(g.limit_constraints_mw(), Some((87_500, 350_000)));
        assert_eq!(g.utilization(0.0), Some((0, 0)));
        assert_eq!(g.utilization(3.0), Some((40, 20)));
        assert_eq!(g.utilization(3.04), Some((41, 20)));
        assert_eq!(g.utilization(9.0), Some((100, 50)));
        let g = gpu("limit_w = unsupported\nutil = unsupported");
        assert_eq!(g.limit_mw(), None);
        assert_eq!(g.limit_constraints_mw(), None);
        assert_eq!(g.utilization(1.0), None);
    }
}
