//! # gpu-carbon-exporter
//!
//! A Prometheus exporter of GPU power, exact cumulative energy and the CO2e of that energy.
//!
//! ## Layout
//! - [`cli`] raw flags → [`config`] validated settings (stage two of the CLI).
//! - [`backend`]: where readings come from — [`backend::nvml`] (NVIDIA GPUs, behind a narrow
//!   trait), [`backend::hwmon`] (AMD and Intel GPUs), [`backend::rapl`] (CPU package and DRAM),
//!   [`backend::host_estimate`] (what the host CPU and memory model needs where there is no
//!   RAPL), [`backend::powermetrics`] (Mac CPU, GPU and Neural Engine, from a supervised
//!   `powermetrics` child) and [`backend::simulated`] (`--demo`).
//! - [`energy`]: the pure accounting core — counter differences with reset handling, trapezoid
//!   integration, sums of self-timed power averages, plausibility, the host CPU and memory
//!   model ([`energy::host`]), per-GPU ledgers of energy, idle energy and CO2e; each reading
//!   adds one [`energy::Step`], which the attributor splits.
//! - [`attribution`]: who used the energy — each GPU's energy and CO2e split among the
//!   workloads on it (user, pod, Slurm job), identities from `/proc`, the container runtime
//!   and the kubelet.
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
//! - [`state`]: the persistent ledger (`--state.file`): each sample committed to its journal
//!   before it is served.
//! - [`logging`], [`shutdown`], [`units`], [`duration`], [`reply`]: small shared pieces.
//!
//! Imports only point down this list's layers (from the shared pieces up to `config`); the
//! floors are in `tests/e2e/layering.rs`, which fails on an import that runs back up.
//!
//! [`check`] (`gpu-carbon-exporter check`) sits above them all: it opens the same sources,
//! samples each device for a while and reports what works, then exits.
//!
//! [`Exporter::start`] wires these together in named steps (`startup/`), and one owner stops
//! every background worker in a documented order; `main` only parses, logs and exits.

#![warn(missing_docs)]

pub mod attribution;
pub mod backend;
pub mod carbon;
pub mod check;
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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use clock::{Clock, SystemClock};
use config::Config;
pub use startup::StartError;
use startup::Workers;

/// A started exporter: listeners bound, not yet serving; sampling in the background, or about to
/// start once a live intensity provider's first fetch has ended.
pub struct Exporter {
    listeners: Vec<TcpListener>,
    app: Arc<http::App>,
    guard: Arc<webconfig::Guard>,
    workers: Workers,
    max_connections: usize,
}

impl Exporter {
    /// Starts the exporter in the steps of [`startup`](crate::startup): sources, intensity,
    /// sampler, ledger restore, server, listeners, then (once bound) the ledger's writer and
    /// sampling.
    pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Exporter, StartError> {
        let opened = startup::open_sources(config, &clock).await?;
        let intensity = startup::start_intensity(config, &clock)?;
        let (mut sampler, pods) = startup::build_sampler(
            config,
            opened.backends,
            opened.collectors.clone(),
            intensity.provider,
        );
        let ledger = startup::restore_ledger(&mut sampler, config, opened.loaded, clock.now());
        startup::log_inventory(&sampler, config);
        let (publish, snapshots) = watch::channel(None);
        let server = startup::build_server(
            config,
            &sampler,
            &opened.collectors,
            snapshots,
            ledger.as_ref(),
        )?;
        let listeners = startup::bind(config).await?;
        // Start-up has succeeded: only now may files be moved aside or written.
        let (writer, publisher) = startup::start_ledger(ledger, clock.now().unix as u64, publish)?;
        let sampling =
            startup::start_sampling(sampler, clock, config, intensity.first_fetch, publisher)?;
        Ok(Exporter {
            listeners,
            app: server.app,
            guard: server.guard,
            workers: Workers {
                sampling,
                writer,
                pods,
                reloader: server.reloader,
                reloading: None,
            },
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

    /// Serves until `shutdown` completes; then stops the background workers in their order
    /// (see `startup::workers`) and drains the listeners.
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
        let mut workers = self.workers;
        workers.serve();
        // At the signal the workers stop first (sampler, final ledger flush, refreshers) while
        // scrapes are still answered from the last snapshot; then the listeners drain.
        let stopped = async move {
            shutdown.await;
            workers.stop().await;
        };
        http::serve(
            self.listeners,
            self.app,
            self.guard,
            self.max_connections,
            stopped,
        )
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
