//! CPU package and DRAM energy through the kernel's powercap RAPL interface
//! (`class/powercap/intel-rapl:*`, used for AMD Zen processors too).
//!
//! Each top-level zone `intel-rapl:N` named `package-N` is a CPU package; its sub-zone named
//! `dram` is that package's memory. Core, uncore and psys zones are left out because they
//! overlap the package (core and uncore are inside it, psys contains it), so the exported
//! domains can be summed. `energy_uj` is a µJ counter that wraps at `max_energy_range_uj`.
//!
//! Since Linux 5.10, `energy_uj` is readable only by root (CVE-2020-8694, "Platypus"); an
//! unprivileged exporter needs a udev rule or tmpfiles entry granting read access.

use std::path::{Path, PathBuf};

use super::sysfs::{entries, read_text, read_u64, SysfsError};
use super::{Backend, Capabilities, DeviceError, DeviceInfo, DeviceKind, Field, Reading};

/// RAPL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RaplError {
    /// No RAPL zones under the powercap directory.
    #[error("no RAPL package zones under {0} (not an x86 host with RAPL, or the intel_rapl_common module is not loaded)")]
    NotFound(PathBuf),
    /// A zone's counter is not readable by this user.
    #[error("{0} is readable only by root since Linux 5.10 (CVE-2020-8694); grant read access (e.g. a udev rule setting mode 0444 on energy_uj) or run with --no-collector.rapl")]
    PermissionDenied(PathBuf),
    /// Anything else.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
}

/// The RAPL zones being read.
pub struct RaplBackend {
    devices: Vec<DeviceInfo>,
    counters: Vec<PathBuf>,
}

impl RaplBackend {
    /// Finds package and DRAM zones under `sysfs` (normally `/sys`) and checks they are readable.
    pub fn discover(sysfs: &Path) -> Result<RaplBackend, RaplError> {
        let root = sysfs.join("class/powercap");
        let mut backend = RaplBackend {
            devices: Vec::new(),
            counters: Vec::new(),
        };
        let top = entries(&root, |n| {
            n.strip_prefix("intel-rapl:")
                .is_some_and(|rest| !rest.contains(':'))
        });
        for (zone, path) in top {
            let name = read_text(&path.join("name"))?;
            let Some(package) = name.strip_prefix("package-") else {
                continue;
            };
            let package: u32 = package.parse().unwrap_or(0);
            backend.add(&zone, &path, name.clone(), package)?;
            let subzones = entries(&path, |n| n.starts_with(&format!("{zone}:")));
            for (sub, sub_path) in subzones {
                if read_text(&sub_path.join("name"))? == "dram" {
                    backend.add(&sub, &sub_path, format!("dram-{package}"), package)?;
                }
            }
        }
        if backend.devices.is_empty() {
            return Err(RaplError::NotFound(root));
        }
        Ok(backend)
    }

    fn add(
        &mut self,
        zone: &str,
        path: &Path,
        domain: String,
        package: u32,
    ) -> Result<(), RaplError> {
        let counter = path.join("energy_uj");
        read_u64(&counter).map_err(|e| {
            if e.is_permission_denied() {
                RaplError::PermissionDenied(counter.clone())
            } else {
                RaplError::Sysfs(e)
            }
        })?;
        let range = read_u64(&path.join("max_energy_range_uj"))?;
        self.devices.push(DeviceInfo {
            kind: DeviceKind::HostDomain,
            index: package,
            uuid: zone.to_string(),
            name: domain,
            caps: Capabilities {
                energy_counter: true,
                power: false,
                utilization: false,
                power_limit: false,
            },
            wraps_at_uj: Some(range),
        });
        self.counters.push(counter);
        Ok(())
    }
}

impl Backend for RaplBackend {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        let path = self
            .counters
            .get(position)
            .ok_or_else(|| DeviceError::Lost(format!("no RAPL zone {position}")))?;
        Ok(match read_u64(path) {
            Ok(uj) => Reading {
                energy_uj: Some(uj),
                ..Reading::default()
            },
            Err(_) => Reading {
                failed: vec![Field::Energy],
                ..Reading::default()
            },
        })
    }
}
