//! The most recent per-process SM-utilization samples of each GPU, reused on ticks without a
//! newer one.
//!
//! NVML keeps per-process utilization samples in a buffer filled about once a second (slower
//! on some GPUs), whatever `--sample.interval` is. A tick shorter than that period usually
//! finds no new sample; treating that as "all idle" would split those ticks equally and bias
//! every workload towards 1/n. Instead a tick without any sample reuses the latest sample set
//! of its GPU, for at most [`MAX_AGE`]; a process absent from that set gets no SM share (it ran
//! no kernel in the latest sample, or started since). Past [`MAX_AGE`] (samples stopped: the
//! GPU idles, or per-process utilization is unsupported) the equal split applies again.

use std::collections::HashMap;

use super::pids::PidMap;

/// How long a sample set stands in for missing ones: several NVML sampling periods, and short
/// enough that a workload mix that changed is not billed on a stale split for long.
pub const MAX_AGE_S: f64 = 10.0;

/// One GPU's latest samples: PID → SM utilization (0–1), and when they were taken.
#[derive(Debug, Clone, Default)]
struct Latest {
    sm: PidMap<f64>,
    at_unix: f64,
}

/// Latest samples per GPU UUID.
#[derive(Debug, Clone, Default)]
pub struct RecentShares {
    by_gpu: HashMap<String, Latest>,
}

impl RecentShares {
    /// The SM samples to split by on GPU `uuid` at `now_unix`, for processes `pids` whose own
    /// samples this tick are `sm`: `sm` itself when any is present (and remembered), else the
    /// latest remembered set while younger than [`MAX_AGE_S`], else `sm` (all `None`).
    pub fn fill(
        &mut self,
        uuid: &str,
        pids: &[u32],
        sm: Vec<Option<f64>>,
        now_unix: f64,
    ) -> Vec<Option<f64>> {
        if sm.iter().any(Option::is_some) {
            let latest = match self.by_gpu.get_mut(uuid) {
                Some(latest) => latest,
                None => self.by_gpu.entry(uuid.to_string()).or_default(),
            };
            // Refilled in place: this runs for every GPU at every sample with samples.
            latest.sm.clear();
            latest
                .sm
                .extend(pids.iter().zip(&sm).filter_map(|(p, s)| s.map(|s| (*p, s))));
            latest.at_unix = now_unix;
            return sm;
        }
        match self.by_gpu.get(uuid) {
            Some(latest) if now_unix - latest.at_unix <= MAX_AGE_S => pids
                .iter()
                .map(|p| Some(latest.sm.get(p).copied().unwrap_or(0.0)))
                .collect(),
            _ => sm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_samples_pass_through_and_are_remembered() {
        let mut r = RecentShares::default();
        let got = r.fill("g", &[1, 2], vec![Some(0.5), Some(0.05)], 0.0);
        assert_eq!(got, [Some(0.5), Some(0.05)]);
        assert_eq!(
            r.fill("g", &[1, 2], vec![None, None], 0.9),
            [Some(0.5), Some(0.05)]
        );
        assert_eq!(r.fill("other", &[1], vec![None], 0.9), [None], "per GPU");
    }

    #[test]
    fn newcomers_get_no_share_until_sampled() {
        let mut r = RecentShares::default();
        r.fill("g", &[1], vec![Some(0.4)], 0.0);
        assert_eq!(
            r.fill("g", &[1, 3], vec![None, None], 0.5),
            [Some(0.4), Some(0.0)]
        );
    }

    #[test]
    fn stale_samples_expire() {
        let mut r = RecentShares::default();
        r.fill("g", &[1, 2], vec![Some(0.5), Some(0.1)], 0.0);
        assert_eq!(
            r.fill("g", &[1, 2], vec![None, None], MAX_AGE_S),
            [Some(0.5), Some(0.1)]
        );
        assert_eq!(
            r.fill("g", &[1, 2], vec![None, None], MAX_AGE_S + 0.1),
            [None, None]
        );
    }
}
