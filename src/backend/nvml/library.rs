//! [`NvmlApi`] over the real NVML library, loaded at run time by `nvml-wrapper`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use super::gpm::Samples;
use super::{NvmlApi, ProcessSample, RawReading};
use crate::backend::mig::{profile_from_name, MigDevice};
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
    gpm: Samples,
}

impl Drop for NvmlLibrary {
    fn drop(&mut self) {
        self.gpm.free(&self.nvml);
    }
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
            gpm: Samples::default(),
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

    fn mig_enabled(&self, uuid: &str) -> Result<bool, NvmlError> {
        let mode = self.nvml.device_by_uuid(uuid)?.mig_mode()?;
        Ok(mode.current == nvml_wrapper_sys::bindings::NVML_DEVICE_MIG_ENABLE)
    }

    fn mig_devices(&self, uuid: &str) -> Result<(u32, Vec<MigDevice>), NvmlError> {
        let device = self.nvml.device_by_uuid(uuid)?;
        // SMs usable in MIG mode: those of the full-GPU (7-slice) GPU instance profile
        // (132 on H100, 98 on A100); `nvmlDeviceGetAttributes` answers for MIG handles only.
        let full = nvml_wrapper_sys::bindings::NVML_GPU_INSTANCE_PROFILE_7_SLICE;
        let sm_count = match device.profile_info(full) {
            Ok(info) => info.multiprocessor_count,
            Err(_) => device.attributes()?.multiprocessor_count,
        };
        let mut found = Vec::new();
        for index in 0..device.mig_device_count()? {
            let mig = match device.mig_device_by_index(index) {
                Ok(mig) => mig,
                // An empty slot: no instance there.
                Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
                Err(err) => return Err(err),
            };
            let attributes = mig.attributes()?;
            found.push(MigDevice {
                mig_uuid: mig.uuid()?,
                gpu_instance: self.instance_id(&mig, true)?,
                compute_instance: self.instance_id(&mig, false)?,
                profile: profile_from_name(&mig.name()?),
                sm_count: attributes.multiprocessor_count,
                memory_mb: attributes.memory_size_mb,
            });
        }
        Ok((sm_count, found))
    }

    fn gpm_supported(&self, uuid: &str) -> Result<bool, NvmlError> {
        match self.nvml.device_by_uuid(uuid)?.gpm_support() {
            Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => Ok(false),
            other => other,
        }
    }

    fn gpm_activity(&self, uuid: &str, gpu_instance: u32) -> Result<Option<f64>, NvmlError> {
        let device = self.nvml.device_by_uuid(uuid)?;
        self.gpm.activity(&self.nvml, &device, uuid, gpu_instance)
    }
}

impl NvmlLibrary {
    /// The GPU instance ID (`gpu`) or compute instance ID of a MIG device
    /// (`nvmlDeviceGetGpuInstanceId`, `nvmlDeviceGetComputeInstanceId`, which `nvml-wrapper`
    /// does not wrap).
    fn instance_id(&self, mig: &nvml_wrapper::Device<'_>, gpu: bool) -> Result<u32, NvmlError> {
        let lib = self.nvml.lib();
        let symbol = if gpu {
            lib.nvmlDeviceGetGpuInstanceId.as_ref()
        } else {
            lib.nvmlDeviceGetComputeInstanceId.as_ref()
        };
        let call = symbol.map_err(|e| NvmlError::FailedToLoadSymbol(e.to_string()))?;
        let mut id: std::ffi::c_uint = 0;
        // SAFETY: the symbol comes from the loaded NVML with its C signature; the handle is a
        // live device of this `nvml`, and `id` is valid for the write.
        let code = unsafe { call(mig.handle(), &mut id) };
        nvml_wrapper::error::nvml_try(code).map(|()| id)
    }
}
