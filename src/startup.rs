//! Start-up steps of [`crate::Exporter::start`]: opening the collectors (NVML failing is fatal,
//! the others degrade), restoring the ledger, the attributor and the web security settings,
//! and the start-up inventory in the log.

pub(crate) mod deferred;

use crate::backend::hwmon::HwmonBackend;
use crate::backend::nvml::{NvmlBackend, NvmlLibrary};
use crate::backend::rapl::RaplBackend;
use crate::backend::simulated::SimulatedBackend;
use crate::backend::{Backend, DeviceKind};
use crate::carbon::ProviderSettings;
use crate::clock::Clock;
use crate::config::{Config, NvidiaSource, Sources};
use crate::energy::EnergySource;
use crate::sampler::Sampler;
use crate::snapshot::CollectorStatus;
use crate::snapshot::Snapshot;
use crate::state::journal::{self, Journal};
use crate::state::store::{self, BadFile, Loaded};
use crate::state::writer::{self, Inbox, StateHealth, StateWriter};
use crate::state::StateFile;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::{attribution, carbon, clock, config, exposition, webconfig, StartError};

/// The attributor for `config`: `--demo` GPUs get made-up identities and pods; real ones are
/// resolved from procfs and, where the socket is set, the kubelet's pod-resources API.
pub(crate) fn attributor(
    config: &config::AttributionConfig,
    sources: &Sources,
    sampler: &Sampler,
) -> attribution::Attributor {
    use attribution::demo;
    use attribution::identity::{ProcResolver, Resolver};
    if let Some(NvidiaSource::Simulated { .. }) = &sources.nvidia {
        let gpus: Vec<_> = sampler
            .inventory()
            .filter(|(c, _, _)| *c == "simulated")
            .map(|(_, d, _)| d.clone())
            .collect();
        info!("Attributing simulated GPUs' energy to made-up demo workloads");
        return demo::attributor(&config.settings, &gpus);
    }
    let resolver: Box<dyn Resolver> = Box::new(ProcResolver::new(
        config.procfs.clone(),
        config.rootfs.clone(),
    ));
    let gpus = sampler
        .inventory()
        .map(|(_, d, _)| (d.index, d.uuid.clone()))
        .collect();
    let pods = Some(attribution::kubernetes::spawn(
        attribution::kubernetes::Sources {
            pod_resources: config.pod_resources.clone(),
            cri: config.cri.clone(),
            rootfs: config.rootfs.clone(),
            refresh: config.kubernetes_refresh,
            gpus,
        },
    ));
    info!(
        labels = ?config.settings.labels.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        retention = ?config.settings.retention,
        max_series = config.settings.max_series,
        procfs = %config.procfs.display(),
        pod_resources = ?config.pod_resources,
        cri = ?config.cri,
        "Attributing GPU energy to workloads"
    );
    attribution::Attributor::new(&config.settings, resolver, pods)
}

/// What the ledger held at start, and the files to set aside once start-up has succeeded.
pub(crate) struct Restored {
    /// The restored state (empty on a first start).
    pub state: StateFile,
    /// Corrupt or unreadable files, not used.
    pub bad: Vec<BadFile>,
}

/// Applies what loading the state file found to the sampler.
pub(crate) fn restore(
    sampler: &mut Sampler,
    cfg: &config::StateConfig,
    health: &StateHealth,
    loaded: Loaded,
    now: clock::Timestamp,
) -> Restored {
    let path = cfg.path.display();
    for bad in &loaded.bad {
        warn!(path = %bad.path.display(), reason = %bad.reason, "Ledger file unusable; it is set aside once the exporter has started");
    }
    if loaded.replayed.skipped > 0 {
        warn!(path = %path, skipped = loaded.replayed.skipped, "Journal lines skipped: torn by a crash during a write (never served) or invalid");
    }
    let state = match loaded.state {
        None => {
            info!(path = %path, "No saved ledger; totals start from zero");
            StateFile::empty()
        }
        Some(file) => {
            let n = sampler.restore(&file, now, cfg.retention);
            health.restored_devices.store(n as u64, Ordering::Relaxed);
            info!(path = %path, devices = n, saved_at = file.written_at_unix, journal_records = loaded.replayed.applied, "Restored totals from the ledger");
            file
        }
    };
    Restored {
        state,
        bad: loaded.bad,
    }
}

/// Where the sampler's snapshots go: straight to the scrapes, or through the state writer.
pub(crate) enum Publisher {
    /// No ledger: each snapshot is served as sampled.
    Direct(watch::Sender<Option<Arc<Snapshot>>>),
    /// Each snapshot is committed to the ledger before it is served.
    Committed(Inbox),
}

impl Publisher {
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        match self {
            Publisher::Direct(tx) => {
                tx.send_replace(Some(Arc::new(snapshot)));
            }
            Publisher::Committed(inbox) => inbox.put(snapshot),
        }
    }
}

/// Starts persistence, once the listeners are bound: sets bad files aside, opens and locks the
/// journal and starts the state writer. A bad file that cannot be moved turns persistence off
/// (it would be overwritten otherwise); a journal another process holds is fatal.
pub(crate) fn persist(
    cfg: &config::StateConfig,
    health: &Arc<StateHealth>,
    restored: Restored,
    now_unix: u64,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
) -> Result<(Option<StateWriter>, Publisher), StartError> {
    for bad in &restored.bad {
        match store::set_aside(bad, now_unix) {
            Ok(moved_to) => {
                health.set_aside.fetch_add(1, Ordering::Relaxed);
                warn!(path = %bad.path.display(), moved_to = %moved_to.display(), reason = %bad.reason, "Ledger file set aside");
            }
            Err(e) => {
                error!(path = %bad.path.display(), reason = %bad.reason, error = %e, "Ledger file unusable and could not be moved aside; NOT saving totals so it is not overwritten");
                return Ok((None, Publisher::Direct(publish)));
            }
        }
    }
    let journal = match Journal::open(&journal::path_for(&cfg.path)) {
        Ok(j) => Some(j),
        Err(e @ journal::OpenError::InUse { .. }) => return Err(StartError::State(e)),
        Err(e) => {
            warn!(error = %e, "Cannot open the ledger journal yet; retrying at every sample");
            None
        }
    };
    let start = writer::Start {
        path: cfg.path.clone(),
        flush_interval: cfg.flush_interval,
        journal,
        restored: restored.state,
    };
    let (writer, inbox) = writer::spawn(start, Arc::clone(health), publish)
        .map_err(|e| StartError::Internal(format!("cannot start the state writer: {e}")))?;
    Ok((Some(writer), Publisher::Committed(inbox)))
}

/// The request guard for `--web.config.file` (open HTTP without one), its reload task, and
/// its reload metrics.
pub(crate) fn web_security(
    config: &Config,
    exposition: &exposition::Exposition,
) -> Result<(Arc<webconfig::Guard>, Option<webconfig::Reloader>), StartError> {
    let Some(web) = &config.web else {
        return Ok((
            Arc::new(webconfig::Guard::new(Arc::new(webconfig::Security::open()))),
            None,
        ));
    };
    info!(file = %web.path.display(), settings = web.security.summary(), "Web configuration loaded");
    let status = Arc::new(webconfig::ReloadStatus::loaded_now());
    let live = Arc::clone(&status);
    webconfig::ReloadMetrics::new(Arc::clone(&status))
        .and_then(|c| exposition.register_live(Box::new(c), move || live.fingerprint()))
        .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))?;
    let guard = Arc::new(webconfig::Guard::new(Arc::clone(&web.security)));
    let reloader = webconfig::Reloader::new(
        web.path.clone(),
        Arc::clone(&guard),
        status,
        web.watched.clone(),
    )
    .map_err(|e| StartError::Internal(format!("cannot handle SIGHUP: {e}")))?;
    Ok((guard, Some(reloader)))
}

/// Registers the settings that alerts and panels judge the metrics against (the sample
/// interval), as constant gauges.
pub(crate) fn register_settings(
    config: &Config,
    exposition: &exposition::Exposition,
) -> Result<(), StartError> {
    exposition
        .register_sample_interval(config.sample_interval)
        .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))
}

pub(crate) type Opened = (Vec<Box<dyn Backend>>, Vec<CollectorStatus>);

/// Opens every enabled collector. NVML failing is fatal (a GPU exporter that silently exports
/// nothing is worse than one that refuses to start); hwmon and RAPL degrade to
/// `gpu_carbon_exporter_collector_up 0` with a warning.
pub(crate) fn open_collectors(
    sources: &Sources,
    clock: Arc<dyn Clock>,
) -> Result<Opened, StartError> {
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    let mut collectors = Vec::new();
    match &sources.nvidia {
        Some(NvidiaSource::Simulated { gpus }) => {
            backends.push(Box::new(SimulatedBackend::new(*gpus, clock)));
            collectors.push(CollectorStatus::new("simulated", true));
        }
        Some(NvidiaSource::Nvml { library }) => {
            backends.push(open_nvml(library.as_deref())?);
            collectors.push(CollectorStatus::new("nvml", true));
        }
        None => {}
    }
    if sources.hwmon {
        // Numbered after NVML's GPUs so that no two GPUs share a `gpu` label.
        let first = backends.iter().map(|b| b.devices().len()).sum::<usize>();
        let hwmon = HwmonBackend::discover(&sources.sysfs, first as u32);
        if hwmon.devices().is_empty() {
            warn!(sysfs = %sources.sysfs.display(), "hwmon collector found no AMD or Intel GPU");
        }
        backends.push(Box::new(hwmon));
        collectors.push(CollectorStatus::new("hwmon", true));
    }
    if sources.rapl {
        match RaplBackend::discover(&sources.sysfs) {
            Ok(rapl) => {
                let mut status = CollectorStatus::new("rapl", true);
                status.unreadable = rapl.unreadable().iter().map(|u| u.domain.clone()).collect();
                backends.push(Box::new(rapl));
                collectors.push(status);
            }
            Err(err) => {
                warn!(error = %err, "RAPL collector disabled");
                collectors.push(CollectorStatus::new("rapl", false));
            }
        }
    }
    Ok((backends, collectors))
}

pub(crate) fn open_nvml(library: Option<&std::path::Path>) -> Result<Box<dyn Backend>, StartError> {
    let nvml = NvmlLibrary::open(library)?;
    let library = nvml.library().to_string();
    let driver = nvml
        .driver_version()
        .unwrap_or_else(|e| format!("unknown ({e})"));
    info!(library = %library, driver = %driver, "NVML initialised");
    let backend = NvmlBackend::discover(nvml).map_err(|source| StartError::Discover {
        library: library.clone(),
        source,
    })?;
    if backend.devices().is_empty() {
        return Err(StartError::NoGpus { library });
    }
    Ok(Box::new(backend))
}

pub(crate) fn log_inventory(sampler: &Sampler, config: &Config) {
    for warning in &config.warnings {
        warn!(flag = warning.flag, "{warning}");
    }
    info!(interval = ?config.sample_interval, "Sampling");
    let mut integrated = false;
    for (collector, d, source) in sampler.inventory() {
        integrated |= matches!(
            source,
            EnergySource::Integrated | EnergySource::Estimated(_)
        );
        match d.kind {
            DeviceKind::HostDomain => {
                info!(collector, domain = %d.name, zone = %d.uuid, energy_source = source.as_str(), "Host energy domain found")
            }
            DeviceKind::Gpu => info!(
                collector,
                gpu = d.index,
                uuid = %d.uuid,
                name = %d.name,
                energy_source = source.as_str(),
                power = d.caps.power,
                utilization = d.caps.utilization,
                power_limit = d.caps.power_limit,
                "GPU found"
            ),
        }
        if let EnergySource::Estimated(m) = source {
            warn!(uuid = %d.uuid, idle_watts = m.idle.0, rated_watts = m.rated.0, "Power is ESTIMATED from utilization (idle + (rated - idle) x utilization); series are labelled energy_source=\"estimated\"");
        }
        if source == EnergySource::Unavailable {
            warn!(uuid = %d.uuid, name = %d.name, "No energy counter, power reading or known power model: this GPU's energy stays 0; set --estimate.rated-watts to estimate it");
        }
    }
    if integrated && config.sample_interval > Duration::from_secs(1) {
        warn!(interval = ?config.sample_interval, "GPUs without an energy counter are integrated from power readings, which average at most 1 s: sampling slower than 1s misses load between samples");
    }
    log_carbon(&config.carbon);
}

/// One line for the landing page: the provider, and the static value or fallback.
pub(crate) fn describe_carbon(carbon: &carbon::Settings) -> String {
    let i = carbon.static_value.intensity();
    let value = format!("{} {} g/kWh ({})", i.zone, i.value.0, i.source);
    let live = match &carbon.provider {
        ProviderSettings::Static => return format!("static: {value}"),
        ProviderSettings::ElectricityMaps(s) => format!("Electricity Maps, zone {}", s.zone),
        ProviderSettings::WattTime(s) => {
            format!("WattTime {}, region {}", s.signal_type.as_str(), s.region)
        }
        ProviderSettings::UkGrid { target, .. } => format!("GB Carbon Intensity API, {target:?}"),
        ProviderSettings::Schedule(s) => format!("schedule {}", s.name),
    };
    format!("{live}; fallback {value}")
}

pub(crate) fn log_carbon(carbon: &carbon::Settings) {
    let credentials_to = match &carbon.provider {
        ProviderSettings::ElectricityMaps(s) => Some(&s.url),
        ProviderSettings::WattTime(s) => Some(&s.url),
        _ => None,
    };
    if let Some(url) = credentials_to.filter(|u| carbon::http::exposes_credentials(u)) {
        warn!(provider = carbon.provider.name(), url = %url, "Credentials for the intensity provider will be sent UNENCRYPTED over plain http:// to a host that is not this machine; use https:// (or a proxy on localhost)");
    }
    let i = carbon.static_value.intensity();
    let provider = carbon.provider.name();
    match &carbon.provider {
        ProviderSettings::Static => {
            info!(provider, zone = %i.zone, source = %i.source, grams_per_kwh = i.value.0, signal = i.signal.as_str(), scope = i.scope.as_str(), pue = carbon.pue, "Carbon intensity")
        }
        _ => {
            info!(provider, setup = %describe_carbon(carbon), max_age = ?carbon.max_age, refresh = ?carbon.refresh, pue = carbon.pue, "Carbon intensity")
        }
    }
    if carbon.is_default {
        warn!(grams_per_kwh = i.value.0, "No --carbon.zone, --carbon.fallback-zone or --carbon.intensity given: the static value is the world average, labelled zone=\"WORLD\"");
    }
    match carbon.embodied {
        Some(a) => {
            info!(kg_per_gpu = a.kg_per_gpu, lifetime = ?a.lifetime, "Embodied emissions amortised per GPU")
        }
        None => {
            debug!("Embodied emissions off (set --embodied.kg-per-gpu to amortise a GPU's manufacturing footprint)")
        }
    }
}
