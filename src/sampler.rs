//! The background sampler: reads every GPU once per tick, accounts the readings, and publishes
//! an immutable [`Snapshot`]. [`Sampler::tick`] is a plain function of the time it is given;
//! [`spawn`] drives it from a dedicated OS thread, so blocking NVML calls never run on the
//! async workers or in a scrape.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::backend::{Backend, DeviceError, Reading};
use crate::carbon::IntensityProvider;
use crate::clock::{Clock, Timestamp};
use crate::energy::{EnergySource, Factors, GpuLedger, Observation};
use crate::snapshot::{ErrorCounts, ErrorKind, GpuSnapshot, Snapshot};
use crate::units::Watts;

/// The latest snapshot, `None` until the first tick.
pub type Published = watch::Receiver<Option<Arc<Snapshot>>>;

/// Per-GPU state between ticks.
struct GpuState {
    ledger: GpuLedger,
    errors: ErrorCounts,
    up: bool,
    power: Option<Watts>,
    power_limit: Option<Watts>,
    utilization: Option<f64>,
}

/// Reads, accounts and snapshots.
pub struct Sampler {
    backend: Box<dyn Backend>,
    intensity: Box<dyn IntensityProvider>,
    pue: f64,
    gpus: Vec<GpuState>,
}

impl Sampler {
    /// A sampler over `backend`'s devices. `max_gap` is the longest interval that power
    /// integration may bridge when readings are missing.
    pub fn new(
        backend: Box<dyn Backend>,
        intensity: Box<dyn IntensityProvider>,
        pue: f64,
        max_gap: Duration,
    ) -> Sampler {
        let gpus = backend
            .devices()
            .iter()
            .map(|d| GpuState {
                ledger: GpuLedger::new(
                    if d.caps.energy_counter {
                        EnergySource::Counter
                    } else {
                        EnergySource::Integrated
                    },
                    max_gap,
                ),
                errors: ErrorCounts::default(),
                up: true,
                power: None,
                power_limit: None,
                utilization: None,
            })
            .collect();
        Sampler {
            backend,
            intensity,
            pue,
            gpus,
        }
    }

    /// The backend being sampled.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Reads every GPU at time `now` and returns the resulting snapshot.
    pub fn tick(&mut self, now: Timestamp) -> Snapshot {
        let intensity = self.intensity.intensity_at(now.unix);
        let factors = Factors {
            pue: self.pue,
            intensity: intensity.value,
        };
        for position in 0..self.gpus.len() {
            let result = self.backend.read(position);
            let uuid = &self.backend.devices()[position].uuid;
            let gpu = &mut self.gpus[position];
            match result {
                Ok(reading) => gpu.record(now, reading, factors, uuid),
                Err(err) => gpu.fail(&err, uuid),
            }
        }
        Snapshot {
            taken_at_unix: now.unix,
            sample_duration: Duration::ZERO,
            intensity,
            pue: self.pue,
            gpus: self
                .backend
                .devices()
                .iter()
                .zip(&self.gpus)
                .map(|(info, g)| GpuSnapshot {
                    info: info.clone(),
                    energy_source: g.ledger.source(),
                    up: g.up,
                    power: g.power,
                    power_limit: g.power_limit,
                    utilization: g.utilization,
                    totals: g.ledger.totals(),
                    errors: g.errors,
                })
                .collect(),
        }
    }
}

impl GpuState {
    fn record(&mut self, now: Timestamp, reading: Reading, factors: Factors, uuid: &str) {
        if !self.up {
            info!(uuid, "GPU readable again");
        }
        let outcome = self.ledger.observe(
            &Observation {
                at: now.mono,
                power: reading.power,
                energy_mj: reading.energy_mj,
                utilization: reading.utilization,
                power_limit: reading.power_limit,
            },
            factors,
        );
        let failed = reading.failed.len() as u64;
        self.errors.add(ErrorKind::ReadError, failed);
        if failed > 0 {
            debug!(uuid, fields = ?reading.failed, "Readings failed this tick");
        }
        if outcome.implausible_power {
            self.errors.add(ErrorKind::ImplausiblePower, 1);
            warn!(uuid, watts = ?reading.power, "Ignored an impossible power reading");
        }
        if outcome.implausible_energy {
            self.errors.add(ErrorKind::ImplausibleEnergy, 1);
            warn!(uuid, "Ignored an impossible energy counter step");
        }
        if outcome.counter_reset {
            warn!(
                uuid,
                "Energy counter restarted (driver reload or GPU reset); totals carry on"
            );
        }
        self.up = failed == 0;
        self.power = outcome.power;
        self.power_limit = reading.power_limit;
        self.utilization = reading.utilization;
    }

    fn fail(&mut self, err: &DeviceError, uuid: &str) {
        let kind = match err {
            DeviceError::Lost(_) => ErrorKind::DeviceLost,
            DeviceError::Transient(_) => ErrorKind::ReadError,
        };
        self.errors.add(kind, 1);
        if self.up {
            warn!(uuid, error = %err, "GPU unreadable; its counters keep their values");
        }
        self.up = false;
        self.power = None;
        self.power_limit = None;
        self.utilization = None;
    }
}

/// The running sampler thread.
pub struct SamplerHandle {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl SamplerHandle {
    /// Stops the thread after its current tick and waits for it (which also closes the
    /// backend, e.g. shuts NVML down).
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            warn!("Sampler thread panicked");
        }
    }
}

/// Starts sampling every `interval` on a thread of its own, publishing each snapshot on
/// `publish`. Missed ticks (a tick slower than the interval) are skipped, not bunched.
pub fn spawn(
    mut sampler: Sampler,
    clock: Arc<dyn Clock>,
    interval: Duration,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
) -> std::io::Result<SamplerHandle> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                let started = Instant::now();
                let mut snapshot = sampler.tick(clock.now());
                snapshot.sample_duration = started.elapsed();
                publish.send_replace(Some(Arc::new(snapshot)));
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
