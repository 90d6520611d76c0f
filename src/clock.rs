//! Time as the sampler sees it, behind a trait so the accounting can be tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One instant, on two scales: `mono` (monotonic, since the clock's origin) for intervals, and
/// `unix` (wall clock, seconds) for timestamps users see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timestamp {
    /// Monotonic time since the clock was created; never goes backwards.
    pub mono: Duration,
    /// Wall-clock time in seconds since the Unix epoch.
    pub unix: f64,
}

/// A source of [`Timestamp`]s.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real clock: `Instant` for intervals, `SystemTime` for the wall clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Timestamp {
            mono: self.origin.elapsed(),
            unix,
        }
    }
}

/// A clock that moves only when told to; for tests and golden files.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock standing at `unix` seconds, monotonic zero.
    pub fn new(unix: f64) -> ManualClock {
        ManualClock {
            now: Mutex::new(Timestamp {
                mono: Duration::ZERO,
                unix,
            }),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        now.mono += by;
        now.unix += by.as_secs_f64();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
/// A Unix time (seconds, 0 for never) that one thread sets and others read without a lock,
/// for the "last success" timestamps the metrics report.
#[derive(Debug, Default)]
pub struct AtomicUnixTime(std::sync::atomic::AtomicU64);

impl AtomicUnixTime {
    /// Sets it to `unix`.
    pub fn set(&self, unix: f64) {
        self.0
            .store(unix.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets it to the wall clock's now.
    pub fn set_now(&self) {
        self.set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
    }

    /// The time set last, 0 if never.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}
