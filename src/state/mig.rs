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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::mig::InstanceTotals;
    use crate::state::{StateFile, VERSION};

    fn gpu(uuid: &str, energy_j: f64) -> MigGpu {
        MigGpu {
            uuid: uuid.into(),
            gpu: 0,
            unallocated_energy_j: 10.0,
            unallocated_co2e_g: 1.0,
            last_seen_unix: 5.0,
            created_unix: Some(1.0),
            instances: vec![InstanceTotals {
                gpu_instance: 1,
                energy_j,
                co2e_g: energy_j / 10.0,
                last_seen_unix: 5.0,
                created_unix: Some(2.0),
                devices: Vec::new(),
                power_w: Some(100.0),
                activity: Some(0.5),
            }],
        }
    }

    fn file(seq: u64, mig: Vec<MigGpu>) -> StateFile {
        StateFile {
            seq,
            mig,
            ..StateFile::empty()
        }
    }

    #[test]
    fn saved_accounts_leave_out_the_latest_tick_and_round_trip() {
        let live = MigSnapshot {
            gpus: vec![gpu("GPU-a", 100.0)],
            errors: Vec::new(),
        };
        let saved = saved(&live);
        assert_eq!(saved[0].instances[0].power_w, None);
        let f = file(1, saved.clone());
        let text = f.to_json().expect("json");
        assert_eq!(StateFile::parse(&text).expect("parse").mig, saved);
        assert_eq!(StateFile::parse(&text).expect("parse").version, VERSION);
    }

    #[test]
    fn only_changed_gpus_are_journalled_and_replay_exactly() {
        let before = file(
            1,
            saved(&MigSnapshot {
                gpus: vec![gpu("GPU-a", 100.0), gpu("GPU-b", 5.0)],
                errors: Vec::new(),
            }),
        );
        let mut after = before.clone();
        after.seq = 2;
        after.mig[0].instances[0].energy_j = 150.0;
        let record = after.changes_since(&before);
        assert_eq!(record.mig.len(), 1);
        let mut replayed = before.clone();
        assert!(replayed.apply(record));
        assert_eq!(replayed, after);
    }

    #[test]
    fn a_negative_or_infinite_mig_total_is_refused() {
        for bad in [-1.0, f64::INFINITY] {
            let f = file(1, vec![gpu("GPU-a", bad)]);
            assert!(f.to_json().is_err(), "{bad}");
        }
    }

    #[test]
    fn held_counters_are_the_durable_ones() {
        let mut live = MigSnapshot {
            gpus: vec![gpu("GPU-a", 200.0), gpu("GPU-new", 1.0)],
            errors: Vec::new(),
        };
        hold(&mut live, &[gpu("GPU-a", 150.0)]);
        assert_eq!(live.gpus.len(), 1, "never held: left out");
        assert_eq!(live.gpus[0].instances[0].energy_j, 150.0);
        assert_eq!(
            live.gpus[0].instances[0].power_w,
            Some(100.0),
            "live values stay"
        );
    }
}
