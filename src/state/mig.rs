//! MIG accounts in the ledger: saved as the accounting's own type ([`MigGpu`]) less what only
//! describes the latest tick, journalled one whole GPU at a time, and held at their durable
//! values while the ledger can't be written.

use std::collections::HashMap;

use crate::energy::mig::{MigGpu, MigSnapshot};

/// The accounts to save: the totals, without the latest tick's devices, power and activity.
pub fn saved(live: &MigSnapshot) -> Vec<MigGpu> {
    live.gpus
        .iter()
        .map(|g| {
            let mut g = g.clone();
            for i in &mut g.instances {
                i.devices.clear();
                i.power_w = None;
                i.activity = None;
            }
            g
        })
        .collect()
}

/// The GPUs of `now` whose saved accounts differ from `before`.
pub fn changes(now: &[MigGpu], before: &[MigGpu]) -> Vec<MigGpu> {
    let old: HashMap<&str, &MigGpu> = before.iter().map(|g| (g.uuid.as_str(), g)).collect();
    now.iter()
        .filter(|g| old.get(g.uuid.as_str()) != Some(g))
        .cloned()
        .collect()
}

/// Applies journalled GPUs: each replaces the one with its UUID, or is added.
pub fn apply(into: &mut Vec<MigGpu>, changed: Vec<MigGpu>) {
    for g in changed {
        match into.iter_mut().find(|o| o.uuid == g.uuid) {
            Some(o) => *o = g,
            None => into.push(g),
        }
    }
    into.sort_by(|a, b| a.uuid.cmp(&b.uuid));
}

/// `live` with every counter at its `durable` value: an instance or GPU the ledger has never
/// held is left out, so no counter is served above what the ledger holds.
pub fn hold(live: &mut MigSnapshot, durable: &[MigGpu]) {
    let saved: HashMap<&str, &MigGpu> = durable.iter().map(|g| (g.uuid.as_str(), g)).collect();
    live.gpus.retain_mut(|g| {
        let Some(s) = saved.get(g.uuid.as_str()) else {
            return false;
        };
        g.unallocated_energy_j = s.unallocated_energy_j;
        g.unallocated_co2e_g = s.unallocated_co2e_g;
        g.instances.retain_mut(|i| {
            let held = s
                .instances
                .iter()
                .find(|d| d.gpu_instance == i.gpu_instance);
            if let Some(d) = held {
                i.energy_j = d.energy_j;
                i.co2e_g = d.co2e_g;
            }
            held.is_some()
        });
        true
    });
}
