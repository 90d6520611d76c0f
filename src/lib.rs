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
//! - [`render`] + [`exposition`]: turn the latest snapshot into metric families, and encode
//!   them (text or OpenMetrics, gzip) once a sample for every scrape.
//! - [`http`]: the server (connections, landing page, telemetry path, health, readiness).
//! - [`webconfig`]: `--web.config.file` (the exporter-toolkit's TLS, basic auth, headers and
//!   rate limit), its reloads, which never lower protection, and their metrics.
//! - [`state`]: the persistent ledger (`--state.file`).
//! - [`logging`], [`shutdown`], [`units`], [`duration`], [`reply`]: small shared pieces.
//!
//! [`Exporter::start`] wires these together (its steps are in `startup.rs`); `main` only
//! parses, logs and exits.

#![warn(missing_docs)]

pub mod attribution;
pub mod backend;
pub mod carbon;
pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod energy;
pub mod exposition;
pub mod http;
pub mod logging;
pub mod render;
pub mod reply;
pub mod sampler;
pub mod shutdown;
pub mod snapshot;
mod startup;
pub mod state;
pub mod units;
pub mod webconfig;

use startup::{
    attributor, describe_carbon, log_inventory, open_collectors, persist, register_settings,
    restore, web_security, Publisher,
};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use backend::nvml::InitError;
use backend::DeviceKind;
use clock::{Clock, SystemClock};
use config::Config;
use sampler::Sampler;
use startup::deferred::Sampling;
use state::writer::{StateHealth, StateWriter};

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
    /// The ledger's journal could not be taken (another exporter holds it).
    #[error("--state.file: {0}")]
    State(#[from] state::journal::OpenError),
    /// Anything else at start-up (thread creation, registry set-up).
    #[error("{0}")]
    Internal(String),
}

/// A started exporter: listeners bound, not yet serving; sampling in the background, or about to
/// start once a live intensity provider's first fetch has ended.
pub struct Exporter {
    listeners: Vec<TcpListener>,
    app: Arc<http::App>,
    guard: Arc<webconfig::Guard>,
    reloader: Option<webconfig::Reloader>,
    sampler: Sampling,
    writer: Option<StateWriter>,
    max_connections: usize,
}

impl Exporter {
    /// Opens the collectors, logs the inventory, starts the sampler and binds the listeners.
    pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Exporter, StartError> {
        let sources = config.sources.clone();
        let backend_clock = Arc::clone(&clock);
        let state_path = config.state.as_ref().map(|s| s.path.clone());
        let ((backends, collectors), loaded) = tokio::task::spawn_blocking(move || {
            let opened = open_collectors(&sources, backend_clock)?;
            Ok::<_, StartError>((opened, state_path.map(|p| state::store::load(&p))))
        })
        .await
        .map_err(|e| StartError::Internal(format!("collector start-up panicked: {e}")))??;

        let carbon = &config.carbon;
        let intensity = carbon::start::start(carbon, Arc::clone(&clock)).map_err(|e| {
            StartError::Internal(format!("cannot start the carbon intensity provider: {e}"))
        })?;
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
        let restored = match (&config.state, &health, loaded) {
            (Some(cfg), Some(h), Some(loaded)) => {
                Some((cfg, h, restore(&mut sampler, cfg, h, loaded, clock.now())))
            }
            _ => None,
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
        let exposition = exposition::Exposition::new(snapshots.clone(), true, health.clone())
            .map_err(|e| StartError::Internal(format!("metrics registry: {e}")))?;
        register_settings(config, &exposition)?;
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
        // Start-up has succeeded: only now may files be moved aside or written.
        let (writer, publisher) = match restored {
            Some((cfg, h, restored)) => {
                persist(cfg, h, restored, clock.now().unix as u64, publish)?
            }
            None => (None, Publisher::Direct(publish)),
        };
        // Begin on the live value rather than the fallback when the API answers in time
        // (WattTime may need a login and a data call), but serve /-/healthy meanwhile.
        let wait = carbon.http_timeout * 2 + Duration::from_secs(1);
        let interval = config.sample_interval;
        let sampler = Sampling::start(intensity.first_fetch, wait, move || {
            sampler::spawn(sampler, clock, interval, move |s| publisher.publish(s))
        })
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
