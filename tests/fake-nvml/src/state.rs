//! Process-global library state: the loaded scenario, the init reference
//! count and the time origin.

use crate::scenario::{InitOutcome, Scenario};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming the scenario file.
pub const SCENARIO_ENV: &str = "FAKE_NVML_SCENARIO";

struct Session {
    /// Successful inits minus shutdowns (NVML reference-counts init).
    refcount: u32,
    scenario: Scenario,
    /// Time origin when the scenario has no `epoch`.
    started: Instant,
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Session>> {
    // A panic while holding the lock cannot leave the state half-updated in a
    // way that matters here, so poisoning is ignored.
    SESSION
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why initialization failed.
#[derive(Debug)]
pub enum InitError {
    /// The scenario could not be loaded; the message explains why.
    Scenario(String),
    /// The scenario asks initialization to fail with this outcome.
    Refused(InitOutcome),
}

/// Reads `$FAKE_NVML_SCENARIO`, parses it and starts (or joins) a session.
///
/// Every successful call re-reads the file and replaces the scenario; the
/// time origin of an `epoch`-less scenario is kept while the session lasts.
pub fn init() -> Result<(), InitError> {
    let scenario = load_from_env().map_err(InitError::Scenario)?;
    if scenario.init != InitOutcome::Ok {
        return Err(InitError::Refused(scenario.init));
    }
    let mut session = lock();
    match session.as_mut() {
        Some(s) => {
            s.refcount = s.refcount.saturating_add(1);
            s.scenario = scenario;
        }
        None => {
            *session = Some(Session {
                refcount: 1,
                scenario,
                started: Instant::now(),
            })
        }
    }
    Ok(())
}

/// Ends one init; the session closes when the count reaches 0.
/// Returns `false` if the library was not initialized.
pub fn shutdown() -> bool {
    let mut session = lock();
    let Some(s) = session.as_mut() else {
        return false;
    };
    s.refcount = s.refcount.saturating_sub(1);
    if s.refcount == 0 {
        *session = None;
    }
    true
}

/// Runs `f` with the scenario and the current scenario time, or returns
/// `None` if the library is not initialized.
pub fn with_scenario<R>(f: impl FnOnce(&Scenario, f64) -> R) -> Option<R> {
    let session = lock();
    let s = session.as_ref()?;
    let t = scenario_time(s.scenario.epoch, s.started);
    Some(f(&s.scenario, t))
}

/// Scenario time in seconds: wall time minus `epoch`, or the time since the
/// session started; never negative.
fn scenario_time(epoch: Option<f64>, started: Instant) -> f64 {
    let t = match epoch {
        Some(epoch) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            now - epoch
        }
        None => started.elapsed().as_secs_f64(),
    };
    t.max(0.0)
}

fn load_from_env() -> Result<Scenario, String> {
    let path = std::env::var_os(SCENARIO_ENV)
        .ok_or_else(|| format!("{SCENARIO_ENV} is not set; it must name a scenario file"))?;
    let shown = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read scenario file {shown} ({SCENARIO_ENV}): {e}"))?;
    Scenario::parse(&text).map_err(|e| format!("invalid scenario file {shown}: {e}"))
}
