//! The running totals per workload and GPU, with the two protections of Prometheus: workloads
//! that ended are dropped after a retention period, and past a cap on series new workloads are
//! counted in an overflow bucket.

use std::collections::BTreeMap;

use crate::units::{Grams, Joules, Watts};

/// The label value of every workload label of the overflow bucket.
pub const OVERFLOW: &str = "_overflow_";

/// A workload on a GPU: the GPU's UUID and the workload label values, in the configured order.
pub type Key = (String, Vec<String>);

/// One workload's totals on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The GPU's index.
    pub gpu: u32,
    /// Energy attributed so far.
    pub energy: Joules,
    /// Emissions attributed so far.
    pub co2e: Grams,
    /// Its share of the GPU's power in the latest interval (0 once it ended).
    pub power: Watts,
    /// Whether one of its processes was on the GPU at the latest sample.
    pub active: bool,
    /// When one of its processes was last seen, Unix seconds.
    pub last_active_unix: f64,
}

/// Energy no workload was present for, per GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Unattributed {
    /// The GPU's index.
    pub gpu: u32,
    /// Energy so far.
    pub energy: Joules,
    /// Emissions so far.
    pub co2e: Grams,
}

/// All workloads' totals.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Workload totals, sorted by GPU then labels.
    pub entries: BTreeMap<Key, Entry>,
    /// Unattributed totals by GPU UUID.
    pub unattributed: BTreeMap<String, Unattributed>,
    max_series: usize,
    retention_s: f64,
}

impl Table {
    /// An empty table holding at most `max_series` workload series (the overflow buckets
    /// aside) and keeping ended ones for `retention_s` seconds.
    pub fn new(max_series: usize, retention_s: f64) -> Table {
        Table {
            max_series,
            retention_s,
            ..Table::default()
        }
    }

    /// Starts a sample: every workload is inactive until [`Table::add`] sees it again.
    pub fn begin(&mut self) {
        for e in self.entries.values_mut() {
            e.active = false;
            e.power = Watts(0.0);
        }
    }

    fn series(&self) -> usize {
        self.entries
            .keys()
            .filter(|(_, labels)| !is_overflow(labels))
            .count()
    }

    /// Adds one interval's part to the workload `labels` on GPU `uuid`; a new workload past the
    /// cap goes to the GPU's overflow bucket. Returns whether it overflowed.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        uuid: &str,
        gpu: u32,
        labels: Vec<String>,
        energy: Joules,
        co2e: Grams,
        power: Watts,
        now_unix: f64,
    ) -> bool {
        let mut key = (uuid.to_string(), labels);
        let overflowed = !self.entries.contains_key(&key) && self.series() >= self.max_series;
        if overflowed {
            key.1 = vec![OVERFLOW.to_string(); key.1.len()];
        }
        let e = self.entries.entry(key).or_insert(Entry {
            gpu,
            energy: Joules(0.0),
            co2e: Grams(0.0),
            power: Watts(0.0),
            active: false,
            last_active_unix: now_unix,
        });
        e.gpu = gpu;
        e.energy += energy;
        e.co2e += co2e;
        e.power = Watts(e.power.0 + power.0);
        e.active = true;
        e.last_active_unix = now_unix;
        overflowed
    }

    /// Adds energy no process was present for.
    pub fn add_unattributed(&mut self, uuid: &str, gpu: u32, energy: Joules, co2e: Grams) {
        // Looked up before inserting: this runs for every GPU at every sample, and the key's
        // allocation is only needed the first time.
        let u = match self.unattributed.get_mut(uuid) {
            Some(u) => u,
            None => self.unattributed.entry(uuid.to_string()).or_default(),
        };
        u.gpu = gpu;
        u.energy += energy;
        u.co2e += co2e;
    }

    /// Drops workloads that ended more than the retention ago; returns how many.
    pub fn expire(&mut self, now_unix: f64) -> usize {
        let before = self.entries.len();
        let retention = self.retention_s;
        self.entries
            .retain(|_, e| e.active || now_unix - e.last_active_unix <= retention);
        before - self.entries.len()
    }
}

fn is_overflow(labels: &[String]) -> bool {
    !labels.is_empty() && labels.iter().all(|l| l == OVERFLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &str) -> Vec<String> {
        vec![v.to_string()]
    }

    fn add(t: &mut Table, who: &str, now: f64) -> bool {
        t.add(
            "GPU-0",
            0,
            labels(who),
            Joules(1.0),
            Grams(2.0),
            Watts(10.0),
            now,
        )
    }

    #[test]
    fn totals_accumulate_and_power_resets_each_sample() {
        let mut t = Table::new(10, 60.0);
        add(&mut t, "alice", 0.0);
        add(&mut t, "alice", 0.0);
        let e = &t.entries[&("GPU-0".to_string(), labels("alice"))];
        assert_eq!(
            (e.energy, e.co2e, e.power),
            (Joules(2.0), Grams(4.0), Watts(20.0))
        );
        t.begin();
        let e = &t.entries[&("GPU-0".to_string(), labels("alice"))];
        assert_eq!((e.power, e.active), (Watts(0.0), false));
    }

    #[test]
    fn ended_workloads_stay_for_the_retention_then_go() {
        let mut t = Table::new(10, 60.0);
        add(&mut t, "alice", 0.0);
        t.begin();
        assert_eq!(t.expire(60.0), 0);
        assert_eq!(t.expire(60.5), 1);
        assert!(t.entries.is_empty());
    }

    #[test]
    fn past_the_cap_new_workloads_overflow() {
        let mut t = Table::new(2, 60.0);
        assert!(!add(&mut t, "a", 0.0));
        assert!(!add(&mut t, "b", 0.0));
        assert!(add(&mut t, "c", 0.0));
        assert!(add(&mut t, "d", 0.0));
        assert!(!add(&mut t, "a", 0.0), "known workloads keep their series");
        let overflow = &t.entries[&("GPU-0".to_string(), labels(OVERFLOW))];
        assert_eq!(overflow.energy, Joules(2.0));
        assert_eq!(t.entries.len(), 3);
    }
}
