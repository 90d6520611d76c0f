//! The host's CPU and memory where RAPL doesn't measure them (cloud VMs, unprivileged
//! containers): what the Cloud Carbon Footprint model (`energy::host`) needs, read from procfs
//! and the cgroup every tick. CPU utilization from `/proc/stat` over each sample interval; the
//! vCPUs from the online CPUs, bounded by the cgroup's `cpuset.cpus.effective` and `cpu.max`;
//! installed memory from `/proc/meminfo`, bounded by `memory.max`; the processor from
//! `/proc/cpuinfo`. Two host domains, `cpu` and `memory`, exported as
//! `energy_source="estimated"`.
//!
//! `/proc/stat` counts time for the whole machine, also inside a container: utilization is the
//! host's, applied to the container's vCPUs. Everything is re-read every tick, so CPU hot-plug
//! and cgroup changes take effect at the next sample.

pub mod procfs;
pub mod usage;

use std::path::{Path, PathBuf};

use super::sysfs::{read_text, SysfsError};
use super::{Backend, Capabilities, DeviceError, DeviceInfo, DeviceKind, Field, Reading};
pub use usage::{utilization, vcpus, CpuIdentity, CpuTimes};

/// Bytes in a GiB, the unit of the memory coefficient.
const BYTES_PER_GIB: f64 = 1_073_741_824.0;

/// The host estimate could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostEstimateError {
    /// A file it needs could not be read.
    #[error(transparent)]
    Read(#[from] SysfsError),
    /// A file it needs holds something else.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads what the host estimate needs.
pub struct HostEstimateBackend {
    procfs: PathBuf,
    cgroup: Option<PathBuf>,
    identity: CpuIdentity,
    devices: Vec<DeviceInfo>,
    /// The CPU times of the last good `/proc/stat` read, the start of the next interval.
    last: Option<CpuTimes>,
    /// The last known utilization, kept for an interval whose counters did not move.
    last_utilization: Option<f64>,
}

impl HostEstimateBackend {
    /// Reads the processor, the CPU times (the first interval's start) and the memory size
    /// under `procfs`, with cgroup limits from `cgroup` (none: the whole machine); fails if
    /// `stat` or `meminfo` can't be read or parsed.
    pub fn discover(
        procfs: &Path,
        cgroup: Option<&Path>,
    ) -> Result<HostEstimateBackend, HostEstimateError> {
        let stat = procfs.join("stat");
        let (times, _) = procfs::parse_stat(&read_text(&stat)?)
            .map_err(|reason| HostEstimateError::Parse { path: stat, reason })?;
        let meminfo = procfs.join("meminfo");
        if procfs::parse_meminfo(&read_text(&meminfo)?).is_none() {
            return Err(HostEstimateError::Parse {
                path: meminfo,
                reason: "no MemTotal line in kB".into(),
            });
        }
        // Without cpuinfo (some containers hide it) the average coefficients apply.
        let identity = read_text(&procfs.join("cpuinfo"))
            .map(|t| procfs::parse_cpuinfo(&t))
            .unwrap_or_default();
        let domain = |name: &str, utilization: bool| DeviceInfo {
            kind: DeviceKind::HostDomain,
            index: 0,
            uuid: format!("host-estimate:{name}"),
            name: name.to_string(),
            caps: Capabilities {
                energy_counter: false,
                power: false,
                utilization,
                power_limit: false,
            },
            wraps_at_uj: None,
            channel: None,
        };
        Ok(HostEstimateBackend {
            procfs: procfs.to_path_buf(),
            cgroup: cgroup.map(Path::to_path_buf),
            identity,
            devices: vec![domain("cpu", true), domain("memory", false)],
            last: Some(times),
            last_utilization: None,
        })
    }

    /// A cgroup file's value, if it exists and parses (no cgroup v2, no limit, or the whole
    /// machine counted: `None`).
    fn cgroup<T>(&self, file: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let dir = self.cgroup.as_ref()?;
        read_text(&dir.join(file)).ok().and_then(|t| parse(&t))
    }

    /// Utilization since the last read and the vCPUs.
    fn read_cpu(&mut self) -> Reading {
        let times = read_text(&self.procfs.join("stat"))
            .ok()
            .and_then(|text| procfs::parse_stat(&text).ok());
        let Some((times, online)) = times else {
            return Reading {
                failed: vec![Field::Utilization],
                ..Reading::default()
            };
        };
        let mut reading = Reading::default();
        let share = match self.last.map(|before| (before, utilization(before, times))) {
            Some((_, Some(u))) => {
                self.last = Some(times);
                self.last_utilization = Some(u);
                Some(u)
            }
            // No time counted since the last read: the load is as it was.
            Some((before, None)) if before == times => self.last_utilization,
            // Counters went back (a restored VM, a garbled file): start again from here,
            // keeping the last known load for this interval.
            Some((_, None)) => {
                self.last = Some(times);
                reading.failed.push(Field::Utilization);
                self.last_utilization
            }
            None => {
                self.last = Some(times);
                None
            }
        };
        let cpuset = self.cgroup("cpuset.cpus.effective", procfs::parse_cpuset);
        let quota = self.cgroup("cpu.max", procfs::parse_cpu_max);
        reading.utilization = share;
        reading.host_size = Some(vcpus(online, cpuset, quota));
        reading
    }

    /// GiB of memory, installed or allowed by the cgroup, whichever is less.
    fn read_memory(&self) -> Reading {
        let installed = read_text(&self.procfs.join("meminfo"))
            .ok()
            .and_then(|t| procfs::parse_meminfo(&t));
        let Some(installed) = installed else {
            return Reading {
                failed: vec![Field::Power],
                ..Reading::default()
            };
        };
        let limit = self.cgroup("memory.max", procfs::parse_memory_max);
        let bytes = limit.map_or(installed, |l| l.min(installed));
        Reading {
            host_size: Some(bytes as f64 / BYTES_PER_GIB),
            ..Reading::default()
        }
    }
}

impl Backend for HostEstimateBackend {
    fn name(&self) -> &'static str {
        "host_estimate"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        match position {
            0 => Ok(self.read_cpu()),
            1 => Ok(self.read_memory()),
            _ => Err(DeviceError::Lost(format!("no host domain {position}"))),
        }
    }

    fn cpu_identity(&self) -> Option<&CpuIdentity> {
        Some(&self.identity)
    }
}

#[cfg(test)]
mod tests;
