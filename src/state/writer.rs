//! The thread that saves the state file every `--state.flush-interval` and once more at
//! shutdown, from the published snapshot. A failed write (disk full, read-only directory) is
//! counted and logged once, and the exporter keeps serving; the next write tries again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use super::store::write_atomic;
use super::StateFile;
use crate::sampler::Published;

/// What the metrics report about persistence.
#[derive(Debug, Default)]
pub struct StateHealth {
    /// Successful writes.
    pub writes: AtomicU64,
    /// Failed writes.
    pub write_failures: AtomicU64,
    last_success_bits: AtomicU64,
    /// Devices restored at start (live and retained).
    pub restored_devices: AtomicU64,
    /// Files set aside at start because they were corrupt or unreadable.
    pub set_aside: AtomicU64,
    failing: AtomicBool,
    persisting: AtomicBool,
}

impl StateHealth {
    /// Whether a writer is saving the state.
    pub fn persisting(&self) -> bool {
        self.persisting.load(Ordering::Relaxed)
    }

    /// Unix time of the last successful write, 0 if none.
    pub fn last_success_unix(&self) -> f64 {
        f64::from_bits(self.last_success_bits.load(Ordering::Relaxed))
    }

    fn record(&self, result: std::io::Result<()>, unix: f64, path: &std::path::Path) {
        match result {
            Ok(()) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.last_success_bits
                    .store(unix.to_bits(), Ordering::Relaxed);
                if self.failing.swap(false, Ordering::Relaxed) {
                    info!(path = %path.display(), "Writing the state file works again");
                }
            }
            Err(err) => {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    warn!(path = %path.display(), error = %err, "Cannot write the state file; totals since the last successful write would be lost on restart. Still serving; retrying every flush interval");
                }
            }
        }
    }
}

/// The running writer thread.
pub struct StateWriter {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl StateWriter {
    /// Writes once more (call after the sampler has stopped, so the last tick is saved) and
    /// stops the thread.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            warn!("State writer thread panicked");
        }
    }
}

/// Starts saving the latest snapshot to `path` every `interval`.
pub fn spawn(
    path: PathBuf,
    interval: Duration,
    snapshots: Published,
    health: Arc<StateHealth>,
) -> std::io::Result<StateWriter> {
    let (stop, stopped) = mpsc::channel::<()>();
    health.persisting.store(true, Ordering::Relaxed);
    let thread = std::thread::Builder::new()
        .name("state-writer".into())
        .spawn(move || loop {
            let last = !matches!(
                stopped.recv_timeout(interval),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            let snapshot = snapshots.borrow().clone();
            if let Some(s) = snapshot {
                let written = StateFile::from_snapshot(&s)
                    .to_json()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                    .and_then(|text| write_atomic(&path, &text));
                health.record(written, s.taken_at_unix, &path);
            }
            if last {
                return;
            }
        })?;
    Ok(StateWriter { stop, thread })
}
