//! The web configuration's `rate_limit`: a token bucket over every request, as the
//! exporter-toolkit applies it (one request per `interval`, bursts of `burst`); over the limit
//! a request is answered `429`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::file::RateLimit;

/// A token bucket. Time is passed in, so tests need no clock.
pub struct Bucket {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            limit,
            state: Mutex::new((f64::from(limit.burst), now)),
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let earned = now.saturating_duration_since(last).as_secs_f64()
            / self
                .limit
                .interval
                .max(Duration::from_nanos(1))
                .as_secs_f64();
        let tokens = (tokens + earned).min(f64::from(self.limit.burst));
        let (tokens, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        *state = (tokens, now.max(last));
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_one_per_interval() {
        let t0 = Instant::now();
        let b = Bucket::new(
            RateLimit {
                interval: Duration::from_secs(1),
                burst: 2,
            },
            t0,
        );
        assert!(b.allow(t0) && b.allow(t0));
        assert!(!b.allow(t0), "burst used up");
        assert!(!b.allow(t0 + Duration::from_millis(500)));
        assert!(b.allow(t0 + Duration::from_millis(1000)));
        assert!(!b.allow(t0 + Duration::from_millis(1100)));
        let later = t0 + Duration::from_secs(60);
        assert!(
            b.allow(later) && b.allow(later) && !b.allow(later),
            "refills to burst only"
        );
    }
}
