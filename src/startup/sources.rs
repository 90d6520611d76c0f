//! Opening the data sources: every enabled collector (NVML failing is fatal, the others
//! degrade; the host estimate runs where RAPL doesn't measure) and the attributor that splits GPU energy among workloads.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::StartError;
use crate::attribution;
use crate::backend::host_estimate::HostEstimateBackend;
use crate::backend::hwmon::HwmonBackend;
use crate::backend::nvml::{NvmlBackend, NvmlLibrary};
use crate::backend::powermetrics::PowermetricsBackend;
use crate::backend::rapl::RaplBackend;
use crate::backend::simulated::SimulatedBackend;
use crate::backend::Backend;
use crate::clock::Clock;
use crate::config::{self, NvidiaSource, Sources};
use crate::energy::host::identify;
use crate::sampler::Sampler;
use crate::snapshot::CollectorStatus;

pub(crate) type Opened = (Vec<Box<dyn Backend>>, Vec<CollectorStatus>);

/// Opens every enabled collector. NVML failing is fatal (a GPU exporter that silently exports
/// nothing is worse than one that refuses to start); hwmon, RAPL and powermetrics degrade to
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
    let mut rapl_read = false;
    if sources.rapl {
        match RaplBackend::discover(&sources.sysfs) {
            Ok(rapl) => {
                rapl_read = true;
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
    let mut measured = rapl_read;
    if let Some(settings) = &sources.powermetrics {
        match PowermetricsBackend::start(settings) {
            Ok(backend) => {
                backends.push(Box::new(backend));
                measured = true;
                collectors.push(CollectorStatus::new("powermetrics", true));
            }
            Err(err) => {
                warn!(error = %err, "powermetrics collector disabled");
                collectors.push(CollectorStatus::new("powermetrics", false));
            }
        }
    }
    if let Some(host) = &sources.host_estimate {
        if measured && !host.force {
            info!("RAPL or powermetrics measures the host's CPU: no host estimate (--estimate.host.force estimates anyway)");
        } else {
            let (backend, status) = open_host_estimate(host);
            backends.extend(backend);
            collectors.push(status);
        }
    }
    Ok((backends, collectors))
}

/// The host estimate, or why it could not start (degraded to `collector_up 0`).
fn open_host_estimate(
    host: &config::HostEstimateConfig,
) -> (Option<Box<dyn Backend>>, CollectorStatus) {
    match HostEstimateBackend::discover(&host.procfs, host.cgroup.as_deref()) {
        Ok(b) => {
            let cpu = b.cpu_identity().cloned().unwrap_or_default();
            let arch = identify(&cpu);
            let m = host.settings.model(arch);
            info!(
                cpu = %cpu.model_name,
                microarchitecture = arch.map_or("unknown (average coefficients)", |a| a.name()),
                min_watts_per_vcpu = m.cpu.min.0,
                max_watts_per_vcpu = m.cpu.max.0,
                memory_watts_per_gib = m.memory_watts_per_gib,
                "Host CPU and memory power is ESTIMATED (Cloud Carbon Footprint model); series are labelled energy_source=\"estimated\""
            );
            let backend: Box<dyn Backend> = Box::new(b);
            (Some(backend), CollectorStatus::new("host_estimate", true))
        }
        Err(err) => {
            warn!(error = %err, "Host estimate disabled");
            (None, CollectorStatus::new("host_estimate", false))
        }
    }
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

/// The attributor for `config`: `--demo` GPUs get made-up identities and pods; real ones are
/// resolved from procfs and, where the sockets are set, the kubelet's pod-resources API and the
/// container runtime; with the task that refreshes those (a background worker).
pub(crate) fn attributor(
    config: &config::AttributionConfig,
    sources: &Sources,
    sampler: &Sampler,
) -> (attribution::Attributor, Option<JoinHandle<()>>) {
    use attribution::demo;
    use attribution::identity::{ProcResolver, Resolver};
    if let Some(NvidiaSource::Simulated { .. }) = &sources.nvidia {
        let gpus: Vec<_> = sampler
            .inventory()
            .filter(|(c, _, _)| *c == "simulated")
            .map(|(_, d, _)| d.clone())
            .collect();
        info!("Attributing simulated GPUs' energy to made-up demo workloads");
        return (demo::attributor(&config.settings, &gpus), None);
    }
    let resolver: Box<dyn Resolver> =
        Box::new(ProcResolver::new(config.procfs.clone(), &config.rootfs));
    let gpus = sampler
        .inventory()
        .map(|(_, d, _)| (d.index, d.uuid.clone()))
        .collect();
    let (pods, refresh) = attribution::kubernetes::spawn(attribution::kubernetes::Sources {
        pod_resources: config.pod_resources.clone(),
        cri: config.cri.clone(),
        rootfs: config.rootfs.clone(),
        refresh: config.kubernetes_refresh,
        gpus,
    });
    info!(
        labels = ?config.settings.labels.iter().map(|l| l.as_str()).collect::<Vec<_>>(),
        retention = ?config.settings.retention,
        max_series = config.settings.max_series,
        procfs = %config.procfs.display(),
        pod_resources = ?config.pod_resources,
        cri = ?config.cri,
        "Attributing GPU energy to workloads"
    );
    (
        attribution::Attributor::new(&config.settings, resolver, Some(pods)),
        Some(refresh),
    )
}
