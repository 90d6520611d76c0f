//! [`NvmlApi`] over the real NVML library, loaded at run time by `nvml-wrapper`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use super::{NvmlApi, ProcessSample, RawReading};
use crate::backend::Capabilities;

/// The library name NVML is loaded by when `--nvml.library-path` is not given.
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";

/// NVML could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not initialise NVML from {library}: {source}")]
pub struct InitError {
    /// The library that was tried.
    pub library: String,
    /// What NVML (or the dynamic loader) said.
    #[source]
    pub source: NvmlError,
}

/// A loaded, initialised NVML library. Dropping it shuts NVML down.
pub struct NvmlLibrary {
    nvml: Nvml,
    library: String,
}

impl NvmlLibrary {
    /// Loads NVML from `path`, or from the default library name through the dynamic loader.
    pub fn open(path: Option<&Path>) -> Result<NvmlLibrary, InitError> {
        let library = path.map_or_else(|| PathBuf::from(DEFAULT_LIBRARY), Path::to_path_buf);
        let nvml = Nvml::builder()
            .lib_path(OsStr::new(library.as_os_str()))
            .init()
            .map_err(|source| InitError {
                library: library.display().to_string(),
                source,
            })?;
        Ok(NvmlLibrary {
            nvml,
            library: library.display().to_string(),
        })
    }

    /// The library this was loaded from.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The driver version, for the start-up inventory.
    pub fn driver_version(&self) -> Result<String, NvmlError> {
        self.nvml.sys_driver_version()
    }
}

impl NvmlApi for NvmlLibrary {
    fn device_count(&self) -> Result<u32, NvmlError> {
        self.nvml.device_count()
    }

    fn identity(&self, index: u32) -> Result<(String, String), NvmlError> {
        let device = self.nvml.device_by_index(index)?;
        Ok((device.uuid()?, device.name()?))
    }

    fn read(&self, uuid: &str, ask: Capabilities) -> Result<RawReading, NvmlError> {
        let device = self.nvml.device_by_uuid(uuid)?;
        Ok(RawReading {
            power_mw: ask.power.then(|| device.power_usage()),
            energy_mj: ask
                .energy_counter
                .then(|| device.total_energy_consumption()),
            utilization_pct: ask
                .utilization
                .then(|| device.utilization_rates().map(|u| u.gpu)),
            power_limit_mw: ask.power_limit.then(|| device.enforced_power_limit()),
        })
    }

    fn running_processes(&self, uuid: &str) -> Result<Vec<u32>, NvmlError> {
        let device = self.nvml.device_by_uuid(uuid)?;
        let mut pids: Vec<u32> = device
            .running_compute_processes()?
            .into_iter()
            .map(|p| p.pid)
            .collect();
        match device.running_graphics_processes() {
            Ok(graphics) => pids.extend(graphics.into_iter().map(|p| p.pid)),
            // Compute-only boards (and MIG) don't list graphics processes.
            Err(NvmlError::NotSupported) => {}
            Err(err) => return Err(err),
        }
        Ok(pids)
    }

    fn process_utilization(
        &self,
        uuid: &str,
        since_us: u64,
    ) -> Result<Vec<ProcessSample>, NvmlError> {
        let device = self.nvml.device_by_uuid(uuid)?;
        match device.process_utilization_stats(since_us) {
            Ok(samples) => Ok(samples
                .into_iter()
                .map(|s| ProcessSample {
                    pid: s.pid,
                    timestamp_us: s.timestamp,
                    sm_pct: s.sm_util,
                })
                .collect()),
            // NVML answers NOT_FOUND when no sample is newer than `since_us`.
            Err(NvmlError::NotFound) => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }
}
