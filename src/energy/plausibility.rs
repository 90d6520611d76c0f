//! Which readings can be true. A reading that can't be is rejected and counted, never
//! accounted: one bad value must not add a day's energy to a ledger that can't go back down.

use std::time::Duration;

use crate::units::{Joules, Watts};

/// A reading above this multiple of the enforced power limit is impossible. Boards exceed their
/// limit only briefly and far less than this; 2× leaves room for limit changes between ticks.
pub const LIMIT_FACTOR: f64 = 2.0;

/// Ceiling when the power limit is unknown: above any single accelerator shipping in 2026
/// (NVIDIA B200: 1,000 W; GB200 superchip: 2,700 W for two GPUs and a CPU).
pub const ABSOLUTE_MAX_WATTS: f64 = 5_000.0;

/// Slack on the energy check for rounding of the millijoule counter and tick jitter.
const ENERGY_SLACK: Joules = Joules(1.0);

/// The highest power that could be real for a board with `limit`.
pub fn max_power(limit: Option<Watts>) -> Watts {
    match limit {
        Some(Watts(l)) if l > 0.0 && l.is_finite() => {
            Watts((l * LIMIT_FACTOR).min(ABSOLUTE_MAX_WATTS))
        }
        _ => Watts(ABSOLUTE_MAX_WATTS),
    }
}

/// `power` if it is a possible reading for a board with `limit`.
pub fn check_power(power: Watts, limit: Option<Watts>) -> Option<Watts> {
    (power.0.is_finite() && power.0 >= 0.0 && power <= max_power(limit)).then_some(power)
}

/// The most energy a board with `limit` can draw in `dt`.
pub fn max_energy(dt: Duration, limit: Option<Watts>) -> Joules {
    Joules(max_power(limit).0 * dt.as_secs_f64()) + ENERGY_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_checks() {
        let limit = Some(Watts(700.0));
        assert_eq!(check_power(Watts(0.0), limit), Some(Watts(0.0)));
        assert_eq!(check_power(Watts(760.0), limit), Some(Watts(760.0)));
        assert_eq!(check_power(Watts(1_400.0), limit), Some(Watts(1_400.0)));
        assert_eq!(check_power(Watts(1_400.1), limit), None);
        assert_eq!(check_power(Watts(-1.0), limit), None);
        assert_eq!(check_power(Watts(f64::NAN), limit), None);
        assert_eq!(check_power(Watts(f64::INFINITY), None), None);
        assert_eq!(check_power(Watts(4_999.0), None), Some(Watts(4_999.0)));
        assert_eq!(
            check_power(Watts(4_999.0), Some(Watts(0.0))),
            Some(Watts(4_999.0))
        );
    }

    #[test]
    fn energy_ceiling_scales_with_time() {
        let e = max_energy(Duration::from_secs(2), Some(Watts(500.0)));
        assert_eq!(e, Joules(2_001.0));
    }
}
