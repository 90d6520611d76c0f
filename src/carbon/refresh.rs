//! Live intensity providers: a background thread per provider fetches on the provider's
//! cadence, retries failures with exponential backoff, and publishes the latest good value;
//! the sampler's [`LiveProvider::intensity_at`] only reads that value (a short lock, no I/O)
//! and falls back when it is missing or too old.
//!
//! Fallback order: the provider's latest good value while it is younger than
//! `--carbon.max-age` (flagged as a fallback while the refreshes after it fail), then the
//! static value (`--carbon.fallback-zone`, `--carbon.intensity`, or the world average).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::http::FetchError;
use super::{FixedIntensity, Intensity, IntensityProvider, ProviderStatus, Scope, Signal};
use crate::clock::Clock;
use crate::units::GramsPerKwh;

/// One good answer of a live API.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveValue {
    /// The intensity, converted to g CO2e/kWh.
    pub grams_per_kwh: f64,
    /// The zone or region the API answered for.
    pub zone: String,
    /// Average or marginal.
    pub signal: Signal,
    /// Lifecycle or direct.
    pub scope: Scope,
    /// The dataset tag for `gpu_carbon_intensity_info{source}`.
    pub source: String,
    /// Start of the interval the value covers, as the API dates it (Unix seconds).
    pub at_unix: f64,
    /// End of that interval (Unix seconds): its age, for `--carbon.max-age`, counts from here,
    /// so an hourly value dated at the top of the hour is not "old" for most of its own hour.
    pub until_unix: f64,
}

/// One live API: a blocking fetch of the value in force at `now_unix`.
pub trait Fetch: Send + 'static {
    /// Fetches the current value (blocking; runs on the provider's own thread).
    fn fetch(&mut self, now_unix: f64) -> Result<LiveValue, FetchError>;
}

/// How often to fetch, and how soon to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cadence {
    /// Time between successful fetches; also the longest wait between retries.
    pub period: Duration,
    /// Wait before the first retry; doubles with each consecutive failure.
    pub first_retry: Duration,
}

/// Wait after the `failures`-th consecutive failure (1-based): `first_retry × 2^(n−1)`, at most
/// the period, at least what the server asked for in `Retry-After`.
pub fn retry_delay(failures: u32, cadence: &Cadence, retry_after: Option<Duration>) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let delay = cadence
        .first_retry
        .saturating_mul(1u32 << doublings)
        .min(cadence.period);
    retry_after.map_or(delay, |asked| asked.max(delay))
}

/// The value in force at `now`: the latest good one while it is at most `max_age` old, its age
/// counted from the end of the interval it covers.
pub fn in_force(latest: Option<&LiveValue>, now: f64, max_age: Duration) -> Option<&LiveValue> {
    latest.filter(|v| age(v, now) <= max_age.as_secs_f64())
}

/// Seconds since the end of the interval `v` covers (0 while it lasts).
pub fn age(v: &LiveValue, now: f64) -> f64 {
    (now - v.until_unix).max(0.0)
}

/// What the refresh thread has learnt, shared with the sampler.
#[derive(Debug, Default)]
struct State {
    latest: Option<LiveValue>,
    last_failed: bool,
    errors: u64,
}

/// Which kind of value the sampler applied last, to log changes once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Starting,
    Live,
    Stale,
    Static,
}

/// A provider fed by a refresh thread.
pub struct LiveProvider {
    name: &'static str,
    state: Arc<Mutex<State>>,
    fallback: FixedIntensity,
    max_age: Duration,
    mode: Mode,
    status: ProviderStatus,
    // Dropping the sender stops the refresh thread at its next wait.
    _stop: mpsc::Sender<()>,
}

impl LiveProvider {
    /// Starts the refresh thread of `fetcher`. The receiver reports when the first attempt is
    /// over (so start-up can wait for it rather than begin on the fallback).
    pub fn spawn(
        name: &'static str,
        fetcher: Box<dyn Fetch>,
        cadence: Cadence,
        max_age: Duration,
        fallback: FixedIntensity,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<(LiveProvider, mpsc::Receiver<()>)> {
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = mpsc::channel();
        let (first_tx, first_rx) = mpsc::channel();
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name(format!("carbon-{name}"))
            .spawn(move || {
                let refresher = Refresher {
                    name,
                    fetcher,
                    state: shared,
                    cadence,
                    max_age,
                    clock,
                };
                refresher.run(&stopped, first_tx);
            })?;
        let provider = LiveProvider {
            name,
            state,
            fallback,
            max_age,
            mode: Mode::Starting,
            status: ProviderStatus {
                provider: name,
                fetch_errors: 0,
                last_update_unix: None,
            },
            _stop: stop,
        };
        Ok((provider, first_rx))
    }

    fn log_change(&mut self, mode: Mode, intensity: &Intensity) {
        if mode == self.mode {
            return;
        }
        let (provider, zone, grams) = (self.name, &intensity.zone, intensity.value.0);
        match mode {
            Mode::Live => {
                info!(provider, zone = %zone, grams_per_kwh = grams, "Using live carbon intensity")
            }
            Mode::Stale => {
                warn!(provider, zone = %zone, grams_per_kwh = grams, "Refresh failing: keeping the last good carbon intensity (gpu_carbon_intensity_fallback 1)")
            }
            Mode::Static => {
                warn!(provider, zone = %zone, grams_per_kwh = grams, max_age = ?self.max_age, "No carbon intensity younger than --carbon.max-age: using the static fallback (gpu_carbon_intensity_fallback 1)")
            }
            Mode::Starting => {}
        }
        self.mode = mode;
    }
}

impl IntensityProvider for LiveProvider {
    fn intensity_at(&mut self, unix: f64) -> Intensity {
        let (live, errors, last_update) = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let live = in_force(state.latest.as_ref(), unix, self.max_age)
                .map(|v| (v.clone(), state.last_failed));
            (live, state.errors, state.latest.as_ref().map(|v| v.at_unix))
        };
        self.status.fetch_errors = errors;
        self.status.last_update_unix = last_update;
        let (mode, intensity) = match live {
            Some((v, stale)) => (
                if stale { Mode::Stale } else { Mode::Live },
                Intensity {
                    value: GramsPerKwh(v.grams_per_kwh),
                    zone: v.zone,
                    provider: self.name,
                    signal: v.signal,
                    scope: v.scope,
                    source: v.source,
                    fallback: stale,
                },
            ),
            None => {
                let mut i = self.fallback.intensity_at(unix);
                i.fallback = true;
                (Mode::Static, i)
            }
        };
        self.log_change(mode, &intensity);
        intensity
    }

    fn status(&self) -> ProviderStatus {
        self.status.clone()
    }
}

/// The refresh thread's side.
struct Refresher {
    name: &'static str,
    fetcher: Box<dyn Fetch>,
    state: Arc<Mutex<State>>,
    cadence: Cadence,
    max_age: Duration,
    clock: Arc<dyn Clock>,
}

impl Refresher {
    fn run(mut self, stopped: &mpsc::Receiver<()>, first: mpsc::Sender<()>) {
        let mut first = Some(first);
        let mut failures = 0u32;
        loop {
            let delay = self.attempt(&mut failures);
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            match stopped.recv_timeout(delay) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    /// One fetch; returns how long to wait before the next.
    fn attempt(&mut self, failures: &mut u32) -> Duration {
        let provider = self.name;
        let now = self.clock.now().unix;
        let result = self.fetcher.fetch(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(mut value) => {
                // A value can't be newer than the moment it was fetched (clock skew).
                value.at_unix = value.at_unix.min(now);
                // Its interval may not be over yet: then its age counts from this fetch. (Also
                // keeps a nonsense end date in the future from holding a value forever.)
                value.until_unix = value.until_unix.clamp(value.at_unix, now);
                let age = Duration::from_secs_f64(age(&value, now));
                if age > self.max_age {
                    warn!(provider, zone = %value.zone, age = ?age, max_age = ?self.max_age, "The provider's latest value is older than --carbon.max-age; it won't be used");
                } else {
                    debug!(provider, zone = %value.zone, grams_per_kwh = value.grams_per_kwh, age = ?age, "Carbon intensity refreshed");
                }
                *failures = 0;
                state.latest = Some(value);
                state.last_failed = false;
                self.cadence.period
            }
            Err(err) => {
                *failures += 1;
                state.errors += 1;
                state.last_failed = true;
                let delay = retry_delay(*failures, &self.cadence, err.retry_after());
                warn!(provider, error = %err, consecutive_failures = *failures, retry_in = ?delay, "Fetching the carbon intensity failed");
                delay
            }
        }
    }
}

#[cfg(test)]
mod tests;
