//! AMD and Intel GPUs through the kernel's DRM and hwmon sysfs files, no vendor library needed.
//!
//! For each `class/drm/cardN` whose PCI driver is `amdgpu`, `i915` or `xe` (NVIDIA cards are
//! NVML's), the first `device/hwmon/hwmonM` directory gives (see [`channels`] for which channel
//! when there are several):
//! - `energyN_input`: cumulative energy in µJ (Intel i915/xe; some amdgpu parts) — preferred;
//! - `powerN_average`, else `powerN_input`: power in µW (amdgpu);
//! - `powerN_cap` (amdgpu) or `powerN_max` (Intel): power limit in µW;
//! - and `device/gpu_busy_percent` (amdgpu): utilization in percent.
//!
//! A card without any hwmon directory (an integrated GPU: its energy is part of the CPU
//! package's) is skipped with a log line saying so, rather than exported with no energy.
//!
//! Identity comes from `device/uevent` (driver, PCI ID, PCI slot), `device/unique_id` (amdgpu's
//! serial, used as the UUID where present) and `device/product_name`. The `gpu` label numbers
//! these cards after NVML's GPUs, so the two never share a value. A driver rebind renumbers the
//! card and its hwmon directory: the card is then found again by its PCI slot, as NVML GPUs are
//! by UUID.

mod channels;

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::sysfs::{entries, read_text, read_u64, uevent, SysfsError};
use super::{Backend, Capabilities, DeviceError, DeviceInfo, Field, Reading};
use crate::units::Watts;

/// The files one GPU is read from.
#[derive(Debug, Clone, Default)]
struct Files {
    device: PathBuf,
    hwmon: PathBuf,
    pci_slot: String,
    energy: Option<PathBuf>,
    power: Option<PathBuf>,
    limit: Option<PathBuf>,
    busy: Option<PathBuf>,
}

impl Files {
    fn caps(&self) -> Capabilities {
        Capabilities {
            energy_counter: self.energy.is_some(),
            power: self.power.is_some(),
            utilization: self.busy.is_some(),
            power_limit: self.limit.is_some(),
        }
    }
}

/// What a DRM card turned out to be.
enum Card {
    /// A GPU of ours, with its identity and files.
    Gpu(Box<(DeviceInfo, Files)>),
    /// Ours, but without hwmon sensors: skipped, for the reason given.
    NoSensors(String),
    /// Another driver's (NVIDIA's, a virtual display's).
    Other,
}

/// GPUs found through hwmon.
pub struct HwmonBackend {
    drm: PathBuf,
    devices: Vec<DeviceInfo>,
    files: Vec<Files>,
}

impl HwmonBackend {
    /// Scans `sysfs` (normally `/sys`) for AMD and Intel GPUs, numbering them from
    /// `first_index` (the number of GPUs other collectors found, so `gpu` labels stay unique).
    pub fn discover(sysfs: &Path, first_index: u32) -> HwmonBackend {
        let mut backend = HwmonBackend {
            drm: sysfs.join("class/drm"),
            devices: Vec::new(),
            files: Vec::new(),
        };
        for (card, path) in cards(&backend.drm) {
            let index = first_index + backend.devices.len() as u32;
            match inspect(index, &path.join("device")) {
                Ok(Card::Gpu(found)) => {
                    let (info, files) = *found;
                    info!(card, gpu = index, uuid = %info.uuid, "hwmon GPU");
                    backend.devices.push(info);
                    backend.files.push(files);
                }
                Ok(Card::NoSensors(why)) => info!(card, reason = %why, "Skipping DRM card"),
                Ok(Card::Other) => {}
                Err(err) => warn!(card, error = %err, "Skipping DRM card"),
            }
        }
        backend
    }

    /// After a driver rebind the card (and its hwmon directory) come back under new numbers:
    /// the files of the card in the same PCI slot, if its sensors are the same.
    fn reresolve(&self, position: usize) -> Option<Files> {
        let old = self.files.get(position)?;
        let info = self.devices.get(position)?;
        cards(&self.drm).into_iter().find_map(|(card, path)| {
            let Ok(Card::Gpu(found)) = inspect(info.index, &path.join("device")) else {
                return None;
            };
            let (_, files) = *found;
            let same = files.pci_slot == old.pci_slot && files.caps() == info.caps;
            same.then(|| {
                info!(card, uuid = %info.uuid, hwmon = %files.hwmon.display(), "GPU found again after its driver was re-bound");
                files
            })
        })
    }
}

/// `class/drm/cardN` entries (not connectors like `card1-DP-1`, not render nodes).
fn cards(drm: &Path) -> Vec<(String, PathBuf)> {
    entries(drm, |n| {
        n.strip_prefix("card")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Reads a card's identity and finds its files.
fn inspect(index: u32, device: &Path) -> Result<Card, SysfsError> {
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
        _ => return Ok(Card::Other),
    };
    let Some(hwmon) = entries(&device.join("hwmon"), |n| n.starts_with("hwmon"))
        .into_iter()
        .next()
        .map(|(_, p)| p)
    else {
        return Ok(Card::NoSensors(format!(
            "{vendor} GPU [{}] at {} has no hwmon sensors (an integrated GPU: its energy is part \
             of the CPU package, see --collector.rapl)",
            prop("PCI_ID"),
            prop("PCI_SLOT_NAME")
        )));
    };
    let uuid = read_text(&device.join("unique_id"))
        .ok()
        .filter(|s| !s.is_empty())
        .map(|id| format!("{vendor}-{id}"))
        .unwrap_or_else(|| format!("PCI-{}", prop("PCI_SLOT_NAME")));
    let name = read_text(&device.join("product_name"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{vendor} GPU [{}]", prop("PCI_ID")));
    let sensors = channels::choose(&hwmon, amd);
    let files = Files {
        device: device.to_path_buf(),
        hwmon,
        pci_slot: prop("PCI_SLOT_NAME").to_string(),
        energy: sensors.energy,
        power: sensors.power,
        limit: sensors.limit,
        busy: Some(device.join("gpu_busy_percent")).filter(|p| read_u64(p).is_ok()),
    };
    let mut info = DeviceInfo::gpu(index, uuid, name, files.caps());
    info.channel = sensors.channel;
    Ok(Card::Gpu(Box::new((info, files))))
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
        if !f.device.exists() || !f.hwmon.exists() {
            let gone = format!("{} is gone", f.hwmon.display());
            let found = self.reresolve(position).ok_or(DeviceError::Lost(gone))?;
            if let Some(slot) = self.files.get_mut(position) {
                *slot = found;
            }
        }
        let f = self
            .files
            .get(position)
            .ok_or_else(|| DeviceError::Lost(format!("no hwmon device {position}")))?;
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

#[cfg(test)]
mod tests;
