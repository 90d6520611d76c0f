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

/// Counters that live as long as the process: created when it started.
const PER_PROCESS: [&str; 8] = [
    "gpu_carbon_exporter_sample_errors_total",
    "gpu_carbon_exporter_host_sample_errors_total",
    "gpu_carbon_intensity_fetch_errors_total",
    "gpu_carbon_exporter_state_writes_total",
    "gpu_carbon_exporter_state_write_failures_total",
    "gpu_carbon_exporter_state_written_bytes_total",
    "gpu_carbon_exporter_state_set_aside_total",
    "process_cpu_seconds_total",
];

/// Creation times looked up by family and labels.
pub struct Created {
    devices: HashMap<String, f64>,
    hosts: HashMap<String, f64>,
    /// The workload label names, in the order of the keys' values.
    workload_labels: Vec<&'static str>,
    workloads: HashMap<(String, Vec<String>), f64>,
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
        Created {
            devices,
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
        } else if PER_PROCESS.contains(&family) {
            Some(self.process_started_unix)
        } else {
            None
        }
    }
}
