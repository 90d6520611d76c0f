//! # gpu-carbon-exporter
//!
//! A Prometheus exporter of GPU power, exact cumulative energy and the CO2e of that energy.
//!
//! ## Layout
//! - [`cli`] raw flags → [`config`] validated settings (stage two of the CLI).
//! - [`backend`]: where readings come from — [`backend::nvml`] (NVIDIA GPUs, behind a narrow
//!   trait), [`backend::hwmon`] (AMD and Intel GPUs), [`backend::rapl`] (CPU package and DRAM)
//!   and [`backend::simulated`] (`--demo`).
//! - [`energy`]: the pure accounting core — counter differences with reset handling, trapezoid
//!   integration, plausibility, per-GPU ledgers of energy, idle energy and CO2e.
//! - [`attribution`]: who used the energy — each GPU's energy and CO2e split among the
//!   workloads on it (user, pod, Slurm job), identities from `/proc` and the kubelet.
//! - [`carbon`]: carbon intensity providers (static, zone table, schedule file, Electricity
//!   Maps, WattTime, GB Carbon Intensity API, refreshed in the background) and embodied
//!   emissions.
//! - [`sampler`]: the background thread that reads every GPU each tick and publishes an
//!   immutable [`snapshot::Snapshot`]; [`clock`] makes its time injectable.
//! - [`collector`] + [`exposition`]: render the latest snapshot for a scrape.
//! - [`http`]: the server (landing page, telemetry path, health, readiness).
//! - [`logging`], [`shutdown`], [`units`], [`duration`]: small shared pieces.
//!
//! [`Exporter::start`] wires these together; `main` only parses, logs and exits.

pub mod attribution;
pub mod backend;
pub mod carbon;
pub mod cli;
pub mod clock;
pub mod collector;
pub mod config;
pub mod duration;
pub mod energy;
pub mod exposition;
pub mod http;
pub mod logging;
pub mod sampler;
pub mod shutdown;
pub mod snapshot;
pub mod state;
pub mod units;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use backend::hwmon::HwmonBackend;
use backend::nvml::{InitError, NvmlBackend, NvmlLibrary};
use backend::rapl::RaplBackend;
use backend::simulated::SimulatedBackend;
use backend::{Backend, DeviceKind};
use clock::{Clock, SystemClock};
use config::{CarbonConfig, Config, NvidiaSource, ProviderConfig, Sources};
use energy::EnergySource;
use sampler::{Sampler, SamplerHandle};
use snapshot::CollectorStatus;
use state::store::Loaded;
use state::writer::{StateHealth, StateWriter};
use std::sync::atomic::Ordering;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// NVML could not be loaded or initialised.
    #[error("{0}. Is the NVIDIA driver installed and loaded? Set --nvml.library-path if NVML lives elsewhere, or run with --demo to try the exporter with simulated GPUs")]
    Nvml(#[from] InitError),
    /// NVML started but could not list GPUs.
    #[error("NVML from {library} could not list GPUs: {source}")]
    Discover {
        /// The library in use.
        library: String,
        /// NVML's error.
        source: nvml_wrapper::error::NvmlError,
    },
    /// NVML found no GPU.
    #[error("NVML from {library} found no GPU to monitor (in a container, is the NVIDIA runtime exposing the devices?)")]
    NoGpus {
        /// The library in use.
        library: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} (--web.listen-address): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else at start-up (thread creation, registry set-up).
    #[error("{0}")]
    Internal(String),
}

/// A started exporter: sampling in the background, listeners bound, not yet serving.
pub struct Exporter {
    listeners: Vec<TcpListener>,
    app: Arc<http::App>,
    guard: Arc<http::Guard>,
    reloader: Option<http::reload::Reloader>,
    sampler: SamplerHandle,
    writer: Option<StateWriter>,
    max_connections: usize,
}

impl Exporter {
    /// Opens the collectors, logs the inventory, starts the sampler and binds the listeners.
    pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Exporter, StartError> {
        let sources = config.sources.clone();
        let backend_clock = Arc::clone(&clock);
        let state_path = config.state.as_ref().map(|s| s.path.clone());
        let now_secs = clock.now().unix as u64;
        let ((backends, collectors), loaded) = tokio::task::spawn_blocking(move || {
            let opened = open_collectors(&sources, backend_clock)?;
            Ok::<_, StartError>((opened, state_path.map(|p| state::store::load(&p, now_secs))))
        })
        .await
        .map_err(|e| StartError::Internal(format!("collector start-up panicked: {e}")))??;

        let carbon = &config.carbon;
        let intensity = carbon::start::start(carbon, Arc::clone(&clock)).map_err(|e| {
            StartError::Internal(format!("cannot start the carbon intensity provider: {e}"))
        })?;
        if let Some(first) = intensity.first_fetch {
            // Begin on the live value rather than the fallback when the API answers in time
            // (WattTime may need a login and a data call).
            let wait = carbon.http_timeout * 2 + Duration::from_secs(1);
            let _ = tokio::task::spawn_blocking(move || first.recv_timeout(wait)).await;
        }
        let settings = sampler::Settings {
            pue: carbon.pue,
            max_gap: (config.sample_interval * 5).max(Duration::from_secs(5)),
            estimate: config.sources.estimate,
            embodied: carbon.embodied,
        };
        let sampler = Sampler::new(backends, intensity.provider, settings, collectors.clone());
        let mut sampler = sampler;
        if let Some(a) = &config.attribution {
            sampler.attribute(attributor(a, &config.sources, &sampler));
        }
        let health = config
            .state
            .as_ref()
            .map(|_| Arc::new(StateHealth::default()));
        let persist = match (&config.state, &health, loaded) {
            (Some(cfg), Some(h), Some(loaded)) => {
                restore(&mut sampler, cfg, h, loaded, clock.now())
            }
            _ => false,
        };
        log_inventory(&sampler, config);
        let setup = http::landing::Setup {
            backend: collectors
                .iter()
                .map(|c| {
                    if c.up {
                        c.name.to_string()
                    } else {
                        format!("{} (down)", c.name)
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            gpus: sampler
                .inventory()
                .filter(|(_, d, _)| d.kind == DeviceKind::Gpu)
                .count(),
            carbon: describe_carbon(carbon),
            pue: carbon.pue,
        };
        let (publish, snapshots) = watch::channel(None);
        let writer_snapshots = snapshots.clone();
        let exposition = exposition::Exposition::new(snapshots.clone(), true, health.clone())
            .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))?;
        let (guard, reloader) = web_security(config, &exposition)?;
        let app = Arc::new(http::App::new(
            exposition,
            snapshots,
            config.telemetry_path.clone(),
            config.max_requests,
            &setup,
        ));
        let mut listeners = Vec::new();
        for &addr in &config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            listeners.push(listener);
        }
        let writer = match (&config.state, health) {
            (Some(cfg), Some(h)) if persist => Some(
                state::writer::spawn(cfg.path.clone(), cfg.flush_interval, writer_snapshots, h)
                    .map_err(|e| {
                        StartError::Internal(format!("cannot start the state writer: {e}"))
                    })?,
            ),
            _ => None,
        };
        let sampler = sampler::spawn(sampler, clock, config.sample_interval, publish)
            .map_err(|e| StartError::Internal(format!("cannot start the sampler thread: {e}")))?;
        Ok(Exporter {
            listeners,
            app,
            guard,
            reloader,
            sampler,
            writer,
            max_connections: config.max_connections,
        })
    }

    /// The addresses actually bound (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, drains, then stops the sampler.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        for addr in self.local_addrs() {
            let host = if addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                addr.ip().to_string()
            };
            let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            let tls = self.guard.current().tls.is_some();
            let scheme = if tls { "https" } else { "http" };
            let url = format!(
                "{scheme}://{host}:{}{}",
                addr.port(),
                self.app.telemetry_path()
            );
            info!(address = %addr, metrics = %url, tls, "Listening on");
        }
        let reloading = self.reloader.map(|r| tokio::spawn(r.run()));
        http::serve(
            self.listeners,
            self.app,
            self.guard,
            self.max_connections,
            shutdown,
        )
        .await;
        if let Some(task) = reloading {
            task.abort();
        }
        let (sampler, writer) = (self.sampler, self.writer);
        // Joining waits for the current tick, which may block on NVML, and the last state write:
        // keep both off the workers. The writer stops after the sampler so the last tick is saved.
        let _ = tokio::task::spawn_blocking(move || {
            sampler.stop();
            if let Some(w) = writer {
                w.stop();
            }
        })
        .await;
        info!("Stopped");
    }
}

/// Starts the exporter with the system clock and serves until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let exporter = Exporter::start(&config, Arc::new(SystemClock::new())).await?;
    exporter.serve(shutdown).await;
    Ok(())
}

/// The attributor for `config`: `--demo` GPUs get made-up identities and pods; real ones are
/// resolved from procfs and, where the socket is set, the kubelet's pod-resources API.
fn attributor(
    config: &config::AttributionConfig,
    sources: &Sources,
    sampler: &Sampler,
) -> attribution::Attributor {
    use attribution::identity::{ProcResolver, Resolver};
    use backend::simulated::demo;
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
    let pods = config
        .pod_resources
        .as_ref()
        .map(|socket| attribution::kubernetes::spawn(socket.clone(), config.kubernetes_refresh));
    info!(
        labels = ?config.settings.labels.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        retention = ?config.settings.retention,
        max_series = config.settings.max_series,
        procfs = %config.procfs.display(),
        pod_resources = ?config.pod_resources,
        "Attributing GPU energy to workloads"
    );
    attribution::Attributor::new(&config.settings, resolver, pods)
}

/// Applies what loading the state file found; returns whether to keep saving it.
fn restore(
    sampler: &mut Sampler,
    cfg: &config::StateConfig,
    health: &StateHealth,
    loaded: Loaded,
    now: clock::Timestamp,
) -> bool {
    let path = cfg.path.display();
    match loaded {
        Loaded::Missing => info!(path = %path, "No state file yet; totals start from zero"),
        Loaded::Restored(file) => {
            let n = sampler.restore(&file, now, cfg.retention);
            health.restored_devices.store(n as u64, Ordering::Relaxed);
            info!(path = %path, devices = n, saved_at = file.written_at_unix, "Restored totals from the state file");
        }
        Loaded::SetAside { moved_to, reason } => {
            health.set_aside.store(1, Ordering::Relaxed);
            warn!(path = %path, moved_to = %moved_to.display(), reason = %reason, "State file set aside; totals start from zero");
        }
        Loaded::Unusable { reason } => {
            error!(path = %path, reason = %reason, "State file unusable and could not be moved aside; NOT saving totals so it is not overwritten");
            return false;
        }
    }
    true
}

/// The request guard for `--web.config.file` (open HTTP without one), its reload task, and
/// its reload metrics.
fn web_security(
    config: &Config,
    exposition: &exposition::Exposition,
) -> Result<(Arc<http::Guard>, Option<http::reload::Reloader>), StartError> {
    let Some(web) = &config.web else {
        return Ok((
            Arc::new(http::Guard::new(Arc::new(http::Security::open()))),
            None,
        ));
    };
    info!(file = %web.path.display(), settings = web.security.summary(), "Web configuration loaded");
    let status = Arc::new(http::reload::ReloadStatus::loaded_now());
    collector::web::WebConfigCollector::new(Arc::clone(&status))
        .and_then(|c| exposition.register(Box::new(c)))
        .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))?;
    let guard = Arc::new(http::Guard::new(Arc::clone(&web.security)));
    let reloader = http::reload::Reloader::new(
        web.path.clone(),
        Arc::clone(&guard),
        status,
        web.watched.clone(),
    )
    .map_err(|e| StartError::Internal(format!("cannot handle SIGHUP: {e}")))?;
    Ok((guard, Some(reloader)))
}

type Opened = (Vec<Box<dyn Backend>>, Vec<CollectorStatus>);

/// Opens every enabled collector. NVML failing is fatal (a GPU exporter that silently exports
/// nothing is worse than one that refuses to start); hwmon and RAPL degrade to
/// `gpu_carbon_exporter_collector_up 0` with a warning.
fn open_collectors(sources: &Sources, clock: Arc<dyn Clock>) -> Result<Opened, StartError> {
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    let mut collectors = Vec::new();
    match &sources.nvidia {
        Some(NvidiaSource::Simulated { gpus }) => {
            backends.push(Box::new(SimulatedBackend::new(*gpus, clock)));
            collectors.push(CollectorStatus {
                name: "simulated",
                up: true,
            });
        }
        Some(NvidiaSource::Nvml { library }) => {
            backends.push(open_nvml(library.as_deref())?);
            collectors.push(CollectorStatus {
                name: "nvml",
                up: true,
            });
        }
        None => {}
    }
    if sources.hwmon {
        let hwmon = HwmonBackend::discover(&sources.sysfs);
        if hwmon.devices().is_empty() {
            warn!(sysfs = %sources.sysfs.display(), "hwmon collector found no AMD or Intel GPU");
        }
        backends.push(Box::new(hwmon));
        collectors.push(CollectorStatus {
            name: "hwmon",
            up: true,
        });
    }
    if sources.rapl {
        match RaplBackend::discover(&sources.sysfs) {
            Ok(rapl) => {
                backends.push(Box::new(rapl));
                collectors.push(CollectorStatus {
                    name: "rapl",
                    up: true,
                });
            }
            Err(err) => {
                warn!(error = %err, "RAPL collector disabled");
                collectors.push(CollectorStatus {
                    name: "rapl",
                    up: false,
                });
            }
        }
    }
    Ok((backends, collectors))
}

fn open_nvml(library: Option<&std::path::Path>) -> Result<Box<dyn Backend>, StartError> {
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

fn log_inventory(sampler: &Sampler, config: &Config) {
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
fn describe_carbon(carbon: &CarbonConfig) -> String {
    let i = carbon.static_value.intensity();
    let value = format!("{} {} g/kWh ({})", i.zone, i.value.0, i.source);
    let live = match &carbon.provider {
        ProviderConfig::Static => return format!("static: {value}"),
        ProviderConfig::ElectricityMaps(s) => format!("Electricity Maps, zone {}", s.zone),
        ProviderConfig::WattTime(s) => {
            format!("WattTime {}, region {}", s.signal_type.as_str(), s.region)
        }
        ProviderConfig::UkGrid { target, .. } => format!("GB Carbon Intensity API, {target:?}"),
        ProviderConfig::Schedule(s) => format!("schedule {}", s.name),
    };
    format!("{live}; fallback {value}")
}

fn log_carbon(carbon: &CarbonConfig) {
    let i = carbon.static_value.intensity();
    let provider = carbon.provider.name();
    match &carbon.provider {
        ProviderConfig::Static => {
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
