//! AMD and Intel GPUs through the kernel's DRM and hwmon sysfs files, no vendor library needed.
//!
//! For each `class/drm/cardN` whose PCI driver is `amdgpu`, `i915` or `xe` (NVIDIA cards are
//! NVML's), the first `device/hwmon/hwmonM` directory gives:
//! - `energy1_input`: cumulative energy in µJ (Intel i915/xe; some amdgpu parts) — preferred;
//! - `power1_average`, else `power1_input`: power in µW (amdgpu);
//! - `power1_cap` (amdgpu) or `power1_max` (Intel): power limit in µW;
//! - and `device/gpu_busy_percent` (amdgpu): utilization in percent.
//!
//! Identity comes from `device/uevent` (driver, PCI ID, PCI slot), `device/unique_id` (amdgpu's
//! serial, used as the UUID where present) and `device/product_name`.

use std::path::{Path, PathBuf};

use tracing::warn;

use super::sysfs::{entries, read_text, read_u64, uevent, SysfsError};
use super::{Backend, Capabilities, DeviceError, DeviceInfo, Field, Reading};
use crate::units::Watts;

/// The files one GPU is read from.
#[derive(Debug, Clone, Default)]
struct Files {
    device: PathBuf,
    energy: Option<PathBuf>,
    power: Option<PathBuf>,
    limit: Option<PathBuf>,
    busy: Option<PathBuf>,
}

/// GPUs found through hwmon.
pub struct HwmonBackend {
    devices: Vec<DeviceInfo>,
    files: Vec<Files>,
}

impl HwmonBackend {
    /// Scans `sysfs` (normally `/sys`) for AMD and Intel GPUs.
    pub fn discover(sysfs: &Path) -> HwmonBackend {
        let mut devices = Vec::new();
        let mut files = Vec::new();
        let drm = sysfs.join("class/drm");
        let cards = entries(&drm, |n| {
            n.strip_prefix("card")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        });
        for (card, path) in cards {
            match inspect(&card, &path.join("device")) {
                Ok(Some((info, f))) => {
                    devices.push(info);
                    files.push(f);
                }
                Ok(None) => {}
                Err(err) => warn!(card, error = %err, "Skipping DRM card"),
            }
        }
        HwmonBackend { devices, files }
    }
}

/// Reads a card's identity and finds its files; `None` for cards of other drivers.
fn inspect(card: &str, device: &Path) -> Result<Option<(DeviceInfo, Files)>, SysfsError> {
    let props = uevent(&device.join("uevent"))?;
    let prop = |k: &str| {
        props
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let (vendor, amd) = match prop("DRIVER") {
        "amdgpu" => ("AMD", true),
        "i915" | "xe" => ("Intel", false),
        _ => return Ok(None),
    };
    let index = card.trim_start_matches("card").parse().unwrap_or(0);
    let uuid = read_text(&device.join("unique_id"))
        .ok()
        .filter(|s| !s.is_empty())
        .map(|id| format!("{vendor}-{id}"))
        .unwrap_or_else(|| format!("PCI-{}", prop("PCI_SLOT_NAME")));
    let name = read_text(&device.join("product_name"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{vendor} GPU [{}]", prop("PCI_ID")));
    let hwmon = entries(&device.join("hwmon"), |n| n.starts_with("hwmon"))
        .into_iter()
        .next()
        .map(|(_, p)| p);
    let readable = |p: PathBuf| read_u64(&p).is_ok().then_some(p);
    let in_hwmon = |names: &[&str]| {
        hwmon.as_ref().and_then(|h| {
            names
                .iter()
                .find_map(|n| Some(h.join(n)).filter(|p| p.exists()))
        })
    };
    let files = Files {
        device: device.to_path_buf(),
        energy: in_hwmon(&["energy1_input"]).and_then(readable),
        power: in_hwmon(&["power1_average", "power1_input"]).and_then(readable),
        limit: in_hwmon(if amd {
            &["power1_cap"]
        } else {
            &["power1_max"]
        })
        .and_then(readable),
        busy: Some(device.join("gpu_busy_percent")).and_then(readable),
    };
    let caps = Capabilities {
        energy_counter: files.energy.is_some(),
        power: files.power.is_some(),
        utilization: files.busy.is_some(),
        power_limit: files.limit.is_some(),
    };
    Ok(Some((DeviceInfo::gpu(index, uuid, name, caps), files)))
}

impl Backend for HwmonBackend {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        let f = self
            .files
            .get(position)
            .ok_or_else(|| DeviceError::Lost(format!("no hwmon device {position}")))?;
        if !f.device.exists() {
            return Err(DeviceError::Lost(format!("{} is gone", f.device.display())));
        }
        let mut r = Reading::default();
        let mut read = |path: &Option<PathBuf>, field: Field| {
            let value = path.as_ref().map(|p| read_u64(p));
            if let Some(Err(_)) = &value {
                r.failed.push(field);
            }
            value.and_then(Result::ok)
        };
        let energy_uj = read(&f.energy, Field::Energy);
        let power_uw = read(&f.power, Field::Power);
        let limit_uw = read(&f.limit, Field::PowerLimit);
        let busy = read(&f.busy, Field::Utilization);
        r.energy_uj = energy_uj;
        r.power = power_uw.map(|uw| Watts(uw as f64 / 1e6));
        // Intel reports 0 when no limit is set.
        r.power_limit = limit_uw
            .filter(|&uw| uw > 0)
            .map(|uw| Watts(uw as f64 / 1e6));
        r.utilization = busy.map(|pct| pct.min(100) as f64 / 100.0);
        Ok(r)
    }
}
