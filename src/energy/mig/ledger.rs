//! Running totals of each MIG GPU instance and of each MIG GPU's unallocated energy: what the
//! split adds interval after interval, and the instances that are gone, kept with their final
//! totals for a retention period. Totals only ever grow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{activity, shares, split, Claim};
use crate::backend::mig::{MigDevice, MigReading};
use crate::backend::ProcessUse;
use crate::energy::Step;
use crate::units::{Grams, Joules, Watts};

/// One GPU instance's totals and latest state. Saved in the ledger as it is, less the fields
/// that only describe the latest tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceTotals {
    /// The GPU instance ID (the `gpu_instance` label).
    pub gpu_instance: u32,
    /// Energy, joules.
    pub energy_j: f64,
    /// Emissions, grams CO2e.
    pub co2e_g: f64,
    /// When the instance last existed, Unix seconds.
    pub last_seen_unix: f64,
    /// When its counters started from zero (OpenMetrics `_created`), Unix seconds; absent in
    /// files of exporters that didn't keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<f64>,
    /// Its MIG devices at the latest tick; empty once the instance is gone.
    #[serde(skip)]
    pub devices: Vec<MigDevice>,
    /// Its share of the GPU's power at the latest tick, watts.
    #[serde(skip)]
    pub power_w: Option<f64>,
    /// Its activity (0–1) over the latest interval.
    #[serde(skip)]
    pub activity: Option<f64>,
}

/// One MIG GPU's accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigGpu {
    /// The GPU's UUID (the key).
    pub uuid: String,
    /// The GPU's index.
    pub gpu: u32,
    /// Energy in no instance's share, joules.
    pub unallocated_energy_j: f64,
    /// Its emissions, grams CO2e.
    pub unallocated_co2e_g: f64,
    /// When the GPU was last seen in MIG mode, Unix seconds.
    pub last_seen_unix: f64,
    /// When its unallocated counters started from zero, Unix seconds; absent in files of
    /// exporters that didn't keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<f64>,
    /// Its GPU instances, live or retained, sorted by ID.
    pub instances: Vec<InstanceTotals>,
}

impl MigGpu {
    /// The values a ledger must hold as finite and non-negative, named.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        let gpu = [
            ("mig unallocated_energy_j", self.unallocated_energy_j),
            ("mig unallocated_co2e_g", self.unallocated_co2e_g),
        ];
        let instances = self
            .instances
            .iter()
            .flat_map(|i| [("mig energy_j", i.energy_j), ("mig co2e_g", i.co2e_g)]);
        gpu.into_iter().chain(instances)
    }
}

/// Failed MIG reads of one GPU (not saved: like every error counter, they restart at 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigErrors {
    /// The GPU's index.
    pub gpu: u32,
    /// Reads of the MIG state or of the instance list that failed.
    pub state: u64,
    /// GPM samples that failed (those instances fell back to the process rule).
    pub gpm: u64,
}

/// The MIG part of a tick's snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigSnapshot {
    /// MIG GPUs' accounts, sorted by GPU UUID.
    pub gpus: Vec<MigGpu>,
    /// Failed MIG reads per GPU UUID, for every GPU that reported on MIG.
    pub errors: Vec<(String, MigErrors)>,
}

/// What an instance got in one interval, for the per-workload split.
#[derive(Debug, Clone, PartialEq)]
pub struct MigShare {
    /// The GPU instance.
    pub gpu_instance: u32,
    /// Its energy and emissions this interval.
    pub step: Step,
    /// Its share of the GPU's power.
    pub power: Option<Watts>,
    /// Its compute processes.
    pub processes: Vec<ProcessUse>,
}

/// Every MIG GPU's accounts.
#[derive(Debug, Clone, Default)]
pub struct MigAccounts {
    gpus: BTreeMap<String, MigGpu>,
    errors: BTreeMap<String, MigErrors>,
    retention_s: f64,
}

impl MigAccounts {
    /// Accounts that keep instances that are gone, and MIG GPUs that left MIG mode, for
    /// `retention_s` after they were last seen.
    pub fn new(retention_s: f64) -> MigAccounts {
        MigAccounts {
            retention_s,
            ..MigAccounts::default()
        }
    }

    /// Changes the retention of instances and GPUs that are gone.
    pub fn set_retention(&mut self, retention_s: f64) {
        self.retention_s = retention_s;
    }

    /// Splits the interval's `step` of GPU `uuid` (index `gpu`, drawing `power`) among the
    /// instances in `reading`. Returns each instance's share (the rest went to unallocated), or
    /// `None` without a layout this tick (MIG state unreadable): then the whole step is
    /// unallocated if the GPU was seen in MIG mode before, and only the error is counted if not.
    pub fn account(
        &mut self,
        gpu: u32,
        uuid: &str,
        reading: &MigReading,
        step: Step,
        power: Option<Watts>,
        now_unix: f64,
    ) -> Option<Vec<MigShare>> {
        let errors = self.errors.entry(uuid.to_string()).or_default();
        errors.gpu = gpu;
        errors.state += reading.state_errors;
        errors.gpm += reading.gpm_errors;
        let entry = match (&reading.layout, self.gpus.get_mut(uuid)) {
            (_, Some(entry)) => entry,
            (None, None) => return None,
            (Some(_), None) => self.gpus.entry(uuid.to_string()).or_insert(MigGpu {
                uuid: uuid.to_string(),
                gpu,
                unallocated_energy_j: 0.0,
                unallocated_co2e_g: 0.0,
                last_seen_unix: now_unix,
                created_unix: Some(now_unix),
                instances: Vec::new(),
            }),
        };
        entry.gpu = gpu;
        entry.last_seen_unix = now_unix;
        let Some(layout) = &reading.layout else {
            entry.unallocated_energy_j += step.energy.0;
            entry.unallocated_co2e_g += step.co2e.0;
            return None;
        };
        let activities: Vec<f64> = layout
            .instances
            .iter()
            .map(|i| activity(i.gpm_activity, i.processes.as_ref().map(Vec::len)))
            .collect();
        let claims: Vec<Claim> = layout
            .instances
            .iter()
            .zip(&activities)
            .map(|(i, a)| Claim {
                sm_count: i.sm_count(),
                activity: *a,
            })
            .collect();
        let (shares, _) = shares(layout.sm_count, &claims);
        let (energy, energy_rest) = split(step.energy.0, &shares);
        let (co2e, co2e_rest) = split(step.co2e.0, &shares);
        entry.unallocated_energy_j += energy_rest;
        entry.unallocated_co2e_g += co2e_rest;
        for i in &mut entry.instances {
            i.devices.clear();
            i.power_w = None;
            i.activity = None;
        }
        let mut out = Vec::with_capacity(shares.len());
        for (n, reading) in layout.instances.iter().enumerate() {
            let totals = instance(&mut entry.instances, reading.gpu_instance, now_unix);
            totals.energy_j += energy[n];
            totals.co2e_g += co2e[n];
            totals.last_seen_unix = now_unix;
            totals.devices.clone_from(&reading.devices);
            totals.power_w = power.map(|p| p.0 * shares[n]);
            totals.activity = Some(activities[n]);
            out.push(MigShare {
                gpu_instance: reading.gpu_instance,
                step: Step {
                    energy: Joules(energy[n]),
                    idle: Joules(0.0),
                    co2e: Grams(co2e[n]),
                },
                power: totals.power_w.map(Watts),
                processes: reading.processes.clone().unwrap_or_default(),
            });
        }
        Some(out)
    }

    /// Drops instances gone, and GPUs out of MIG mode, for longer than the retention.
    pub fn expire(&mut self, now_unix: f64) {
        let keep = |last: f64| now_unix - last <= self.retention_s;
        for g in self.gpus.values_mut() {
            g.instances
                .retain(|i| !i.devices.is_empty() || keep(i.last_seen_unix));
        }
        self.gpus.retain(|_, g| keep(g.last_seen_unix));
    }

    /// Continues from saved accounts (instances not live until a tick sees them).
    pub fn restore(&mut self, saved: &[MigGpu]) {
        for g in saved {
            self.gpus.insert(g.uuid.clone(), g.clone());
        }
    }

    /// The accounts to export and save, sorted by GPU UUID.
    pub fn gpus(&self) -> Vec<MigGpu> {
        self.gpus.values().cloned().collect()
    }

    /// The accounts and error counts, for a snapshot.
    pub fn snapshot(&self) -> MigSnapshot {
        MigSnapshot {
            gpus: self.gpus(),
            errors: self.errors(),
        }
    }

    /// Error counts per GPU UUID, for every GPU that reported on MIG.
    pub fn errors(&self) -> Vec<(String, MigErrors)> {
        self.errors
            .iter()
            .map(|(uuid, e)| (uuid.clone(), *e))
            .collect()
    }
}

/// The totals of instance `gi`, inserted at zero (in ID order) if new.
fn instance(instances: &mut Vec<InstanceTotals>, gi: u32, now_unix: f64) -> &mut InstanceTotals {
    let at = match instances.binary_search_by_key(&gi, |i| i.gpu_instance) {
        Ok(at) => at,
        Err(at) => {
            instances.insert(
                at,
                InstanceTotals {
                    gpu_instance: gi,
                    energy_j: 0.0,
                    co2e_g: 0.0,
                    last_seen_unix: 0.0,
                    created_unix: Some(now_unix),
                    devices: Vec::new(),
                    power_w: None,
                    activity: None,
                },
            );
            at
        }
    };
    &mut instances[at]
}

#[cfg(test)]
mod tests;
