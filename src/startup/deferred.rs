//! Starting the sampler once the first carbon intensity is known, without holding up the
//! listeners.
//!
//! With a live provider the first tick should be charged at the live value, not the fallback,
//! so sampling waits for the first fetch to end (at most twice `--carbon.http-timeout` plus a
//! second: WattTime may need a login and a data call). That wait used to come before the
//! listeners were bound, so nothing answered, not even `/-/healthy`, for up to ten minutes with
//! a hung API — longer than a DaemonSet's liveness budget. Now the listeners serve at once:
//! `/-/healthy` answers 200, and `/-/ready` answers 503 until the first snapshot, which is taken
//! as soon as the first fetch has ended (with a value or with the fallback decision).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, info};

use crate::sampler::SamplerHandle;

/// How often the waiting thread looks for a shutdown while the first fetch is still running.
const POLL: Duration = Duration::from_millis(50);

/// The sampler, running or waiting to start.
pub(crate) enum Sampling {
    /// Started.
    Running(SamplerHandle),
    /// Waiting for the first fetch on a thread of its own, which then starts it.
    Waiting {
        /// Dropping or sending stops the wait (at shutdown).
        cancel: mpsc::Sender<()>,
        /// Yields the sampler once started; `None` if cancelled or it could not start.
        thread: JoinHandle<Option<SamplerHandle>>,
    },
}

impl Sampling {
    /// Starts sampling now with `start` when there is nothing to wait for; otherwise once
    /// `first` reports (or is dropped), or after `wait`.
    pub(crate) fn start(
        first: Option<Receiver<()>>,
        wait: Duration,
        start: impl FnOnce() -> std::io::Result<SamplerHandle> + Send + 'static,
    ) -> std::io::Result<Sampling> {
        let Some(first) = first else {
            return Ok(Sampling::Running(start()?));
        };
        let (cancel, cancelled) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sampler-start".into())
            .spawn(move || {
                if !wait_for_first(&first, &cancelled, wait) {
                    return None;
                }
                start()
                    .map_err(|e| error!(error = %e, "Cannot start the sampler thread"))
                    .ok()
            })?;
        Ok(Sampling::Waiting { cancel, thread })
    }

    /// Stops sampling (or the wait for it) and waits for the thread.
    pub(crate) fn stop(self) {
        match self {
            Sampling::Running(sampler) => sampler.stop(),
            Sampling::Waiting { cancel, thread } => {
                let _ = cancel.send(());
                if let Ok(Some(sampler)) = thread.join() {
                    sampler.stop();
                }
            }
        }
    }
}

/// Waits until `first` reports or hangs up, or `wait` passes: true. A message (or hang-up) on
/// `cancelled` first: false.
fn wait_for_first(first: &Receiver<()>, cancelled: &Receiver<()>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        match first.try_recv() {
            Ok(()) | Err(TryRecvError::Disconnected) => return true,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            info!(waited = ?wait, "First intensity fetch still running; sampling starts on the fallback");
            return true;
        }
        match cancelled.recv_timeout(POLL.min(deadline - now)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_first_fetch_or_stops_on_cancel() {
        let (tx, first) = mpsc::channel();
        let (_keep, cancelled) = mpsc::channel::<()>();
        tx.send(()).expect("send");
        assert!(wait_for_first(&first, &cancelled, Duration::from_secs(60)));

        let (_tx, first) = mpsc::channel::<()>();
        let (cancel, cancelled) = mpsc::channel();
        cancel.send(()).expect("send");
        assert!(!wait_for_first(&first, &cancelled, Duration::from_secs(60)));

        // A refresh thread that ended without reporting does not hold sampling up.
        let (tx, first) = mpsc::channel::<()>();
        drop(tx);
        let (_keep, cancelled) = mpsc::channel::<()>();
        assert!(wait_for_first(&first, &cancelled, Duration::from_secs(60)));

        // Nothing at all: the wait ends.
        let (_tx, first) = mpsc::channel::<()>();
        let (_keep, cancelled) = mpsc::channel::<()>();
        assert!(wait_for_first(&first, &cancelled, Duration::ZERO));
    }
}
