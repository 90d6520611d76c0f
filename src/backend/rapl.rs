//! CPU package and DRAM energy through the kernel's powercap RAPL interface
//! (`class/powercap/intel-rapl:*`, used for AMD Zen processors too).
//!
//! Each top-level zone `intel-rapl:N` named `package-P` (or `package-P-die-D` on multi-die
//! processors, one zone per die) is a CPU package; its sub-zone named `dram` is that package's
//! (or die's) memory and is exported as `dram-P` (or `dram-P-die-D`), so every zone has a
//! domain label of its own. Core, uncore and psys zones are left out because they overlap the
//! package (core and uncore are inside it, psys contains it), so the exported domains can be
//! summed. `energy_uj` is a µJ counter that wraps at `max_energy_range_uj`.
//!
//! Since Linux 5.10, `energy_uj` is readable only by root (CVE-2020-8694, "Platypus"); an
//! unprivileged exporter needs a udev rule or tmpfiles entry granting read access. Access can
//! differ per zone (a rule may cover `intel-rapl:*` but not `intel-rapl:*:*`), so each zone
//! stands alone: an unreadable one is skipped, named in the log and in
//! `gpu_carbon_exporter_host_domain_unreadable`, and the readable ones are exported.

use std::path::{Path, PathBuf};

use tracing::warn;

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

/// A zone found but not exported because its counter can't be read.
#[derive(Debug)]
pub struct Unreadable {
    /// The domain label it would have had (`dram-0`).
    pub domain: String,
    /// Why.
    pub error: RaplError,
}

/// The RAPL zones being read.
pub struct RaplBackend {
    devices: Vec<DeviceInfo>,
    counters: Vec<PathBuf>,
    unreadable: Vec<Unreadable>,
}

impl RaplBackend {
    /// Finds package and DRAM zones under `sysfs` (normally `/sys`) and checks each is readable.
    /// Fails only when no zone at all can be read (with the reason of the first that failed).
    pub fn discover(sysfs: &Path) -> Result<RaplBackend, RaplError> {
        let root = sysfs.join("class/powercap");
        let mut backend = RaplBackend {
            devices: Vec::new(),
            counters: Vec::new(),
            unreadable: Vec::new(),
        };
        let top = entries(&root, |n| {
            n.strip_prefix("intel-rapl:")
                .is_some_and(|rest| !rest.contains(':'))
        });
        for (zone, path) in top {
            let name = match read_text(&path.join("name")) {
                Ok(name) => name,
                Err(err) => {
                    warn!(zone, error = %err, "Skipping RAPL zone without a readable name");
                    continue;
                }
            };
            // "package-0" or "package-0-die-1": the suffix names the package (and die).
            let Some(suffix) = name.strip_prefix("package") else {
                continue;
            };
            let package = package_number(suffix);
            backend.add(&zone, &path, name.clone(), package);
            let subzones = entries(&path, |n| n.starts_with(&format!("{zone}:")));
            for (sub, sub_path) in subzones {
                if read_text(&sub_path.join("name")).is_ok_and(|n| n == "dram") {
                    backend.add(&sub, &sub_path, format!("dram{suffix}"), package);
                }
            }
        }
        if backend.devices.is_empty() {
            return Err(match backend.unreadable.into_iter().next() {
                Some(first) => first.error,
                None => RaplError::NotFound(root),
            });
        }
        Ok(backend)
    }

    /// Zones found but skipped because their counter can't be read.
    pub fn unreadable(&self) -> &[Unreadable] {
        &self.unreadable
    }

    fn add(&mut self, zone: &str, path: &Path, domain: String, package: u32) {
        // Firmware that names two zones alike must not make one hide the other in Prometheus.
        let domain = if self.devices.iter().any(|d| d.name == domain) {
            format!("{domain}-{zone}")
        } else {
            domain
        };
        match probe(path) {
            Ok((counter, range)) => {
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
                    channel: None,
                });
                self.counters.push(counter);
            }
            Err(error) => {
                warn!(zone, domain, error = %error, "RAPL zone unreadable; not exported");
                self.unreadable.push(Unreadable { domain, error });
            }
        }
    }
}

/// The package number at the start of a zone name's suffix (`-0` or `-1-die-0`).
fn package_number(suffix: &str) -> u32 {
    let digits: String = suffix
        .trim_start_matches('-')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

/// The zone's counter file and its wrap range, if both can be read.
fn probe(path: &Path) -> Result<(PathBuf, u64), RaplError> {
    let counter = path.join("energy_uj");
    read_u64(&counter).map_err(|e| {
        if e.is_permission_denied() {
            RaplError::PermissionDenied(counter.clone())
        } else {
            RaplError::Sysfs(e)
        }
    })?;
    let range = read_u64(&path.join("max_energy_range_uj"))?;
    Ok((counter, range))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sysfs::fake::Tree;

    fn zone(t: &Tree, dir: &str, name: &str, uj: u64) {
        t.file(&format!("class/powercap/{dir}/name"), name);
        t.file(&format!("class/powercap/{dir}/energy_uj"), &uj.to_string());
        t.file(
            &format!("class/powercap/{dir}/max_energy_range_uj"),
            "262143328850",
        );
    }

    fn domains(b: &RaplBackend) -> Vec<(&str, &str, u32)> {
        b.devices()
            .iter()
            .map(|d| (d.name.as_str(), d.uuid.as_str(), d.index))
            .collect()
    }

    /// Multi-die processors have one package zone per die, each with its own DRAM sub-zone:
    /// every one gets a label of its own.
    #[test]
    fn multi_die_zones_have_unique_labels() {
        let t = Tree::new("rapl-dies");
        zone(&t, "intel-rapl:0", "package-0-die-0", 1);
        zone(&t, "intel-rapl:0/intel-rapl:0:0", "dram", 2);
        zone(&t, "intel-rapl:1", "package-0-die-1", 3);
        zone(&t, "intel-rapl:1/intel-rapl:1:0", "dram", 4);
        zone(&t, "intel-rapl:2", "package-1", 5);
        zone(&t, "intel-rapl:2/intel-rapl:2:0", "dram", 6);
        let b = RaplBackend::discover(t.root()).expect("discover");
        assert_eq!(
            domains(&b),
            [
                ("package-0-die-0", "intel-rapl:0", 0),
                ("dram-0-die-0", "intel-rapl:0:0", 0),
                ("package-0-die-1", "intel-rapl:1", 0),
                ("dram-0-die-1", "intel-rapl:1:0", 0),
                ("package-1", "intel-rapl:2", 1),
                ("dram-1", "intel-rapl:2:0", 1),
            ]
        );
    }

    /// Two zones with the same name (seen on some firmware) still get distinct labels.
    #[test]
    fn same_named_zones_are_told_apart_by_zone() {
        let t = Tree::new("rapl-twins");
        zone(&t, "intel-rapl:0", "package-0", 1);
        zone(&t, "intel-rapl:1", "package-0", 2);
        let b = RaplBackend::discover(t.root()).expect("discover");
        let names: Vec<_> = domains(&b).into_iter().map(|d| d.0).collect();
        assert_eq!(names, ["package-0", "package-0-intel-rapl:1"]);
    }

    /// Each zone stands alone: an unreadable DRAM zone is skipped and reported, the package is
    /// still exported.
    #[test]
    fn an_unreadable_zone_does_not_take_the_others_down() {
        let t = Tree::new("rapl-partial");
        zone(&t, "intel-rapl:0", "package-0", 1);
        t.file("class/powercap/intel-rapl:0/intel-rapl:0:0/name", "dram");
        // A directory where the counter should be cannot be read, even by root.
        t.dir("class/powercap/intel-rapl:0/intel-rapl:0:0/energy_uj");
        let b = RaplBackend::discover(t.root()).expect("discover");
        let names: Vec<_> = domains(&b).into_iter().map(|d| d.0).collect();
        assert_eq!(names, ["package-0"]);
        let skipped: Vec<_> = b.unreadable().iter().map(|u| u.domain.as_str()).collect();
        assert_eq!(skipped, ["dram-0"]);
    }

    /// With nothing readable the collector can't start, and says why.
    #[test]
    fn nothing_readable_is_an_error() {
        let t = Tree::new("rapl-none");
        t.file("class/powercap/intel-rapl:0/name", "package-0");
        t.dir("class/powercap/intel-rapl:0/energy_uj");
        assert!(matches!(
            RaplBackend::discover(t.root()),
            Err(RaplError::Sysfs(_))
        ));
        let empty = Tree::new("rapl-empty");
        assert!(matches!(
            RaplBackend::discover(empty.root()),
            Err(RaplError::NotFound(_))
        ));
    }
}
