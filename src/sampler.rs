//! The background sampler: reads every device once per tick, accounts the readings, and
//! publishes an immutable [`Snapshot`]. [`Sampler::tick`] is a plain function of the clock it is
//! given; [`spawn`] drives it from a dedicated OS thread, so blocking NVML and sysfs reads never
//! run on the async workers or in a scrape.

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::attribution::Attributor;
use crate::backend::{Backend, DeviceError, DeviceInfo, DeviceKind, Reading};
use crate::carbon::embodied::Amortisation;
use crate::carbon::IntensityProvider;
use crate::clock::{Clock, Timestamp};
use crate::energy::host::HostEstimateSettings;
use crate::energy::mig::MigAccounts;
use crate::energy::{EnergySource, EstimateSettings, Factors, Ledger, Step};
use crate::snapshot::{
    CollectorStatus, CounterMark, DeviceSnapshot, ErrorCounts, ErrorKind, Snapshot,
};
use crate::state::StateFile;
use crate::units::{Grams, Watts};

mod sources;
#[cfg(test)]
mod tests;
mod thread;
pub use sources::{source_for, sources_for};
pub use thread::{spawn, SamplerHandle};

/// How long a MIG instance that is gone stays exported without `--collector.attribution` (the
/// default of `--attribution.retention`).
pub const DEFAULT_MIG_RETENTION: Duration = Duration::from_secs(600);

/// Accounting settings shared by every device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountingSettings {
    /// PUE applied to every device's energy.
    pub pue: f64,
    /// Longest interval power integration may bridge when readings are missing.
    pub max_gap: Duration,
    /// Power estimation.
    pub estimate: EstimateSettings,
    /// The host estimate's coefficients given by flags.
    pub host: HostEstimateSettings,
    /// Embodied emissions of each GPU, amortised while the exporter runs.
    pub embodied: Option<Amortisation>,
    /// Embodied emissions of the host, amortised likewise (carried by its first domain).
    pub embodied_host: Option<Amortisation>,
}

impl AccountingSettings {
    /// `pue`, a 5 s integration gap and no estimation overrides.
    pub fn with_pue(pue: f64) -> AccountingSettings {
        AccountingSettings {
            pue,
            max_gap: Duration::from_secs(5),
            estimate: EstimateSettings::default(),
            host: HostEstimateSettings::default(),
            embodied: None,
            embodied_host: None,
        }
    }
}

/// A live device's accounting and latest readings between ticks.
struct LiveDevice {
    ledger: Ledger,
    errors: ErrorCounts,
    up: bool,
    power: Option<Watts>,
    power_limit: Option<Watts>,
    utilization: Option<f64>,
    counter: Option<CounterMark>,
    last_seen_unix: f64,
    /// Embodied grams restored from the state file, to which this run's amortisation adds.
    embodied_base: Grams,
    /// When this device's counters started from zero (OpenMetrics `_created`): the first tick
    /// for a new device, the saved time for a restored one (`None` if the ledger predates it).
    created_unix: Option<f64>,
    /// Whether `created_unix` is still to be set by the first tick.
    created_pending: bool,
}

/// One backend and the state of its devices.
struct Source {
    backend: Box<dyn Backend>,
    states: Vec<LiveDevice>,
}

/// Reads, accounts and snapshots.
pub struct Sampler {
    sources: Vec<Source>,
    intensity: Box<dyn IntensityProvider>,
    pue: f64,
    embodied: Option<Amortisation>,
    embodied_host: Option<Amortisation>,
    started: Option<Duration>,
    collectors: Vec<CollectorStatus>,
    /// Devices from the state file that are gone, exported until their retention ends.
    retained: Vec<DeviceSnapshot>,
    retention: Duration,
    /// Splits each GPU's energy among its workloads, when enabled.
    attribution: Option<Attributor>,
    /// MIG GPUs' energy split among their instances.
    mig: MigAccounts,
}

impl Sampler {
    /// A sampler over the devices of `backends`; `collectors` is reported as is.
    pub fn new(
        backends: Vec<Box<dyn Backend>>,
        intensity: Box<dyn IntensityProvider>,
        settings: AccountingSettings,
        collectors: Vec<CollectorStatus>,
    ) -> Sampler {
        let sources = backends
            .into_iter()
            .map(|backend| {
                let states = sources_for(backend.as_ref(), &settings.estimate, &settings.host)
                    .into_iter()
                    .map(|source| LiveDevice::new(source, settings.max_gap))
                    .collect();
                Source { backend, states }
            })
            .collect();
        Sampler {
            sources,
            intensity,
            pue: settings.pue,
            embodied: settings.embodied,
            embodied_host: settings.embodied_host,
            started: None,
            collectors,
            retained: Vec::new(),
            retention: Duration::ZERO,
            attribution: None,
            mig: MigAccounts::new(DEFAULT_MIG_RETENTION.as_secs_f64()),
        }
    }

    /// Splits every GPU's energy among the workloads on it from now on, asking the backends to
    /// list their processes.
    pub fn attribute(&mut self, attributor: Attributor) {
        for source in &mut self.sources {
            source.backend.watch_processes();
        }
        self.attribution = Some(attributor);
    }

    /// Keeps MIG instances that are gone exported with their final totals for `retention`
    /// (`--attribution.retention`; [`DEFAULT_MIG_RETENTION`] otherwise).
    pub fn mig_retention(&mut self, retention: Duration) {
        self.mig.set_retention(retention.as_secs_f64());
    }

    /// The attributor, to restore saved workload totals into.
    pub fn attributor(&mut self) -> Option<&mut Attributor> {
        self.attribution.as_mut()
    }

    /// Continues from a saved state at time `now`: live devices resume their totals (and their
    /// counters, so the first reading also counts the downtime); saved devices that are gone
    /// stay exported, not up, until `retention` after they were last seen. Returns how many
    /// devices were restored.
    pub fn restore(&mut self, saved: &StateFile, now: Timestamp, retention: Duration) -> usize {
        self.retention = retention;
        let mut restored = 0;
        let mut live = Vec::new();
        for source in &mut self.sources {
            for (info, state) in source.backend.devices().iter().zip(&mut source.states) {
                live.push(info.uuid.clone());
                let Some(d) = saved.device(&info.uuid) else {
                    continue;
                };
                let age = |at_unix: f64| Duration::from_secs_f64((now.unix - at_unix).max(0.0));
                let counter = d.counter.map(|c| (c.uj, age(c.at_unix)));
                state.ledger.resume(d.totals(), counter, now.mono);
                state.last_seen_unix = d.last_seen_unix;
                state.embodied_base = Grams(d.embodied_g.unwrap_or(0.0));
                state.created_unix = d.created_unix;
                state.created_pending = false;
                restored += 1;
            }
        }
        self.mig.restore(&saved.mig);
        if let (Some(a), Some(saved)) = (&mut self.attribution, &saved.attribution) {
            a.restore(&saved.to_snapshot());
        }
        self.retained = saved
            .devices
            .iter()
            .filter(|d| !live.contains(&d.uuid))
            .map(|d| d.retained_snapshot())
            .collect();
        self.expire(now.unix);
        restored + self.retained.len()
    }

    fn expire(&mut self, unix: f64) {
        let retention = self.retention.as_secs_f64();
        self.retained.retain(|d| {
            let keep = unix - d.last_seen_unix <= retention;
            if !keep {
                info!(uuid = %d.info.uuid, "Retention over: no longer exporting a device that is gone");
            }
            keep
        });
    }

    /// Every device with its backend's name and its energy source, for the start-up inventory.
    pub fn inventory(&self) -> impl Iterator<Item = (&'static str, &DeviceInfo, EnergySource)> {
        self.sources.iter().flat_map(|s| {
            s.backend
                .devices()
                .iter()
                .zip(&s.states)
                .map(|(d, st)| (s.backend.name(), d, st.ledger.source()))
        })
    }

    /// Reads every device and returns the resulting snapshot. Each device's readings are dated
    /// when its read returned, so a read that hung (or a slow one before it) isn't taken for
    /// readings made at the start of the tick; the snapshot is dated when the last one did.
    pub fn tick(&mut self, clock: &dyn Clock) -> Snapshot {
        let now = clock.now();
        let intensity = self.intensity.intensity_at(now.unix);
        let carbon = self.intensity.status();
        let started = *self.started.get_or_insert(now.mono);
        let elapsed = now.mono.saturating_sub(started);
        let embodied = Embodied {
            gpu: self.embodied.map(|a| a.grams_after(elapsed)),
            host: self.embodied_host.map(|a| a.grams_after(elapsed)),
        };
        let factors = Factors {
            pue: self.pue,
            intensity: intensity.value,
        };
        if let Some(a) = &mut self.attribution {
            a.begin();
        }
        for source in &mut self.sources {
            for (position, state) in source.states.iter_mut().enumerate() {
                if std::mem::take(&mut state.created_pending) {
                    state.created_unix = Some(now.unix);
                }
                let result = source.backend.read(position);
                let read_at = clock.now();
                let info = &source.backend.devices()[position];
                match result {
                    Ok(mut reading) => {
                        let processes = reading.processes.take();
                        let mig = reading.mig.take();
                        let step = state.record(read_at, reading, factors, &info.uuid);
                        let (uuid, power) = (&info.uuid, state.power);
                        let shares = mig.and_then(|m| {
                            self.mig
                                .account(info.index, uuid, &m, step, power, read_at.unix)
                        });
                        if let Some(a) = self
                            .attribution
                            .as_mut()
                            .filter(|_| info.kind == DeviceKind::Gpu)
                        {
                            match &shares {
                                Some(shares) => a.account_mig(info, shares, step, read_at.unix),
                                None => {
                                    a.account(info, processes.as_deref(), step, power, read_at.unix)
                                }
                            }
                        }
                    }
                    Err(err) => state.fail(&err, &info.uuid),
                }
            }
        }
        let now = clock.now();
        self.expire(now.unix);
        for source in &self.sources {
            let name = source.backend.name();
            if let Some(c) = self.collectors.iter_mut().find(|c| c.name == name) {
                c.child = source.backend.child_counts();
            }
        }
        self.mig.expire(now.unix);
        let attribution = self.attribution.as_mut().map(|a| a.finish(now.unix));
        let mut live: Vec<_> = self
            .sources
            .iter()
            .flat_map(|s| s.snapshot(embodied))
            .collect();
        // The host's embodied share is one figure: its first domain carries (and saves) it.
        let mut hosts = live
            .iter_mut()
            .filter(|d| d.info.kind == DeviceKind::HostDomain);
        hosts.next();
        hosts.for_each(|d| d.embodied = None);
        Snapshot {
            taken_at_unix: now.unix,
            sample_duration: Duration::ZERO,
            skipped_samples: 0,
            intensity,
            carbon,
            pue: self.pue,
            devices: live
                .into_iter()
                .chain(self.retained.iter().cloned())
                .collect(),
            collectors: self.collectors.clone(),
            attribution,
            mig: self.mig.snapshot(),
        }
    }
}

/// This run's amortised embodied shares.
#[derive(Clone, Copy)]
struct Embodied {
    /// Of each GPU.
    gpu: Option<Grams>,
    /// Of the host.
    host: Option<Grams>,
}

impl Source {
    /// Each device's state; GPUs carry the GPU's embodied share (the same for every GPU), host
    /// domains the host's.
    fn snapshot(&self, embodied: Embodied) -> impl Iterator<Item = DeviceSnapshot> + '_ {
        self.backend
            .devices()
            .iter()
            .zip(&self.states)
            .map(move |(info, s)| DeviceSnapshot {
                info: info.clone(),
                energy_source: s.ledger.source().kind(),
                up: s.up,
                power: s.power,
                power_limit: s.power_limit,
                utilization: s.utilization,
                counter_discrepancy: s.ledger.discrepancy().ratio(),
                totals: s.ledger.totals(),
                errors: s.errors,
                counter: s.counter,
                last_seen_unix: s.last_seen_unix,
                created_unix: s.created_unix,
                embodied: match info.kind {
                    DeviceKind::Gpu => embodied.gpu,
                    DeviceKind::HostDomain => embodied.host,
                }
                .map(|g| Grams(s.embodied_base.0 + g.0)),
            })
    }
}

impl LiveDevice {
    fn new(source: EnergySource, max_gap: Duration) -> LiveDevice {
        LiveDevice {
            ledger: Ledger::new(source, max_gap),
            errors: ErrorCounts::default(),
            up: true,
            power: None,
            power_limit: None,
            utilization: None,
            counter: None,
            last_seen_unix: 0.0,
            embodied_base: Grams(0.0),
            created_unix: None,
            created_pending: true,
        }
    }

    /// Accounts one reading; returns what it added.
    fn record(&mut self, now: Timestamp, reading: Reading, factors: Factors, uuid: &str) -> Step {
        if !self.up {
            info!(uuid, "Device readable again");
        }
        let outcome = self.ledger.observe(now.mono, &reading, factors);
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
        self.last_seen_unix = now.unix;
        // A rejected counter reading is not the base the ledger measures from: saving it would
        // make the first reading after a restart look like a reset.
        if let Some(uj) = reading.energy_uj.filter(|_| !outcome.implausible_energy) {
            self.counter = Some(CounterMark {
                uj,
                at_unix: now.unix,
                wraps_at_uj: self.ledger.source().wraps_at_uj(),
            });
        }
        self.power = outcome.power;
        self.power_limit = reading.power_limit;
        self.utilization = reading.utilization;
        outcome.step
    }

    fn fail(&mut self, err: &DeviceError, uuid: &str) {
        let kind = match err {
            DeviceError::Lost(_) => ErrorKind::DeviceLost,
            DeviceError::Transient(_) => ErrorKind::ReadError,
        };
        self.errors.add(kind, 1);
        if self.up {
            warn!(uuid, error = %err, "Device unreadable; its counters keep their values");
        }
        self.up = false;
        self.power = None;
        self.power_limit = None;
        self.utilization = None;
    }
}
