//! When each counter series started from zero, for OpenMetrics `_created`. With it, Prometheus
//! (with created-timestamp handling on) knows a series that appears mid-window began at zero
//! at that time, so `increase()` no longer misses its first value.
//!
//! A `_created` that is too late would be worse than none: a ledger counter restored with its
//! totals but given the restart as its creation would read as a jump from zero to the whole
//! total. So a series gets one only where the time is known for sure; a family not listed here
//! gets none, whatever is added later.

use std::collections::HashMap;

use prometheus::proto::LabelPair;

use crate::backend::DeviceKind;
use crate::snapshot::Snapshot;

/// Device families, keyed by the `uuid` label: created with the device's ledger entry.
const DEVICE: [&str; 7] = [
    "gpu_energy_kwh_total",
    "gpu_idle_energy_kwh_total",
    "gpu_co2e_grams_total",
    "gpu_embodied_co2e_grams_total",
    "gpu_energy_hardware_resets_total",
    "gpu_unattributed_energy_kwh_total",
    "gpu_unattributed_co2e_grams_total",
];

/// Host-domain families, keyed by the `domain` label.
const HOST: [&str; 2] = ["gpu_host_energy_kwh_total", "gpu_host_co2e_grams_total"];

/// Workload families, keyed by `uuid` and the workload labels: created when the workload's
/// first energy was counted (kept in the state file).
const WORKLOAD: [&str; 2] = [
    "gpu_workload_energy_kwh_total",
    "gpu_workload_co2e_grams_total",
];

/// MIG instance families, keyed by `uuid` and `gpu_instance`: created when the instance was
/// first accounted (kept in the state file).
const MIG_INSTANCE: [&str; 2] = ["gpu_mig_energy_kwh_total", "gpu_mig_co2e_grams_total"];

/// A MIG GPU's unallocated families, keyed by `uuid`: created when the GPU was first accounted
/// in MIG mode.
const MIG_UNALLOCATED: [&str; 2] = [
    "gpu_mig_unallocated_energy_kwh_total",
    "gpu_mig_unallocated_co2e_grams_total",
];

/// Counters that live as long as the process: created when it started.
const PER_PROCESS: [&str; 12] = [
    "gpu_carbon_exporter_sample_errors_total",
    "gpu_carbon_exporter_skipped_samples_total",
    "gpu_carbon_exporter_host_sample_errors_total",
    "gpu_carbon_intensity_fetch_errors_total",
    "gpu_carbon_exporter_state_writes_total",
    "gpu_carbon_exporter_state_write_failures_total",
    "gpu_carbon_exporter_state_written_bytes_total",
    "gpu_carbon_exporter_state_set_aside_total",
    "process_cpu_seconds_total",
    "gpu_mig_sample_errors_total",
    "gpu_carbon_exporter_collector_child_restarts_total",
    "gpu_carbon_exporter_collector_malformed_samples_total",
];

/// Creation times looked up by family and labels.
pub struct Created {
    devices: HashMap<String, f64>,
    hosts: HashMap<String, f64>,
    /// The workload label names, in the order of the keys' values.
    workload_labels: Vec<&'static str>,
    workloads: HashMap<(String, Vec<String>), f64>,
    mig_instances: HashMap<(String, String), f64>,
    mig_gpus: HashMap<String, f64>,
    process_started_unix: f64,
}

impl Created {
    /// The creation times of `snapshot`'s series; per-process counters began at
    /// `process_started_unix`.
    pub fn of(snapshot: Option<&Snapshot>, process_started_unix: f64) -> Created {
        let mut devices = HashMap::new();
        let mut hosts = HashMap::new();
        for d in snapshot.iter().flat_map(|s| &s.devices) {
            let Some(at) = d.created_unix else { continue };
            match d.info.kind {
                DeviceKind::Gpu => devices.insert(d.info.uuid.clone(), at),
                DeviceKind::HostDomain => hosts.insert(d.info.name.clone(), at),
            };
        }
        let attribution = snapshot.and_then(|s| s.attribution.as_ref());
        let workloads = attribution
            .iter()
            .flat_map(|a| &a.workloads)
            .filter_map(|w| {
                let at = w.created_unix?;
                Some(((w.uuid.to_string(), w.labels.to_vec()), at))
            })
            .collect();
        let mig = snapshot.map(|s| s.mig.gpus.as_slice()).unwrap_or_default();
        let mig_gpus = mig
            .iter()
            .filter_map(|g| Some((g.uuid.clone(), g.created_unix?)))
            .collect();
        let mig_instances = mig
            .iter()
            .flat_map(|g| {
                g.instances.iter().filter_map(|i| {
                    Some((
                        (g.uuid.clone(), i.gpu_instance.to_string()),
                        i.created_unix?,
                    ))
                })
            })
            .collect();
        Created {
            devices,
            mig_instances,
            mig_gpus,
            hosts,
            workload_labels: attribution.map(|a| a.labels.clone()).unwrap_or_default(),
            workloads,
            process_started_unix,
        }
    }

    /// The `_created` time of the counter series `family{labels}`, if known.
    pub fn get(&self, family: &str, labels: &[LabelPair]) -> Option<f64> {
        let label = |name: &str| labels.iter().find(|l| l.name() == name).map(|l| l.value());
        if DEVICE.contains(&family) {
            label("uuid").and_then(|u| self.devices.get(u).copied())
        } else if HOST.contains(&family) {
            label("domain").and_then(|d| self.hosts.get(d).copied())
        } else if WORKLOAD.contains(&family) {
            let uuid = label("uuid")?.to_string();
            let values: Option<Vec<String>> = self
                .workload_labels
                .iter()
                .map(|name| label(name).map(str::to_string))
                .collect();
            self.workloads.get(&(uuid, values?)).copied()
        } else if MIG_INSTANCE.contains(&family) {
            let key = (
                label("uuid")?.to_string(),
                label("gpu_instance")?.to_string(),
            );
            self.mig_instances.get(&key).copied()
        } else if MIG_UNALLOCATED.contains(&family) {
            label("uuid").and_then(|u| self.mig_gpus.get(u).copied())
        } else if PER_PROCESS.contains(&family) {
            Some(self.process_started_unix)
        } else {
            None
        }
    }
}
