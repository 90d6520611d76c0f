//! NVIDIA GPUs through NVML.
//!
//! [`NvmlApi`] is the narrow seam: the few NVML calls the exporter makes, with NVML's own error
//! type. [`library::NvmlLibrary`] implements it over `nvml-wrapper`; unit tests implement it in
//! memory, and end-to-end tests load a fake `libnvidia-ml.so` into the real implementation.
//! This module turns NVML results into [`Reading`]s: it finds at start-up what each GPU
//! supports and classifies every error as unsupported, transient or device-lost.

mod gpm;
mod library;
mod mig;

pub use library::{InitError, NvmlLibrary};
pub use mig::MigProbe;

use nvml_wrapper::error::NvmlError;
use tracing::{debug, info, warn};

use super::mig::MigDevice;
use super::{Backend, Capabilities, DeviceError, DeviceInfo, Field, ProcessUse, Reading};
use crate::units::Watts;

/// Raw answers for one device; `None` where the reading was not asked for.
#[derive(Debug, Default)]
pub struct RawReading {
    /// `nvmlDeviceGetPowerUsage`, milliwatts.
    pub power_mw: Option<Result<u32, NvmlError>>,
    /// `nvmlDeviceGetTotalEnergyConsumption`, millijoules.
    pub energy_mj: Option<Result<u64, NvmlError>>,
    /// `nvmlDeviceGetUtilizationRates().gpu`, percent.
    pub utilization_pct: Option<Result<u32, NvmlError>>,
    /// `nvmlDeviceGetEnforcedPowerLimit`, milliwatts.
    pub power_limit_mw: Option<Result<u32, NvmlError>>,
}

/// One per-process utilization sample (`nvmlProcessUtilizationSample_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// The process.
    pub pid: u32,
    /// CPU timestamp of the sample, µs.
    pub timestamp_us: u64,
    /// SM utilization, percent.
    pub sm_pct: u32,
}

/// The NVML calls the exporter makes. Devices are addressed by UUID, so a GPU that falls off the
/// bus and comes back is found again even if its index changed.
pub trait NvmlApi: Send {
    /// Number of GPUs the driver sees.
    fn device_count(&self) -> Result<u32, NvmlError>;
    /// UUID and product name of the GPU at `index`.
    fn identity(&self, index: u32) -> Result<(String, String), NvmlError>;
    /// Reads the fields `ask` selects from the GPU with `uuid`; `Err` if the GPU can't be found.
    fn read(&self, uuid: &str, ask: Capabilities) -> Result<RawReading, NvmlError>;
    /// PIDs of the compute and graphics processes on the GPU
    /// (`nvmlDeviceGetComputeRunningProcesses_v3`, `nvmlDeviceGetGraphicsRunningProcesses_v3`).
    fn running_processes(&self, _uuid: &str) -> Result<Vec<u32>, NvmlError> {
        Err(NvmlError::NotSupported)
    }
    /// Per-process utilization samples newer than `since_us` (`nvmlDeviceGetProcessUtilization`);
    /// none newer is an empty list, not an error.
    fn process_utilization(
        &self,
        _uuid: &str,
        _since_us: u64,
    ) -> Result<Vec<ProcessSample>, NvmlError> {
        Err(NvmlError::NotSupported)
    }
    /// Whether MIG mode is on (`nvmlDeviceGetMigMode`, current mode); `NotSupported` on GPUs
    /// without MIG.
    fn mig_enabled(&self, _uuid: &str) -> Result<bool, NvmlError> {
        Err(NvmlError::NotSupported)
    }
    /// The SMs usable in MIG mode (those of the full-GPU instance profile,
    /// `nvmlDeviceGetGpuInstanceProfileInfo`) and the GPU's MIG devices
    /// (`nvmlDeviceGetMigDeviceHandleByIndex` up to `nvmlDeviceGetMaxMigDeviceCount`, each
    /// one's UUID, name, GPU and compute instance IDs and attributes).
    fn mig_devices(&self, _uuid: &str) -> Result<(u32, Vec<MigDevice>), NvmlError> {
        Err(NvmlError::NotSupported)
    }
    /// Whether the GPU supports GPM (`nvmlGpmQueryDeviceSupport`, Hopper and newer).
    fn gpm_supported(&self, _uuid: &str) -> Result<bool, NvmlError> {
        Ok(false)
    }
    /// GPM graphics utilization (percent) of GPU instance `gpu_instance` since the previous
    /// call for it (`nvmlGpmMigSampleGet`, `nvmlGpmMetricsGet`); `None` at the first call.
    fn gpm_activity(&self, _uuid: &str, _gpu_instance: u32) -> Result<Option<f64>, NvmlError> {
        Err(NvmlError::NotSupported)
    }
}

/// How the exporter treats an NVML error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The device does not offer this reading.
    NotSupported,
    /// The device is gone or unusable until reset.
    Lost,
    /// Anything else: count it and try again next tick.
    Transient,
}

/// Classifies an NVML error.
pub fn classify(err: &NvmlError) -> ErrorClass {
    match err {
        NvmlError::NotSupported => ErrorClass::NotSupported,
        NvmlError::GpuLost
        | NvmlError::ResetRequired
        | NvmlError::NotFound
        | NvmlError::Uninitialized
        | NvmlError::DriverNotLoaded => ErrorClass::Lost,
        _ => ErrorClass::Transient,
    }
}

/// The NVML backend over any [`NvmlApi`].
pub struct NvmlBackend<A> {
    api: A,
    devices: Vec<DeviceInfo>,
    processes: Vec<ProcessWatch>,
    /// Per device, whether it is in MIG mode (probed at start-up).
    mig: Vec<MigProbe>,
}

/// Per device: whether process listing and samples are still asked for, and the newest sample
/// seen (passed back to NVML so each sample is counted in one interval only).
#[derive(Debug, Clone, Copy)]
struct ProcessWatch {
    list: bool,
    samples: bool,
    last_seen_us: u64,
}

const EVERYTHING: Capabilities = Capabilities {
    energy_counter: true,
    power: true,
    utilization: true,
    power_limit: true,
};

impl<A: NvmlApi> NvmlBackend<A> {
    /// Enumerates the GPUs and probes what each supports. A GPU whose identity can't be read is
    /// skipped with a warning: without a UUID it could not be found again.
    pub fn discover(api: A) -> Result<NvmlBackend<A>, NvmlError> {
        let count = api.device_count()?;
        let mut devices = Vec::new();
        let mut mig_probes = Vec::new();
        for index in 0..count {
            let (uuid, name) = match api.identity(index) {
                Ok(id) => id,
                Err(err) => {
                    warn!(gpu = index, error = %err, "Skipping GPU whose identity can't be read");
                    continue;
                }
            };
            let caps = probe(&api, &uuid);
            mig_probes.push(mig::probe(&api, &uuid));
            devices.push(DeviceInfo::gpu(index, uuid, name, caps));
        }
        Ok(NvmlBackend {
            api,
            devices,
            processes: Vec::new(),
            mig: mig_probes,
        })
    }

    /// Per device, in [`Backend::devices`] order, whether it is in MIG mode (for the start-up
    /// inventory).
    pub fn mig_probes(&self) -> &[MigProbe] {
        &self.mig
    }
}

/// A reading is supported unless NVML says `NotSupported`; any other failure at start-up is
/// assumed transient, so the reading stays enabled and its failures are counted.
fn probe(api: &impl NvmlApi, uuid: &str) -> Capabilities {
    fn supported<T>(r: &Option<Result<T, NvmlError>>) -> bool {
        !matches!(r, Some(Err(e)) if classify(e) == ErrorClass::NotSupported)
    }
    match api.read(uuid, EVERYTHING) {
        Ok(raw) => Capabilities {
            energy_counter: supported(&raw.energy_mj),
            power: supported(&raw.power_mw),
            utilization: supported(&raw.utilization_pct),
            power_limit: supported(&raw.power_limit_mw),
        },
        Err(err) => {
            warn!(uuid, error = %err, "Could not probe GPU; assuming every reading is supported");
            EVERYTHING
        }
    }
}

impl<A: NvmlApi> Backend for NvmlBackend<A> {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        let info = self
            .devices
            .get(position)
            .ok_or_else(|| DeviceError::Lost(format!("no device at position {position}")))?;
        let raw = self.api.read(&info.uuid, info.caps).map_err(device_error)?;
        let mut reading = Reading::default();
        reading.power =
            take(raw.power_mw, Field::Power, &mut reading.failed)?.map(Watts::from_milliwatts);
        reading.energy_uj = take(raw.energy_mj, Field::Energy, &mut reading.failed)?
            .map(|mj| mj.saturating_mul(1000));
        reading.utilization = take(raw.utilization_pct, Field::Utilization, &mut reading.failed)?
            .map(|pct| f64::from(pct.min(100)) / 100.0);
        reading.power_limit = take(raw.power_limit_mw, Field::PowerLimit, &mut reading.failed)?
            .map(Watts::from_milliwatts);
        if let Some(probe) = self.mig.get_mut(position) {
            reading.mig = mig::read(&self.api, &info.uuid, probe);
        }
        reading.processes = self.read_processes(position);
        Ok(reading)
    }

    fn watch_processes(&mut self) {
        let watch = ProcessWatch {
            list: true,
            samples: true,
            last_seen_us: 0,
        };
        self.processes = vec![watch; self.devices.len()];
    }
}

impl<A: NvmlApi> NvmlBackend<A> {
    /// The processes on device `position` with their SM utilization since the last call; `None`
    /// when not watched, unsupported, or failed this tick. Samples are not supported on MIG
    /// instances or before Maxwell: those processes share equally.
    fn read_processes(&mut self, position: usize) -> Option<Vec<ProcessUse>> {
        let uuid = &self.devices.get(position)?.uuid;
        let watch = self.processes.get_mut(position).filter(|w| w.list)?;
        let mut pids = match self.api.running_processes(uuid) {
            Ok(pids) => pids,
            Err(err) => {
                if classify(&err) == ErrorClass::NotSupported {
                    warn!(
                        uuid,
                        "GPU can't list its processes: its energy stays unattributed"
                    );
                    watch.list = false;
                }
                debug!(uuid, error = %err, "Process listing failed");
                return None;
            }
        };
        pids.sort_unstable();
        pids.dedup();
        let samples = if watch.samples && !pids.is_empty() {
            match self.api.process_utilization(uuid, watch.last_seen_us) {
                Ok(samples) => samples,
                Err(err) => {
                    if classify(&err) == ErrorClass::NotSupported {
                        info!(uuid, "No per-process utilization on this GPU: processes share its energy equally");
                        watch.samples = false;
                    }
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        if let Some(newest) = samples.iter().map(|s| s.timestamp_us).max() {
            watch.last_seen_us = watch.last_seen_us.max(newest);
        }
        Some(
            pids.into_iter()
                .map(|pid| ProcessUse {
                    pid,
                    sm_utilization: mean_sm(&samples, pid),
                })
                .collect(),
        )
    }
}

/// Mean SM utilization (0–1) of `pid`'s samples, `None` without any.
fn mean_sm(samples: &[ProcessSample], pid: u32) -> Option<f64> {
    let (sum, n) = samples
        .iter()
        .filter(|s| s.pid == pid)
        .fold((0.0, 0u32), |(sum, n), s| {
            (sum + f64::from(s.sm_pct.min(100)), n + 1)
        });
    (n > 0).then(|| sum / f64::from(n) / 100.0)
}

fn device_error(err: NvmlError) -> DeviceError {
    match classify(&err) {
        ErrorClass::Lost => DeviceError::Lost(err.to_string()),
        ErrorClass::NotSupported | ErrorClass::Transient => DeviceError::Transient(err.to_string()),
    }
}

/// One field's value; a lost device fails the whole read, any other error marks the field failed.
fn take<T>(
    field: Option<Result<T, NvmlError>>,
    which: Field,
    failed: &mut Vec<Field>,
) -> Result<Option<T>, DeviceError> {
    match field {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(err)) if classify(&err) == ErrorClass::Lost => Err(device_error(err)),
        Some(Err(_)) => {
            failed.push(which);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests;
