//! What changed between two states, as one journal record, and how a record is applied.
//!
//! A record holds absolute values (never increments) of the entries that changed: applying the
//! same record twice, or a record to a state that already has it, changes nothing. Replaying a
//! state file's journal in order therefore gives the last committed state whatever prefix of
//! the journal a crash left behind.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{SavedAttribution, SavedDevice, SavedUnattributed, SavedWorkload, StateFile};
use crate::energy::mig::MigGpu;

/// One journal record: the entries of a committed state that differ from the state before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// When the committed snapshot was taken, Unix seconds.
    pub written_at_unix: f64,
    /// The commit's number ([`StateFile::seq`]).
    pub seq: u64,
    /// Devices whose saved values changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<SavedDevice>,
    /// Workload and unattributed entries that changed, with the label names they are keyed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<SavedAttribution>,
    /// MIG GPUs whose accounts changed, each whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig: Vec<MigGpu>,
}

impl Record {
    /// Whether every total in the record is a finite, non-negative number (what a replay
    /// accepts; the writer never records anything else).
    pub fn is_valid(&self) -> bool {
        let as_file = StateFile {
            version: super::VERSION,
            written_at_unix: self.written_at_unix,
            seq: self.seq,
            devices: self.devices.clone(),
            attribution: self.attribution.clone(),
            mig: self.mig.clone(),
        };
        self.written_at_unix.is_finite() && as_file.validate().is_ok()
    }
}

type WorkloadKey<'a> = (&'a str, &'a [String]);

fn workload_key(w: &SavedWorkload) -> WorkloadKey<'_> {
    (w.uuid.as_str(), w.labels.as_slice())
}

impl StateFile {
    /// The record that turns `before` into `self`. Entries that are gone from `self` need no
    /// record: the next compaction drops them, and a replay that still has them applies
    /// `--state.retention` at start as it does to the state file.
    pub fn changes_since(&self, before: &StateFile) -> Record {
        let old: HashMap<&str, &SavedDevice> = before
            .devices
            .iter()
            .map(|d| (d.uuid.as_str(), d))
            .collect();
        let devices = self
            .devices
            .iter()
            .filter(|d| old.get(d.uuid.as_str()) != Some(d))
            .cloned()
            .collect();
        let attribution = self.attribution.as_ref().and_then(|now| {
            let prior = before
                .attribution
                .as_ref()
                .filter(|b| b.labels == now.labels);
            let changed = match prior {
                Some(prior) => now.changes_since(prior),
                None => now.clone(),
            };
            let empty = changed.workloads.is_empty() && changed.unattributed.is_empty();
            (!empty || prior.is_none()).then_some(changed)
        });
        Record {
            written_at_unix: self.written_at_unix,
            seq: self.seq,
            devices,
            attribution,
            mig: super::mig::changes(&self.mig, &before.mig),
        }
    }

    /// Applies a record: its entries replace those with the same key, new ones are added. A
    /// record this state already holds (its commit is not newer) changes nothing: a crash
    /// between rewriting the state file and emptying the journal leaves older lines behind.
    /// Returns whether it was applied.
    pub fn apply(&mut self, record: Record) -> bool {
        if record.seq <= self.seq {
            return false;
        }
        self.written_at_unix = record.written_at_unix;
        self.seq = record.seq;
        let mut at: HashMap<String, usize> = self
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.uuid.clone(), i))
            .collect();
        for d in record.devices {
            match at.get(&d.uuid) {
                Some(&i) => self.devices[i] = d,
                None => {
                    at.insert(d.uuid.clone(), self.devices.len());
                    self.devices.push(d);
                }
            }
        }
        if let Some(changed) = record.attribution {
            match &mut self.attribution {
                // Another label set (the flags changed between runs) replaces the old one, as
                // restoring would not match the old workloads to the new labels anyway.
                Some(a) if a.labels == changed.labels => a.apply(changed),
                slot => *slot = Some(changed),
            }
        }
        super::mig::apply(&mut self.mig, record.mig);
        true
    }
}

impl SavedAttribution {
    fn changes_since(&self, before: &SavedAttribution) -> SavedAttribution {
        let old: HashMap<WorkloadKey, &SavedWorkload> = before
            .workloads
            .iter()
            .map(|w| (workload_key(w), w))
            .collect();
        let old_un: HashMap<&str, &SavedUnattributed> = before
            .unattributed
            .iter()
            .map(|u| (u.uuid.as_str(), u))
            .collect();
        SavedAttribution {
            labels: self.labels.clone(),
            workloads: self
                .workloads
                .iter()
                .filter(|w| old.get(&workload_key(w)) != Some(w))
                .cloned()
                .collect(),
            unattributed: self
                .unattributed
                .iter()
                .filter(|u| old_un.get(u.uuid.as_str()) != Some(u))
                .cloned()
                .collect(),
        }
    }

    fn apply(&mut self, changed: SavedAttribution) {
        let mut at: HashMap<(String, Vec<String>), usize> = self
            .workloads
            .iter()
            .enumerate()
            .map(|(i, w)| ((w.uuid.clone(), w.labels.clone()), i))
            .collect();
        for w in changed.workloads {
            let key = (w.uuid.clone(), w.labels.clone());
            match at.get(&key) {
                Some(&i) => self.workloads[i] = w,
                None => {
                    at.insert(key, self.workloads.len());
                    self.workloads.push(w);
                }
            }
        }
        for u in changed.unattributed {
            match self.unattributed.iter_mut().find(|o| o.uuid == u.uuid) {
                Some(o) => *o = u,
                None => self.unattributed.push(u),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{attribution, device};
    use super::super::VERSION;
    use super::*;

    fn state(at: f64) -> StateFile {
        StateFile {
            version: VERSION,
            written_at_unix: at,
            seq: 0,
            devices: vec![device()],
            attribution: Some(attribution()),
            mig: Vec::new(),
        }
    }

    #[test]
    fn an_unchanged_state_records_only_its_time() {
        let s = state(1.0);
        let mut later = s.clone();
        later.written_at_unix = 2.0;
        later.seq = 1;
        let r = later.changes_since(&s);
        assert!(r.devices.is_empty());
        assert_eq!(r.attribution, None);
        let mut replayed = s.clone();
        replayed.apply(r);
        assert_eq!(replayed, later);
    }

    #[test]
    fn changed_and_new_entries_are_recorded_and_replayed_exactly() {
        let before = state(1.0);
        let mut after = before.clone();
        after.written_at_unix = 2.0;
        after.seq = 1;
        after.devices[0].energy_j += 100.0;
        let mut other = device();
        other.uuid = "GPU-2".into();
        after.devices.push(other);
        let a = after.attribution.as_mut().expect("attribution");
        a.workloads[0].energy_j += 50.0;
        let mut new = a.workloads[0].clone();
        new.labels = vec!["train-1".into(), "bob".into()];
        a.workloads.push(new);
        let r = after.changes_since(&before);
        assert_eq!(r.devices.len(), 2);
        assert_eq!(r.attribution.as_ref().map(|a| a.workloads.len()), Some(2));
        assert_eq!(
            r.attribution.as_ref().map(|a| a.unattributed.len()),
            Some(0)
        );
        let mut replayed = before.clone();
        replayed.apply(r.clone());
        assert_eq!(replayed, after);
        // Idempotent: a record applied twice changes nothing more.
        assert!(!replayed.apply(r), "already held");
        assert_eq!(replayed, after);
    }

    #[test]
    fn a_new_label_set_replaces_the_old_workloads() {
        let before = state(1.0);
        let mut after = before.clone();
        after.seq = 1;
        let a = after.attribution.as_mut().expect("attribution");
        a.labels = vec!["user".into()];
        a.workloads[0].labels = vec!["alice".into()];
        let r = after.changes_since(&before);
        let mut replayed = before.clone();
        replayed.apply(r);
        assert_eq!(replayed.attribution, after.attribution);
    }

    #[test]
    fn replay_onto_nothing_recovers_the_devices() {
        let mut s = state(1.0);
        s.seq = 1;
        let empty = StateFile {
            version: VERSION,
            written_at_unix: 0.0,
            seq: 0,
            devices: Vec::new(),
            attribution: None,
            mig: Vec::new(),
        };
        let mut replayed = empty.clone();
        replayed.apply(s.changes_since(&empty));
        assert_eq!(replayed, s);
    }
}
