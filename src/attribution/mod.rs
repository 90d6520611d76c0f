//! Who used the energy: each sample's device energy and CO2e split among the workloads on the
//! GPU, with exact conservation (Σ workloads + unattributed = device).
//!
//! - [`split`]: the pure split policy (SM-utilization shares, else equal shares);
//! - [`cgroup`], [`identity`], [`users`]: who a PID is (user through NSS or passwd, container,
//!   pod UID and QoS, Slurm job);
//! - [`labels`]: the workload labels and a process's values of them (its own pod, never the
//!   GPU's holder);
//! - [`recent`]: the latest per-process SM samples, reused between NVML's sample periods;
//! - [`kubernetes`]: pod and container names (CRI, log directories) and GPU assignments
//!   (kubelet pod-resources);
//! - [`workloads`]: running totals per workload, retention and the series cap.
//!
//! The [`Attributor`] runs on the sampler thread: identities are resolved once per PID and
//! forgotten when the PID leaves every GPU; the Kubernetes view is only read, never fetched.
//!
//! Naming policy: namespace, pod and container always come from the process's *own* cgroup
//! (pod UID, container ID) looked up in the runtime's names, never from the pod a GPU was
//! assigned to, so a process can't be billed to another team by running on its GPU.

pub mod cgroup;
pub mod demo;
pub mod identity;
pub mod kubernetes;
pub mod labels;
pub mod mig;
pub mod pids;
pub mod recent;
pub mod split;
pub mod users;
pub mod workloads;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::backend::{DeviceInfo, ProcessUse};
use crate::energy::Step;
use crate::units::{Grams, Joules, Watts};
use identity::{Identity, Resolver};
use kubernetes::{PodIndex, PodView, PodViews};
pub use labels::Label;
use labels::{label_values, must_hold};
use pids::{PidMap, PidSet};
use recent::RecentShares;
use workloads::{Entry, Labels, Part, Table, Unattributed};

/// `--attribution.*` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Workload labels, sorted by name, without duplicates.
    pub labels: Vec<Label>,
    /// How long a workload that ended stays exported.
    pub retention: Duration,
    /// Most workload series; more go to the overflow bucket.
    pub max_series: usize,
}

impl Default for Settings {
    /// The flags' defaults: `user,namespace,pod,slurm_job`, 10 minutes, 2000 series.
    fn default() -> Settings {
        Settings {
            labels: vec![Label::Namespace, Label::Pod, Label::SlurmJob, Label::User],
            retention: Duration::from_secs(600),
            max_series: 2000,
        }
    }
}

/// One workload on one GPU, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSnapshot {
    /// GPU index.
    pub gpu: u32,
    /// GPU UUID.
    pub uuid: Arc<str>,
    /// Label values, in the order of [`AttributionSnapshot::labels`].
    pub labels: Labels,
    /// Energy so far.
    pub energy: Joules,
    /// Emissions so far.
    pub co2e: Grams,
    /// Share of the GPU's power at the latest sample; `None` once the workload ended.
    pub power: Option<Watts>,
    /// When one of its processes was last seen, Unix seconds.
    pub last_active_unix: f64,
    /// When its series started from zero (OpenMetrics `_created`), Unix seconds; `None` when
    /// not known.
    pub created_unix: Option<f64>,
}

/// Unattributed totals of one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct UnattributedSnapshot {
    /// GPU index.
    pub gpu: u32,
    /// GPU UUID.
    pub uuid: Arc<str>,
    /// Energy no process was present for.
    pub energy: Joules,
    /// Its emissions.
    pub co2e: Grams,
}

/// Everything attribution adds to a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributionSnapshot {
    /// The workload label names, sorted.
    pub labels: Vec<&'static str>,
    /// Workloads, sorted by GPU UUID then label values.
    pub workloads: Vec<WorkloadSnapshot>,
    /// Per GPU.
    pub unattributed: Vec<UnattributedSnapshot>,
    /// Whether the pod-resources API answered at the latest refresh; `None` when not used.
    pub kubernetes_up: Option<bool>,
    /// Workload series other than the overflow buckets.
    pub named_series: usize,
    /// `--attribution.max-series`.
    pub max_series: usize,
    /// Workloads counted in an overflow bucket (live, or ended within the retention).
    pub folded_workloads: usize,
    /// Which pods each GPU was given, from pod-resources (empty when not used or down).
    pub allocations: Arc<PodIndex>,
}

/// A PID's identity and, once computed, its label values with the [`PodView`] generation
/// they were computed from, and where its workload sits in the table on each GPU it used (by
/// GPU index; a hint for [`Table::add`]).
struct Known {
    identity: Identity,
    labels: Option<(u64, Labels)>,
    positions: Vec<(u32, usize)>,
}

/// Splits device energy among workloads, sample after sample.
pub struct Attributor {
    labels: Vec<Label>,
    resolver: Box<dyn Resolver>,
    cache: PidMap<Known>,
    present: PidSet,
    pods: Option<PodViews>,
    view: PodView,
    /// Counts changes of `view`, so cached label values know when they are stale.
    generation: u64,
    max_series: usize,
    table: Table,
    recent: RecentShares,
    held: HashMap<(String, u32), Held>,
    hold_until_unix: Option<f64>,
}

/// Energy of a pod process held back until its pod can be named (see [`HOLD_S`]).
struct Held {
    gpu: u32,
    identity: Identity,
    energy: Joules,
    co2e: Grams,
}

/// How long after start energy of processes in not-yet-named pods is held back rather than
/// exported under a pod-UID-only series, waiting for the first CRI/log-directory answer. Held
/// energy is added to the workload once named (or, past this, under the pod UID), so totals
/// are exact; only for this long after start can Σ parts trail the device counter.
pub const HOLD_S: f64 = 5.0;

impl Attributor {
    /// An attributor resolving PIDs with `resolver` and naming pods from `pods`, if given.
    pub fn new(
        settings: &Settings,
        resolver: Box<dyn Resolver>,
        mut pods: Option<PodViews>,
    ) -> Self {
        let view = pods
            .as_mut()
            .map(|p| p.borrow_and_update().clone())
            .unwrap_or_default();
        Attributor {
            labels: settings.labels.clone(),
            resolver,
            cache: PidMap::default(),
            present: PidSet::default(),
            pods,
            view,
            generation: 0,
            max_series: settings.max_series,
            table: Table::new(settings.max_series, settings.retention.as_secs_f64()),
            recent: RecentShares::default(),
            held: HashMap::new(),
            hold_until_unix: None,
        }
    }

    /// Starts a sample.
    pub fn begin(&mut self) {
        self.table.begin();
        self.present.clear();
        if let Some(pods) = &mut self.pods {
            if pods.has_changed().unwrap_or(false) {
                self.view = pods.borrow_and_update().clone();
                self.generation += 1;
            }
        }
    }

    /// Splits the energy and emissions GPU `gpu` added this interval (`step`) among `processes`
    /// (`None`: unknown, which counts as no process), and its latest `power` likewise.
    pub fn account(
        &mut self,
        gpu: &DeviceInfo,
        processes: Option<&[ProcessUse]>,
        step: Step,
        power: Option<Watts>,
        now_unix: f64,
    ) {
        let (energy, co2e) = (step.energy, step.co2e);
        let hold_until = *self.hold_until_unix.get_or_insert(now_unix + HOLD_S);
        self.release_held(now_unix, hold_until);
        // Every GPU has its unattributed series from the start, 0 while all is attributed.
        self.table
            .add_unattributed(&gpu.uuid, gpu.index, Joules(0.0), Grams(0.0));
        let processes = processes.unwrap_or_default();
        let pids: Vec<u32> = processes.iter().map(|p| p.pid).collect();
        let sm = processes.iter().map(|p| p.sm_utilization).collect();
        let sm = self.recent.fill(&gpu.uuid, &pids, sm, now_unix);
        let (shares, basis) = split::shares(&sm);
        if shares.is_empty() {
            self.table
                .add_unattributed(&gpu.uuid, gpu.index, energy, co2e);
            return;
        }
        debug!(uuid = %gpu.uuid, processes = processes.len(), ?basis, "Attributing");
        let energy_parts = split::split(energy.0, &shares);
        let co2e_parts = split::split(co2e.0, &shares);
        let watts = power.map_or(0.0, |w| w.0);
        for (i, process) in processes.iter().enumerate() {
            self.present.insert(process.pid);
            let resolver = &mut self.resolver;
            let known = self.cache.entry(process.pid).or_insert_with(|| Known {
                identity: resolver.resolve(process.pid),
                labels: None,
                positions: Vec::new(),
            });
            let identity = &known.identity;
            let (energy, co2e) = (Joules(energy_parts[i]), Grams(co2e_parts[i]));
            let hold = self.pods.is_some() && must_hold(&self.view, identity, now_unix, hold_until);
            if hold {
                let held = self
                    .held
                    .entry((gpu.uuid.clone(), process.pid))
                    .or_insert_with(|| Held {
                        gpu: gpu.index,
                        identity: identity.clone(),
                        energy: Joules(0.0),
                        co2e: Grams(0.0),
                    });
                held.energy += energy;
                held.co2e += co2e;
                continue;
            }
            let labels = match &known.labels {
                Some((generation, labels)) if *generation == self.generation => labels,
                _ => {
                    let values = label_values(&self.labels, identity, &self.view, &gpu.uuid);
                    &known.labels.insert((self.generation, values.into())).1
                }
            };
            let part = Part {
                energy,
                co2e,
                power: Watts(watts * shares[i]),
            };
            let hint = known.positions.iter().find(|(g, _)| *g == gpu.index);
            let hint = hint.map(|(_, at)| *at);
            let at = self
                .table
                .add(&gpu.uuid, gpu.index, labels, part, now_unix, hint);
            match at {
                Some(at) if hint != Some(at) => {
                    known.positions.retain(|(g, _)| *g != gpu.index);
                    known.positions.push((gpu.index, at));
                }
                Some(_) => {}
                None => {
                    debug!(uuid = %gpu.uuid, pid = process.pid, "Workload series cap reached; counted in the overflow bucket");
                }
            }
        }
    }

    /// Adds held energy to its workloads once the sources answered or the hold expired.
    fn release_held(&mut self, now_unix: f64, hold_until: f64) {
        if self.held.is_empty() || (!self.view.answered && now_unix < hold_until) {
            return;
        }
        for ((uuid, _), h) in std::mem::take(&mut self.held) {
            let labels = label_values(&self.labels, &h.identity, &self.view, &uuid).into();
            let part = Part {
                energy: h.energy,
                co2e: h.co2e,
                power: Watts(0.0),
            };
            self.table.add(&uuid, h.gpu, &labels, part, now_unix, None);
        }
    }

    /// Ends a sample: forgets PIDs that left every GPU, drops workloads past their retention,
    /// and returns what to export.
    pub fn finish(&mut self, now_unix: f64) -> AttributionSnapshot {
        // Every present PID is cached, so equal sizes mean no cached PID has left.
        if self.cache.len() != self.present.len() {
            let present = &self.present;
            self.cache.retain(|pid, _| present.contains(pid));
        }
        let expired = self.table.expire(now_unix);
        if expired > 0 {
            debug!(expired, "Workloads past their retention no longer exported");
        }
        let gpus = &self.table.gpus;
        AttributionSnapshot {
            labels: self.labels.iter().map(|l| l.as_str()).collect(),
            workloads: gpus
                .iter()
                .flat_map(|(uuid, g)| {
                    g.workloads().map(move |(labels, e)| WorkloadSnapshot {
                        gpu: g.index,
                        uuid: uuid.clone(),
                        labels: labels.clone(),
                        energy: e.energy,
                        co2e: e.co2e,
                        power: e.active.then_some(e.power),
                        last_active_unix: e.last_active_unix,
                        created_unix: e.created_unix,
                    })
                })
                .collect(),
            unattributed: gpus
                .iter()
                .map(|(uuid, g)| UnattributedSnapshot {
                    gpu: g.index,
                    uuid: uuid.clone(),
                    energy: g.unattributed.energy,
                    co2e: g.unattributed.co2e,
                })
                .collect(),
            kubernetes_up: self.pods.as_ref().and(self.view.up),
            named_series: self.table.named_series(),
            max_series: self.max_series,
            folded_workloads: self.table.folded_workloads(),
            allocations: self.view.index.clone(),
        }
    }

    /// Continues from saved totals. Workloads saved under another label set than the one
    /// configured can't be mapped and are dropped with a warning; the unattributed totals
    /// always resume.
    pub fn restore(&mut self, saved: &AttributionSnapshot) {
        let names: Vec<&str> = self.labels.iter().map(|l| l.as_str()).collect();
        if saved.labels != names && !saved.workloads.is_empty() {
            warn!(saved = ?saved.labels, configured = ?names, "Saved workload totals use other --attribution.labels; not restoring them");
        } else {
            for w in &saved.workloads {
                let entry = Entry {
                    energy: w.energy,
                    co2e: w.co2e,
                    power: Watts(0.0),
                    active: false,
                    last_active_unix: w.last_active_unix,
                    created_unix: w.created_unix,
                };
                self.table.restore(&w.uuid, w.gpu, w.labels.clone(), entry);
            }
        }
        for u in &saved.unattributed {
            let totals = Unattributed {
                energy: u.energy,
                co2e: u.co2e,
            };
            self.table.restore_unattributed(&u.uuid, u.gpu, totals);
        }
    }
}

#[cfg(test)]
mod tests;
