//! What a MIG-enabled GPU reports about its instances at one tick.
//!
//! NVML measures power and energy for the parent GPU only; what it offers per instance is its
//! identity (GPU and compute instance IDs, profile, SM count, memory, MIG UUID), its compute
//! processes, and, on Hopper and newer, its GPM graphics utilization. The accounting
//! ([`crate::energy`]) splits the parent's energy among the instances from these.

use serde::{Deserialize, Serialize};

use super::ProcessUse;

/// One MIG device: a compute instance inside a GPU instance, as NVML describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigDevice {
    /// The MIG device's UUID (`MIG-…`), the device ID the Kubernetes device plugin reports.
    pub mig_uuid: String,
    /// The GPU instance ID (the `gpu_instance` label).
    pub gpu_instance: u32,
    /// The compute instance ID inside the GPU instance.
    pub compute_instance: u32,
    /// The profile, e.g. `1g.10gb` (from the MIG device's name).
    pub profile: String,
    /// Streaming multiprocessors of this compute instance.
    pub sm_count: u32,
    /// Memory of this MIG device, MiB.
    pub memory_mb: u64,
}

/// One GPU instance at one tick: its MIG devices, how busy it was and who ran on it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReading {
    /// The GPU instance ID.
    pub gpu_instance: u32,
    /// Its MIG devices (one per compute instance), sorted by compute instance.
    pub devices: Vec<MigDevice>,
    /// GPM graphics utilization (0–1) over the interval since the previous reading of this
    /// instance; `None` without GPM, when its sample failed, or at its first reading.
    pub gpm_activity: Option<f64>,
    /// The compute processes on its MIG devices; `None` when listing them failed.
    pub processes: Option<Vec<ProcessUse>>,
}

impl InstanceReading {
    /// SMs of the GPU instance: the sum over its compute instances.
    pub fn sm_count(&self) -> u32 {
        self.devices.iter().map(|d| d.sm_count).sum()
    }
}

/// A MIG-enabled GPU's instances at one tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigReading {
    /// The instances, sorted by GPU instance ID; `None` when the MIG state or the instance
    /// list could not be read this tick (the interval's energy then goes to unallocated).
    pub layout: Option<MigLayout>,
    /// Failed reads this tick of the MIG state or the instance list.
    pub state_errors: u64,
    /// Instances whose GPM sample failed this tick (they fall back to the process rule).
    pub gpm_errors: u64,
}

/// The instances of a MIG-enabled GPU.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MigLayout {
    /// SMs of the whole GPU.
    pub sm_count: u32,
    /// Whether the GPU has GPM (Hopper and newer); without it every instance's activity comes
    /// from its processes.
    pub gpm: bool,
    /// Its GPU instances.
    pub instances: Vec<InstanceReading>,
}

/// Groups MIG devices into their GPU instances, sorted by GPU then compute instance ID.
pub fn group(mut devices: Vec<MigDevice>) -> Vec<Vec<MigDevice>> {
    devices.sort_by_key(|d| (d.gpu_instance, d.compute_instance));
    let mut groups: Vec<Vec<MigDevice>> = Vec::new();
    for d in devices {
        match groups.last_mut() {
            Some(g) if g[0].gpu_instance == d.gpu_instance => g.push(d),
            _ => groups.push(vec![d]),
        }
    }
    groups
}

/// The profile in a MIG device's name (`NVIDIA H100 80GB HBM3 MIG 1g.10gb` → `1g.10gb`); the
/// whole name if it has no ` MIG ` part.
pub fn profile_from_name(name: &str) -> String {
    name.rsplit_once(" MIG ")
        .map_or(name, |(_, profile)| profile)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(gi: u32, ci: u32) -> MigDevice {
        MigDevice {
            mig_uuid: format!("MIG-{gi}-{ci}"),
            gpu_instance: gi,
            compute_instance: ci,
            profile: "1g.10gb".into(),
            sm_count: 16,
            memory_mb: 9984,
        }
    }

    #[test]
    fn devices_group_by_gpu_instance() {
        let groups = group(vec![dev(2, 1), dev(1, 0), dev(2, 0)]);
        let ids: Vec<Vec<(u32, u32)>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|d| (d.gpu_instance, d.compute_instance))
                    .collect()
            })
            .collect();
        assert_eq!(ids, vec![vec![(1, 0)], vec![(2, 0), (2, 1)]]);
    }

    #[test]
    fn profile_is_the_name_after_mig() {
        assert_eq!(
            profile_from_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb"),
            "1g.10gb"
        );
        assert_eq!(
            profile_from_name("NVIDIA A100-SXM4-40GB MIG 1c.2g.10gb"),
            "1c.2g.10gb"
        );
        assert_eq!(profile_from_name("odd"), "odd");
    }
}
