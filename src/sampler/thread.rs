//! The sampler's own OS thread: ticks on a fixed period and hands each snapshot on, until
//! stopped.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::warn;

use super::Sampler;
use crate::clock::Clock;
use crate::snapshot::Snapshot;

/// The running sampler thread.
pub struct SamplerHandle {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl SamplerHandle {
    /// Stops the thread after its current tick and waits for it (which also closes the
    /// backends, e.g. shuts NVML down).
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            warn!("Sampler thread panicked");
        }
    }
}

/// Starts sampling every `interval` on a thread of its own, handing each snapshot to
/// `publish` (straight to the scrapes, or to the state writer that commits it first). Missed
/// ticks (a tick slower than the interval) are skipped, not bunched.
pub fn spawn(
    mut sampler: Sampler,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut publish: impl FnMut(Snapshot) + Send + 'static,
) -> std::io::Result<SamplerHandle> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                let started = Instant::now();
                let mut snapshot = sampler.tick(clock.as_ref());
                snapshot.sample_duration = started.elapsed();
                publish(snapshot);
                next += interval;
                let now = Instant::now();
                if next < now {
                    next = now + interval;
                }
                match stopped.recv_timeout(next - now) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })?;
    Ok(SamplerHandle { stop, thread })
}
