//! # gpu-carbon-exporter
//!
//! A Prometheus exporter of GPU power, exact cumulative energy and the CO2e of that energy.
//!
//! ## Layout
//! - [`cli`] raw flags → [`config`] validated settings (stage two of the CLI).
//! - [`backend`]: where readings come from — [`backend::nvml`] (real GPUs, behind a narrow
//!   trait) and [`backend::simulated`] (`--demo`).
//! - [`energy`]: the pure accounting core — counter differences with reset handling, trapezoid
//!   integration, plausibility, per-GPU ledgers of energy, idle energy and CO2e.
//! - [`carbon`]: carbon intensity providers and the built-in zone table.
//! - [`sampler`]: the background thread that reads every GPU each tick and publishes an
//!   immutable [`snapshot::Snapshot`]; [`clock`] makes its time injectable.
//! - [`collector`] + [`exposition`]: render the latest snapshot for a scrape.
//! - [`http`]: the server (landing page, telemetry path, health, readiness).
//! - [`logging`], [`shutdown`], [`units`], [`duration`]: small shared pieces.
//!
//! [`Exporter::start`] wires these together; `main` only parses, logs and exits.

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
pub mod units;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use backend::nvml::{InitError, NvmlBackend, NvmlLibrary};
use backend::simulated::SimulatedBackend;
use backend::Backend;
use clock::{Clock, SystemClock};
use config::{BackendConfig, Config};
use sampler::{Sampler, SamplerHandle};

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
    sampler: SamplerHandle,
}

impl Exporter {
    /// Opens the backend, logs the inventory, starts the sampler and binds the listeners.
    pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Exporter, StartError> {
        let backend_config = config.backend.clone();
        let backend_clock = Arc::clone(&clock);
        let backend =
            tokio::task::spawn_blocking(move || open_backend(&backend_config, backend_clock))
                .await
                .map_err(|e| StartError::Internal(format!("backend start-up panicked: {e}")))??;
        log_inventory(backend.as_ref(), config);

        let carbon = &config.carbon;
        let intensity = carbon.intensity.0.clone();
        let max_gap = (config.sample_interval * 5).max(Duration::from_secs(5));
        let sampler = Sampler::new(
            backend,
            Box::new(carbon.intensity.clone()),
            carbon.pue,
            max_gap,
        );
        let setup = http::landing::Setup {
            backend: sampler.backend().name().to_string(),
            gpus: sampler.backend().devices().len(),
            carbon: format!(
                "{}: {} g/kWh ({})",
                intensity.zone, intensity.value.0, intensity.source
            ),
            pue: carbon.pue,
        };
        let (publish, snapshots) = watch::channel(None);
        let exposition = exposition::Exposition::new(snapshots.clone(), true)
            .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))?;
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
        let sampler = sampler::spawn(sampler, clock, config.sample_interval, publish)
            .map_err(|e| StartError::Internal(format!("cannot start the sampler thread: {e}")))?;
        Ok(Exporter {
            listeners,
            app,
            sampler,
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
            let url = format!("http://{host}:{}{}", addr.port(), self.app.telemetry_path());
            info!(address = %addr, metrics = %url, "Listening on");
        }
        http::serve(self.listeners, self.app, shutdown).await;
        let sampler = self.sampler;
        // Joining waits for the current tick, which may block on NVML: keep it off the workers.
        let _ = tokio::task::spawn_blocking(move || sampler.stop()).await;
        info!("Stopped");
    }
}

/// Starts the exporter with the system clock and serves until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let exporter = Exporter::start(&config, Arc::new(SystemClock::new())).await?;
    exporter.serve(shutdown).await;
    Ok(())
}

fn open_backend(
    config: &BackendConfig,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Backend>, StartError> {
    match config {
        BackendConfig::Simulated { gpus } => Ok(Box::new(SimulatedBackend::new(*gpus, clock))),
        BackendConfig::Nvml { library } => {
            let nvml = NvmlLibrary::open(library.as_deref())?;
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
    }
}

fn log_inventory(backend: &dyn Backend, config: &Config) {
    info!(backend = backend.name(), gpus = backend.devices().len(), interval = ?config.sample_interval, "Sampling GPUs");
    let mut integrated = false;
    for d in backend.devices() {
        let source = if d.caps.energy_counter {
            "counter"
        } else {
            "integrated"
        };
        integrated |= !d.caps.energy_counter;
        info!(
            gpu = d.index,
            uuid = %d.uuid,
            name = %d.name,
            energy_source = source,
            power = d.caps.power,
            utilization = d.caps.utilization,
            power_limit = d.caps.power_limit,
            "GPU found"
        );
    }
    if integrated && config.sample_interval > Duration::from_secs(1) {
        warn!(interval = ?config.sample_interval, "GPUs without an energy counter are integrated from power readings, which average at most 1 s: sampling slower than 1s misses load between samples");
    }
    let carbon = &config.carbon;
    let i = &carbon.intensity.0;
    info!(zone = %i.zone, source = %i.source, grams_per_kwh = i.value.0, pue = carbon.pue, "Carbon intensity");
    if carbon.is_default {
        warn!(grams_per_kwh = i.value.0, "No --carbon.zone or --carbon.intensity given: using the world average; CO2e figures are labelled zone=\"WORLD\"");
    }
}
