//! Start-up as a list of named steps, which `Exporter::start` (in lib.rs) takes in this order:
//!
//! 1. [`open_sources`]: every collector (NVML failing is fatal, the others degrade) and the
//!    ledger as it is on disk (read only);
//! 2. [`start_intensity`]: the carbon intensity provider (a live one refreshes on its thread);
//! 3. [`build_sampler`]: the sampler over the devices, with the attributor;
//! 4. [`restore_ledger`]: the saved totals into the sampler;
//! 5. [`build_server`]: the exposition, the web configuration's guard, the routes;
//! 6. [`bind`]: the listeners — start-up has succeeded once they are bound;
//! 7. [`start_ledger`]: only now are bad files set aside and the state writer started;
//! 8. [`start_sampling`]: the sampler, at once or after the first intensity fetch.
//!
//! Every background worker started on the way is owned by [`Workers`], which stops them in
//! one order at shutdown.

pub(crate) mod deferred;
mod error;
mod inventory;
mod ledger;
mod server;
mod sources;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::StartError;
pub(crate) use inventory::log_inventory;
pub(crate) use ledger::Publisher;
pub(crate) use sources::open_collectors;
pub(crate) use workers::Workers;

use crate::backend::{Backend, DeviceKind};
use crate::carbon::{self, IntensityProvider};
use crate::clock::{Clock, Timestamp};
use crate::config::{Config, StateConfig};
use crate::sampler::{self, Sampler};
use crate::snapshot::{CollectorStatus, Published, Snapshot};
use crate::state::store::Loaded;
use crate::state::writer::{StateHealth, StateWriter};
use crate::webconfig::{Guard, Reloader};
use crate::{exposition, http, state};
use deferred::Sampling;

/// What step 1 opened.
pub(crate) struct Opened {
    /// One backend per enabled collector that started.
    pub backends: Vec<Box<dyn Backend>>,
    /// Every enabled collector and whether it started.
    pub collectors: Vec<CollectorStatus>,
    /// The ledger on disk, with `--state.file`.
    pub loaded: Option<Loaded>,
}

/// Step 1: opens every enabled collector and reads the ledger, off the async workers (NVML
/// and sysfs calls block).
pub(crate) async fn open_sources(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> Result<Opened, StartError> {
    let sources = config.sources.clone();
    let clock = Arc::clone(clock);
    let state_path = config.state.as_ref().map(|s| s.path.clone());
    tokio::task::spawn_blocking(move || {
        let (backends, collectors) = sources::open_collectors(&sources, clock)?;
        Ok(Opened {
            backends,
            collectors,
            loaded: state_path.map(|p| state::store::load(&p)),
        })
    })
    .await?
}

/// Step 2: starts the carbon intensity provider.
pub(crate) fn start_intensity(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> Result<carbon::start::Started, StartError> {
    carbon::start::start(&config.carbon, Arc::clone(clock)).map_err(|source| StartError::Thread {
        what: "carbon intensity refresh",
        source,
    })
}

/// Step 3: the sampler over `backends`, charging at `intensity`, with the attributor when
/// `--collector.attribution` is on; and the task refreshing pod names, if one was started.
pub(crate) fn build_sampler(
    config: &Config,
    backends: Vec<Box<dyn Backend>>,
    collectors: Vec<CollectorStatus>,
    intensity: Box<dyn IntensityProvider>,
) -> (Sampler, Option<JoinHandle<()>>) {
    let settings = sampler::AccountingSettings {
        pue: config.carbon.pue,
        max_gap: (config.sample_interval * 5).max(Duration::from_secs(5)),
        estimate: config.sources.estimate,
        host: config
            .sources
            .host_estimate
            .as_ref()
            .map(|h| h.settings)
            .unwrap_or_default(),
        embodied: config.carbon.embodied,
        embodied_host: config.carbon.embodied_host,
    };
    let mut sampler = Sampler::new(backends, intensity, settings, collectors);
    let mut pods = None;
    if let Some(a) = &config.attribution {
        let (attributor, refresh) = sources::attributor(a, &config.sources, &sampler);
        sampler.attribute(attributor);
        sampler.mig_retention(a.settings.retention);
        pods = refresh;
    }
    (sampler, pods)
}

/// The ledger between steps 4 and 7.
pub(crate) struct Ledger {
    config: StateConfig,
    health: Arc<StateHealth>,
    restored: ledger::Restored,
}

/// Step 4: restores what the ledger held into the sampler; `None` without `--state.file`.
pub(crate) fn restore_ledger(
    sampler: &mut Sampler,
    config: &Config,
    loaded: Option<Loaded>,
    now: Timestamp,
) -> Option<Ledger> {
    let (cfg, loaded) = (config.state.as_ref()?, loaded?);
    let health = Arc::new(StateHealth::default());
    let restored = ledger::restore(sampler, cfg, &health, loaded, now);
    Some(Ledger {
        config: cfg.clone(),
        health,
        restored,
    })
}

/// What step 5 built.
pub(crate) struct Server {
    /// The routes.
    pub app: Arc<http::App>,
    /// The web configuration in force.
    pub guard: Arc<Guard>,
    /// Its reloader, with `--web.config.file`.
    pub reloader: Option<Reloader>,
}

/// Step 5: the exposition of `snapshots` (with the ledger's health), the web configuration's
/// guard and reloader, and the routes, with the landing page's set-up from `sampler`.
pub(crate) fn build_server(
    config: &Config,
    sampler: &Sampler,
    collectors: &[CollectorStatus],
    snapshots: Published,
    ledger: Option<&Ledger>,
) -> Result<Server, StartError> {
    let health = ledger.map(|l| Arc::clone(&l.health));
    let exposition = exposition::Exposition::new(snapshots.clone(), true, health)
        .map_err(StartError::Registry)?;
    server::register_settings(config, &exposition)?;
    let (guard, reloader) = server::web_security(config, &exposition)?;
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
        carbon: inventory::describe_carbon(&config.carbon),
        pue: config.carbon.pue,
    };
    let app = Arc::new(http::App::new(
        exposition,
        snapshots,
        config.telemetry_path.clone(),
        config.max_requests,
        &setup,
    ));
    Ok(Server {
        app,
        guard,
        reloader,
    })
}

/// Step 6: binds every `--web.listen-address`.
pub(crate) async fn bind(config: &Config) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::new();
    for &addr in &config.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Step 7, once start-up has succeeded: sets bad ledger files aside and starts the state
/// writer, through which every snapshot is then published; without a ledger, snapshots are
/// published as sampled.
pub(crate) fn start_ledger(
    ledger: Option<Ledger>,
    now_unix: u64,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
) -> Result<(Option<StateWriter>, Publisher), StartError> {
    match ledger {
        Some(l) => ledger::persist(&l.config, &l.health, l.restored, now_unix, publish),
        None => Ok((None, Publisher::Direct(publish))),
    }
}

/// Step 8: starts sampling: at once, or with a live intensity provider once its first fetch
/// has ended (at most twice `--carbon.http-timeout` plus a second; WattTime may need a login
/// and a data call), so the first sample is charged at the live value while `/-/healthy`
/// already answers.
pub(crate) fn start_sampling(
    sampler: Sampler,
    clock: Arc<dyn Clock>,
    config: &Config,
    first_fetch: Option<std::sync::mpsc::Receiver<()>>,
    publisher: Publisher,
) -> Result<Sampling, StartError> {
    let wait = config.carbon.http_timeout * 2 + Duration::from_secs(1);
    let interval = config.sample_interval;
    Sampling::start(first_fetch, wait, move || {
        sampler::spawn(sampler, clock, interval, move |s| publisher.publish(s))
    })
    .map_err(|source| StartError::Thread {
        what: "sampler",
        source,
    })
}
