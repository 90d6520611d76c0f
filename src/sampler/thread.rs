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
/// ticks (a tick slower than the interval) are skipped, not bunched, and counted in
/// [`Snapshot::skipped_samples`].
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
            let (mut next, mut skipped) = (Instant::now(), 0);
            loop {
                let started = Instant::now();
                let mut snapshot = sampler.tick(clock.as_ref());
                snapshot.sample_duration = started.elapsed();
                next += interval;
                let now = Instant::now();
                if next < now {
                    skipped += missed(now - next, interval);
                    next = now + interval;
                }
                snapshot.skipped_samples = skipped;
                publish(snapshot);
                match stopped.recv_timeout(next - now) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })?;
    Ok(SamplerHandle { stop, thread })
}

/// The ticks that were due while a tick overran by `late` (the next one is due `interval`
/// after the overrun ends): those due at `late`, `late − interval`, … before now.
fn missed(late: Duration, interval: Duration) -> u64 {
    let due = late.as_secs_f64() / interval.as_secs_f64().max(f64::MIN_POSITIVE);
    due.ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overruns_count_each_tick_that_was_due() {
        let ms = Duration::from_millis;
        assert_eq!(missed(ms(1), ms(200)), 1);
        assert_eq!(missed(ms(200), ms(200)), 1);
        assert_eq!(missed(ms(201), ms(200)), 2);
        assert_eq!(missed(ms(2_800), ms(200)), 14);
    }
}
