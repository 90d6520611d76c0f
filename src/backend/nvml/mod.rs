//! NVIDIA GPUs through NVML.
//!
//! [`NvmlApi`] is the narrow seam: the few NVML calls the exporter makes, with NVML's own error
//! type. [`library::NvmlLibrary`] implements it over `nvml-wrapper`; unit tests implement it in
//! memory, and end-to-end tests load a fake `libnvidia-ml.so` into the real implementation.
//! This module turns NVML results into [`Reading`]s: it finds at start-up what each GPU
//! supports and classifies every error as unsupported, transient or device-lost.

mod library;

pub use library::{InitError, NvmlLibrary};

use nvml_wrapper::error::NvmlError;
use tracing::warn;

use super::{Backend, Capabilities, DeviceError, DeviceInfo, Field, Reading};
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

/// The NVML calls the exporter makes. Devices are addressed by UUID, so a GPU that falls off the
/// bus and comes back is found again even if its index changed.
pub trait NvmlApi: Send {
    /// Number of GPUs the driver sees.
    fn device_count(&self) -> Result<u32, NvmlError>;
    /// UUID and product name of the GPU at `index`.
    fn identity(&self, index: u32) -> Result<(String, String), NvmlError>;
    /// Reads the fields `ask` selects from the GPU with `uuid`; `Err` if the GPU can't be found.
    fn read(&self, uuid: &str, ask: Capabilities) -> Result<RawReading, NvmlError>;
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
        for index in 0..count {
            let (uuid, name) = match api.identity(index) {
                Ok(id) => id,
                Err(err) => {
                    warn!(gpu = index, error = %err, "Skipping GPU whose identity can't be read");
                    continue;
                }
            };
            let caps = probe(&api, &uuid);
            devices.push(DeviceInfo::gpu(index, uuid, name, caps));
        }
        Ok(NvmlBackend { api, devices })
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
        Ok(reading)
    }
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
