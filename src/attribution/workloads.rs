//! The running totals per workload and GPU, with the two protections of Prometheus: workloads
//! that ended are dropped after a retention period, and past a cap on series new workloads are
//! counted in an overflow bucket.
//!
//! GPU UUIDs and label values are shared (`Arc`), so adding to a known workload allocates
//! nothing, and the snapshot of the table copies pointers, not strings. Each GPU keeps its
//! workloads in a vector with a sorted index beside it; [`Table::add`] returns where the
//! workload sits, and a caller that hands that position back the next sample skips the sorted
//! lookup (string comparisons, the largest cost of a sample with many workloads). A position is
//! only a hint: it is used when the workload there has the same label values, else the lookup
//! runs, so a stale one (the vector shrinks when workloads expire) never misdirects energy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::units::{Grams, Joules, Watts};

/// The label value of every workload label of the overflow bucket.
pub const OVERFLOW: &str = "_overflow_";

/// Workload label values, in the configured order.
pub type Labels = Arc<[String]>;

/// One workload's totals on one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
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
    /// When its series started from zero, Unix seconds; `None` when not known (restored from a
    /// state file written before this was kept).
    pub created_unix: Option<f64>,
}

impl Entry {
    /// A workload with nothing yet, created at `now_unix`.
    pub fn new(now_unix: f64) -> Entry {
        Entry {
            energy: Joules(0.0),
            co2e: Grams(0.0),
            power: Watts(0.0),
            active: false,
            last_active_unix: now_unix,
            created_unix: Some(now_unix),
        }
    }
}

impl Entry {
    /// Adds one interval's part, seen at `now_unix`.
    fn add(&mut self, part: Part, now_unix: f64) {
        self.energy += part.energy;
        self.co2e += part.co2e;
        self.power = Watts(self.power.0 + part.power.0);
        self.active = true;
        self.last_active_unix = now_unix;
    }
}

/// One workload's part of one interval on one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part {
    /// Energy.
    pub energy: Joules,
    /// Emissions.
    pub co2e: Grams,
    /// Share of the GPU's power.
    pub power: Watts,
}

/// Energy no workload was present for, on one GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Unattributed {
    /// Energy so far.
    pub energy: Joules,
    /// Emissions so far.
    pub co2e: Grams,
}

/// One GPU's workloads and unattributed totals.
#[derive(Debug, Clone, Default)]
pub struct Gpu {
    /// The GPU's index.
    pub index: u32,
    /// Workload totals, in the order they were added.
    entries: Vec<(Labels, Entry)>,
    /// Position in `entries` of each workload, sorted by label values.
    sorted: BTreeMap<Labels, usize>,
    /// Energy no workload was present for.
    pub unattributed: Unattributed,
}

impl Gpu {
    /// Workload totals, sorted by label values.
    pub fn workloads(&self) -> impl Iterator<Item = (&Labels, &Entry)> {
        self.sorted.values().map(|&at| {
            let (labels, entry) = &self.entries[at];
            (labels, entry)
        })
    }

    /// The totals of workload `labels`.
    pub fn workload(&self, labels: &[String]) -> Option<&Entry> {
        self.sorted.get(labels).map(|&at| &self.entries[at].1)
    }

    /// How many workloads.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no workload.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where workload `labels` sits: `hint` when the workload there has these label values,
    /// else found in the sorted index.
    fn position(&self, labels: &Labels, hint: Option<usize>) -> Option<usize> {
        let hinted = hint.filter(|&at| {
            self.entries
                .get(at)
                .is_some_and(|(l, _)| Arc::ptr_eq(l, labels) || l == labels)
        });
        hinted.or_else(|| self.sorted.get(&**labels).copied())
    }

    /// Adds workload `labels` (not present) with nothing yet; returns its position.
    fn insert(&mut self, labels: Labels, entry: Entry) -> usize {
        let at = self.entries.len();
        self.sorted.insert(labels.clone(), at);
        self.entries.push((labels, entry));
        at
    }

    /// Drops the workloads `keep` refuses; returns how many.
    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, e)| keep(e));
        let dropped = before - self.entries.len();
        if dropped > 0 {
            self.sorted = (self.entries.iter().enumerate())
                .map(|(at, (labels, _))| (labels.clone(), at))
                .collect();
        }
        dropped
    }
}

/// All workloads' totals.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Per GPU UUID, sorted.
    pub gpus: BTreeMap<Arc<str>, Gpu>,
    /// Workload series other than the overflow buckets.
    named: usize,
    /// Workloads counted in an overflow bucket, with when each was last seen.
    folded: HashMap<(Arc<str>, Labels), f64>,
    /// The overflow bucket's label values, by number of labels.
    overflow: HashMap<usize, Labels>,
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
        for (_, e) in self.gpus.values_mut().flat_map(|g| &mut g.entries) {
            e.active = false;
            e.power = Watts(0.0);
        }
    }

    /// Workload series exported now, overflow buckets not counted.
    pub fn named_series(&self) -> usize {
        self.named
    }

    /// Distinct workloads counted in an overflow bucket, live or within the retention.
    pub fn folded_workloads(&self) -> usize {
        self.folded.len()
    }

    /// The shared key of GPU `uuid`: the table's own when known (no allocation), else new.
    fn key(&self, uuid: &str) -> Arc<str> {
        self.gpus
            .get_key_value(uuid)
            .map_or_else(|| Arc::from(uuid), |(k, _)| k.clone())
    }

    /// The GPU `uuid` with index `gpu`, added if new.
    fn gpu(&mut self, uuid: &str, gpu: u32) -> &mut Gpu {
        let key = self.key(uuid);
        let g = self.gpus.entry(key).or_default();
        g.index = gpu;
        g
    }

    /// Adds one interval's `part` to the workload `labels` on GPU `uuid`; a new workload past
    /// the cap goes to the GPU's overflow bucket. `hint` is where the workload sat when last
    /// added to (see the module notes). Returns where it sits now, `None` when it overflowed.
    pub fn add(
        &mut self,
        uuid: &str,
        gpu: u32,
        labels: &Labels,
        part: Part,
        now_unix: f64,
        hint: Option<usize>,
    ) -> Option<usize> {
        // The steady state: a known workload on a known GPU.
        if let Some(g) = self.gpus.get_mut(uuid) {
            if let Some(at) = g.position(labels, hint) {
                g.entries[at].1.add(part, now_unix);
                return Some(at);
            }
        }
        let overflowed = self.named >= self.max_series && !is_overflow(labels);
        let key = if overflowed {
            let bucket = self
                .overflow
                .entry(labels.len())
                .or_insert_with(|| vec![OVERFLOW.to_string(); labels.len()].into())
                .clone();
            self.folded
                .insert((self.key(uuid), labels.clone()), now_unix);
            bucket
        } else {
            labels.clone()
        };
        let named_new = !overflowed && !is_overflow(&key);
        let g = self.gpu(uuid, gpu);
        let (at, fresh) = match g.sorted.get(&*key) {
            Some(&at) => (at, false),
            None => (g.insert(key, Entry::new(now_unix)), true),
        };
        g.entries[at].1.add(part, now_unix);
        if named_new && fresh {
            self.named += 1;
        }
        (!overflowed).then_some(at)
    }

    /// Adds energy no process was present for.
    pub fn add_unattributed(&mut self, uuid: &str, gpu: u32, energy: Joules, co2e: Grams) {
        let u = &mut self.gpu(uuid, gpu).unattributed;
        u.energy += energy;
        u.co2e += co2e;
    }

    /// Puts back a workload's saved totals.
    pub fn restore(&mut self, uuid: &str, gpu: u32, labels: Labels, entry: Entry) {
        let named = !is_overflow(&labels);
        let g = self.gpu(uuid, gpu);
        match g.sorted.get(&*labels) {
            Some(&at) => g.entries[at].1 = entry,
            None => {
                g.insert(labels, entry);
                if named {
                    self.named += 1;
                }
            }
        }
    }

    /// Puts back a GPU's saved unattributed totals.
    pub fn restore_unattributed(&mut self, uuid: &str, gpu: u32, totals: Unattributed) {
        self.gpu(uuid, gpu).unattributed = totals;
    }

    /// Drops workloads that ended more than the retention ago; returns how many.
    pub fn expire(&mut self, now_unix: f64) -> usize {
        let retention = self.retention_s;
        let mut dropped = 0;
        for g in self.gpus.values_mut() {
            dropped += g.retain(|e| e.active || now_unix - e.last_active_unix <= retention);
        }
        if dropped > 0 {
            let workloads = self.gpus.values().flat_map(|g| g.sorted.keys());
            self.named = workloads.filter(|l| !is_overflow(l)).count();
        }
        self.folded.retain(|_, last| now_unix - *last <= retention);
        dropped
    }
}

fn is_overflow(labels: &[String]) -> bool {
    !labels.is_empty() && labels.iter().all(|l| l == OVERFLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &str) -> Labels {
        vec![v.to_string()].into()
    }

    const PART: Part = Part {
        energy: Joules(1.0),
        co2e: Grams(2.0),
        power: Watts(10.0),
    };

    /// Adds [`PART`] to `who`; whether it overflowed.
    fn add(t: &mut Table, who: &str, now: f64) -> bool {
        t.add("GPU-0", 0, &labels(who), PART, now, None).is_none()
    }

    fn entry<'a>(t: &'a Table, who: &str) -> &'a Entry {
        t.gpus["GPU-0"].workload(&labels(who)).expect("workload")
    }

    #[test]
    fn totals_accumulate_and_power_resets_each_sample() {
        let mut t = Table::new(10, 60.0);
        add(&mut t, "alice", 5.0);
        add(&mut t, "alice", 5.0);
        let e = entry(&t, "alice");
        assert_eq!(
            (e.energy, e.co2e, e.power, e.created_unix),
            (Joules(2.0), Grams(4.0), Watts(20.0), Some(5.0))
        );
        t.begin();
        let e = entry(&t, "alice");
        assert_eq!((e.power, e.active), (Watts(0.0), false));
    }

    #[test]
    fn ended_workloads_stay_for_the_retention_then_go() {
        let mut t = Table::new(10, 60.0);
        add(&mut t, "alice", 0.0);
        t.begin();
        assert_eq!(t.expire(60.0), 0);
        assert_eq!(t.named_series(), 1);
        assert_eq!(t.expire(60.5), 1);
        assert!(t.gpus["GPU-0"].is_empty());
        assert_eq!(t.named_series(), 0);
    }

    #[test]
    fn past_the_cap_new_workloads_overflow_and_are_counted() {
        let mut t = Table::new(2, 60.0);
        assert!(!add(&mut t, "a", 0.0));
        assert!(!add(&mut t, "b", 0.0));
        assert!(add(&mut t, "c", 0.0));
        assert!(add(&mut t, "d", 0.0));
        assert!(add(&mut t, "d", 1.0));
        assert!(!add(&mut t, "a", 0.0), "known workloads keep their series");
        assert_eq!(entry(&t, OVERFLOW).energy, Joules(3.0));
        assert_eq!(t.gpus["GPU-0"].len(), 3);
        assert_eq!((t.named_series(), t.folded_workloads()), (2, 2));
        t.begin();
        t.expire(60.5);
        assert_eq!(t.folded_workloads(), 1, "c was last seen at 0, d at 1");
        t.expire(61.5);
        assert_eq!((t.named_series(), t.folded_workloads()), (0, 0));
        assert!(
            !add(&mut t, "e", 62.0),
            "room again once the others expired"
        );
    }

    #[test]
    fn a_position_hint_is_only_taken_when_it_holds_the_same_workload() {
        let mut t = Table::new(10, 60.0);
        let (a, b) = (labels("a"), labels("b"));
        let at_a = t.add("GPU-0", 0, &a, PART, 0.0, None);
        let at_b = t.add("GPU-0", 0, &b, PART, 5.0, None);
        assert_eq!((at_a, at_b), (Some(0), Some(1)));
        assert_eq!(t.add("GPU-0", 0, &b, PART, 5.0, at_a), at_b, "a's place");
        assert_eq!(t.add("GPU-0", 0, &b, PART, 5.0, Some(7)), at_b, "no place");
        let equal = labels("b");
        assert_eq!(
            t.add("GPU-0", 0, &equal, PART, 5.0, at_b),
            at_b,
            "equal values"
        );
        t.begin();
        t.expire(61.0);
        // `a` expired, so `b` moved to 0 and its old hint points past the end.
        assert_eq!(t.add("GPU-0", 0, &b, PART, 61.0, at_b), Some(0));
        assert_eq!(entry(&t, "b").energy, Joules(5.0), "every part landed on b");
        assert!(t.gpus["GPU-0"].workload(&a).is_none());
        // The same labels on another GPU are another workload.
        assert_eq!(t.add("GPU-1", 1, &b, PART, 61.0, Some(0)), Some(0));
        assert_eq!(entry(&t, "b").energy, Joules(5.0));
        let on_1 = t.gpus["GPU-1"].workload(&b).map(|e| e.energy);
        assert_eq!(on_1, Some(Joules(1.0)));
    }
}
