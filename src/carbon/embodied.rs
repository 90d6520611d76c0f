//! Embodied (manufacturing) emissions of a GPU (and, with `--embodied.host-kg`, of the host
//! without its GPUs), amortised linearly over its service life while
//! the exporter runs: after `t` seconds of running, `grams = kg × 1000 × min(t, life) / life`.
//! These are scope 3 emissions (capital goods) and are exported apart from the operational,
//! scope 2 `gpu_co2e_grams_total`, so reports can show both without mixing them.
//!
//! No per-model default ships: NVIDIA publishes Product Carbon Footprint summaries (e.g. for
//! HGX H100 and HGX B200 baseboards), but we found no absolute per-GPU figure we could cite
//! exactly, so the footprint comes from `--embodied.kg-per-gpu` (your vendor's PCF, divided by
//! the GPUs it covers).

use std::time::Duration;

use crate::units::Grams;

/// Seconds in a (Julian) year, 365.25 days: the unit of `--embodied.lifetime-years`.
pub const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;
/// Default service life in years: the common depreciation period of data-centre servers.
pub const DEFAULT_LIFETIME_YEARS: f64 = 5.0;

/// One piece of hardware's footprint (a GPU, or the host without its GPUs) and the life it is
/// spread over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amortisation {
    /// Manufacturing footprint, kg CO2e.
    pub kg: f64,
    /// Service life the footprint is spread over.
    pub lifetime: Duration,
}

impl Amortisation {
    /// A footprint of `kg` spread over `lifetime_years`.
    pub fn new(kg: f64, lifetime_years: f64) -> Amortisation {
        Amortisation {
            kg,
            lifetime: Duration::from_secs_f64(lifetime_years * SECONDS_PER_YEAR),
        }
    }

    /// Grams attributed to `elapsed` of service: linear, and never more than the footprint.
    pub fn grams_after(&self, elapsed: Duration) -> Grams {
        if self.lifetime.is_zero() {
            return Grams(0.0);
        }
        let share = elapsed.min(self.lifetime).as_secs_f64() / self.lifetime.as_secs_f64();
        Grams(self.kg * 1_000.0 * share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_in_elapsed_time_and_capped_at_the_footprint() {
        let a = Amortisation::new(1_000.0, 5.0);
        assert_eq!(a.grams_after(Duration::ZERO), Grams(0.0));
        let year = Duration::from_secs_f64(SECONDS_PER_YEAR);
        assert!((a.grams_after(year).0 - 200_000.0).abs() < 1e-6);
        let day = Duration::from_secs(86_400);
        // 1,000 kg over 5 × 365.25 days = 547.57 g per day.
        assert!((a.grams_after(day).0 - 1e6 / (5.0 * 365.25)).abs() < 1e-9);
        assert!((a.grams_after(year * 7).0 - 1e6).abs() < 1e-6);
        assert_eq!(Amortisation::new(1.0, 0.0).grams_after(day), Grams(0.0));
    }
}
