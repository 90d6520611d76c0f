//! Who used the energy: each sample's device energy and CO2e split among the workloads on the
//! GPU, with exact conservation (Σ workloads + unattributed = device).
//!
//! - [`split`]: the pure split policy (SM-utilization shares, else equal shares);
//! - [`cgroup`], [`identity`]: who a PID is (user, container, pod UID and QoS, Slurm job);
//! - [`kubernetes`]: pod names and namespaces from the kubelet's pod-resources API;
//! - [`workloads`]: running totals per workload, retention and the series cap.
//!
//! The [`Attributor`] runs on the sampler thread: identities are resolved once per PID and
//! forgotten when the PID leaves every GPU; the Kubernetes index is only read, never fetched.

pub mod cgroup;
pub mod identity;
pub mod kubernetes;
pub mod split;
pub mod workloads;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tracing::{debug, warn};

use crate::backend::{DeviceInfo, ProcessUse};
use crate::units::{Grams, Joules, Watts};
use identity::{Identity, Resolver};
use kubernetes::{PodView, PodViews};
use workloads::{Entry, Table, Unattributed};

/// A workload label, chosen with `--attribution.labels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Kubernetes container name (or short container ID).
    Container,
    /// Kubernetes namespace.
    Namespace,
    /// Kubernetes pod name (or pod UID when the pod-resources API is unreachable).
    Pod,
    /// Slurm job ID.
    SlurmJob,
    /// Owner of the process.
    User,
}

impl Label {
    /// Every label, sorted by name.
    pub const ALL: [Label; 5] = [
        Label::Container,
        Label::Namespace,
        Label::Pod,
        Label::SlurmJob,
        Label::User,
    ];

    /// The label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Container => "container",
            Label::Namespace => "namespace",
            Label::Pod => "pod",
            Label::SlurmJob => "slurm_job",
            Label::User => "user",
        }
    }

    /// The label called `name`.
    pub fn parse(name: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

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
    pub uuid: String,
    /// Label values, in the order of [`AttributionSnapshot::labels`].
    pub labels: Vec<String>,
    /// Energy so far.
    pub energy: Joules,
    /// Emissions so far.
    pub co2e: Grams,
    /// Share of the GPU's power at the latest sample; `None` once the workload ended.
    pub power: Option<Watts>,
    /// When one of its processes was last seen, Unix seconds.
    pub last_active_unix: f64,
}

/// Unattributed totals of one GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct UnattributedSnapshot {
    /// GPU index.
    pub gpu: u32,
    /// GPU UUID.
    pub uuid: String,
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
}

/// Splits device energy among workloads, sample after sample.
pub struct Attributor {
    labels: Vec<Label>,
    resolver: Box<dyn Resolver>,
    cache: HashMap<u32, Identity>,
    present: HashSet<u32>,
    pods: Option<PodViews>,
    view: PodView,
    table: Table,
}

impl Attributor {
    /// An attributor resolving PIDs with `resolver` and naming pods from `pods`, if given.
    pub fn new(settings: &Settings, resolver: Box<dyn Resolver>, pods: Option<PodViews>) -> Self {
        Attributor {
            labels: settings.labels.clone(),
            resolver,
            cache: HashMap::new(),
            present: HashSet::new(),
            pods,
            view: PodView::default(),
            table: Table::new(settings.max_series, settings.retention.as_secs_f64()),
        }
    }

    /// Starts a sample.
    pub fn begin(&mut self) {
        self.table.begin();
        self.present.clear();
        if let Some(pods) = &self.pods {
            self.view = pods.borrow().clone();
        }
    }

    /// Splits the energy and emissions GPU `gpu` added this interval among `processes`
    /// (`None`: unknown, which counts as no process), and its latest `power` likewise.
    pub fn account(
        &mut self,
        gpu: &DeviceInfo,
        processes: Option<&[ProcessUse]>,
        energy: Joules,
        co2e: Grams,
        power: Option<Watts>,
        now_unix: f64,
    ) {
        let processes = processes.unwrap_or_default();
        let sm: Vec<Option<f64>> = processes.iter().map(|p| p.sm_utilization).collect();
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
            let identity = self
                .cache
                .entry(process.pid)
                .or_insert_with(|| resolver.resolve(process.pid));
            let labels = label_values(&self.labels, identity, &self.view, &gpu.uuid);
            let overflowed = self.table.add(
                &gpu.uuid,
                gpu.index,
                labels,
                Joules(energy_parts[i]),
                Grams(co2e_parts[i]),
                Watts(watts * shares[i]),
                now_unix,
            );
            if overflowed {
                debug!(uuid = %gpu.uuid, pid = process.pid, "Workload series cap reached; counted in the overflow bucket");
            }
        }
    }

    /// Ends a sample: forgets PIDs that left every GPU, drops workloads past their retention,
    /// and returns what to export.
    pub fn finish(&mut self, now_unix: f64) -> AttributionSnapshot {
        let present = &self.present;
        self.cache.retain(|pid, _| present.contains(pid));
        let expired = self.table.expire(now_unix);
        if expired > 0 {
            debug!(expired, "Workloads past their retention no longer exported");
        }
        AttributionSnapshot {
            labels: self.labels.iter().map(|l| l.as_str()).collect(),
            workloads: self
                .table
                .entries
                .iter()
                .map(|((uuid, labels), e)| WorkloadSnapshot {
                    gpu: e.gpu,
                    uuid: uuid.clone(),
                    labels: labels.clone(),
                    energy: e.energy,
                    co2e: e.co2e,
                    power: e.active.then_some(e.power),
                    last_active_unix: e.last_active_unix,
                })
                .collect(),
            unattributed: self
                .table
                .unattributed
                .iter()
                .map(|(uuid, u)| UnattributedSnapshot {
                    gpu: u.gpu,
                    uuid: uuid.clone(),
                    energy: u.energy,
                    co2e: u.co2e,
                })
                .collect(),
            kubernetes_up: self.pods.as_ref().map(|_| self.view.up),
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
                self.table.entries.insert(
                    (w.uuid.clone(), w.labels.clone()),
                    Entry {
                        gpu: w.gpu,
                        energy: w.energy,
                        co2e: w.co2e,
                        power: Watts(0.0),
                        active: false,
                        last_active_unix: w.last_active_unix,
                    },
                );
            }
        }
        for u in &saved.unattributed {
            self.table.unattributed.insert(
                u.uuid.clone(),
                Unattributed {
                    gpu: u.gpu,
                    energy: u.energy,
                    co2e: u.co2e,
                },
            );
        }
    }
}

/// Characters of a container ID kept in the `container` label when the name is unknown.
const SHORT_ID: usize = 12;

fn label_values(labels: &[Label], id: &Identity, view: &PodView, gpu_uuid: &str) -> Vec<String> {
    let pod = id
        .cgroup
        .pod_uid
        .as_ref()
        .map(|uid| (uid, view.index.sole_pod(gpu_uuid)));
    labels
        .iter()
        .map(|label| match label {
            Label::User => id.user.clone(),
            Label::Namespace => pod
                .and_then(|(_, named)| named.map(|(ns, _, _)| ns.to_string()))
                .unwrap_or_default(),
            Label::Pod => pod
                .map(|(uid, named)| named.map_or_else(|| uid.clone(), |(_, p, _)| p.to_string()))
                .unwrap_or_default(),
            Label::Container => pod
                .and_then(|(_, named)| named.and_then(|(_, _, c)| c.map(str::to_string)))
                .or_else(|| {
                    id.cgroup
                        .container_id
                        .as_ref()
                        .map(|c| c[..SHORT_ID.min(c.len())].to_string())
                })
                .unwrap_or_default(),
            Label::SlurmJob => id.cgroup.slurm_job.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
