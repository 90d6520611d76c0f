//! The MIG families: each GPU instance's share of its GPU's energy, CO2e and power, its
//! activity, the unallocated rest, the instances' static facts, and failed MIG reads. Only
//! MIG-enabled GPUs get instance series (the error counter also covers GPUs whose MIG state
//! could not be read).

use prometheus::proto::MetricType::{COUNTER, GAUGE};

use super::metrics::Spec;
use super::Families;
use crate::attribution::kubernetes::PodIndex;
use crate::energy::mig::MigSnapshot;
use crate::units::Joules;

const INSTANCE: &[&str] = &["gpu", "gpu_instance", "uuid"];
const GPU: &[&str] = &["gpu", "uuid"];

const fn spec(
    name: &'static str,
    kind: prometheus::proto::MetricType,
    labels: &'static [&'static str],
    help: &'static str,
) -> Spec {
    Spec {
        name,
        kind,
        labels,
        help,
    }
}

/// `gpu_mig_energy_kwh_total`.
pub const MIG_ENERGY: Spec = spec("gpu_mig_energy_kwh_total", COUNTER, INSTANCE,
    "MIG GPU instance's share of its GPU's energy in kWh: each interval's energy split by SM count x activity (all idle: by SM count, the rest unallocated). With gpu_mig_unallocated_energy_kwh_total it sums to the GPU's energy since MIG was seen. Never decreases.");
/// `gpu_mig_co2e_grams_total`.
pub const MIG_CO2E: Spec = spec("gpu_mig_co2e_grams_total", COUNTER, INSTANCE,
    "Emissions of gpu_mig_energy_kwh_total in grams CO2e, split interval by interval like the energy.");
/// `gpu_mig_power_watts`.
pub const MIG_POWER: Spec = spec("gpu_mig_power_watts", GAUGE, INSTANCE,
    "MIG GPU instance's share of its GPU's latest power in watts (same share as its energy in the latest interval).");
/// `gpu_mig_activity_ratio`.
pub const MIG_ACTIVITY: Spec = spec("gpu_mig_activity_ratio", GAUGE, INSTANCE,
    "MIG GPU instance's activity over the latest interval, 0 to 1: GPM graphics utilization (Hopper and newer), else 1 with a compute process and 0 without.");
/// `gpu_mig_unallocated_energy_kwh_total`.
pub const MIG_UNALLOCATED_ENERGY: Spec = spec("gpu_mig_unallocated_energy_kwh_total", COUNTER, GPU,
    "Energy of a MIG GPU in no instance's share, in kWh: in intervals where every instance was idle, the share of SMs in no instance (and every interval whose instances could not be read).");
/// `gpu_mig_unallocated_co2e_grams_total`.
pub const MIG_UNALLOCATED_CO2E: Spec = spec(
    "gpu_mig_unallocated_co2e_grams_total",
    COUNTER,
    GPU,
    "Emissions of gpu_mig_unallocated_energy_kwh_total in grams CO2e.",
);
/// `gpu_mig_info`.
pub const MIG_INFO: Spec = spec("gpu_mig_info", GAUGE,
    &["compute_instance", "gpu", "gpu_instance", "mig_uuid", "profile", "uuid"],
    "A MIG device (compute instance) that exists now; always 1. mig_uuid is the ID the Kubernetes device plugin reports.");
/// `gpu_mig_sample_errors_total`.
pub const MIG_ERRORS: Spec = spec("gpu_mig_sample_errors_total", COUNTER, &["gpu", "kind", "uuid"],
    "Failed MIG reads. kind=mig_state: the MIG state or instance list could not be read (the GPU is exported without MIG series, or the interval's energy is unallocated); kind=gpm: an instance's GPM sample failed (its activity came from its processes).");

/// `gpu_mig_kubernetes_allocation_info`.
pub const MIG_ALLOCATION: Spec = spec("gpu_mig_kubernetes_allocation_info", GAUGE,
    &["container", "gpu", "gpu_instance", "namespace", "pod", "uuid"],
    "A container the kubelet gave one of this MIG GPU instance's devices (the NVIDIA device plugin's MIG UUID, single and mixed strategies); always 1. Who was given the instance, not who used it.");

/// Every MIG family, for the renderer's descriptors.
pub const SPECS: [&Spec; 9] = [
    &MIG_ENERGY,
    &MIG_CO2E,
    &MIG_POWER,
    &MIG_ACTIVITY,
    &MIG_UNALLOCATED_ENERGY,
    &MIG_UNALLOCATED_CO2E,
    &MIG_INFO,
    &MIG_ERRORS,
    &MIG_ALLOCATION,
];

/// Adds the MIG families of `mig`; with `pods` (pod-resources), who was given each instance.
pub(super) fn render(mig: &MigSnapshot, pods: Option<&PodIndex>, out: &mut Families) {
    for g in &mig.gpus {
        let index = g.gpu.to_string();
        let id: [&str; 2] = [&index, &g.uuid];
        let kwh = |j: f64| Joules(j).kwh();
        out.add(&MIG_UNALLOCATED_ENERGY, &id, kwh(g.unallocated_energy_j));
        out.add(&MIG_UNALLOCATED_CO2E, &id, g.unallocated_co2e_g);
        for i in &g.instances {
            let gi = i.gpu_instance.to_string();
            let labels: [&str; 3] = [&index, &gi, &g.uuid];
            out.add(&MIG_ENERGY, &labels, kwh(i.energy_j));
            out.add(&MIG_CO2E, &labels, i.co2e_g);
            if let Some(p) = i.power_w {
                out.add(&MIG_POWER, &labels, p);
            }
            if let Some(a) = i.activity {
                out.add(&MIG_ACTIVITY, &labels, a);
            }
            for d in &i.devices {
                let ci = d.compute_instance.to_string();
                let info = [&ci, &index, &gi, &d.mig_uuid, &d.profile, &g.uuid];
                out.add(&MIG_INFO, &info.map(|s| s.as_str()), 1.0);
            }
            let mig_uuids: Vec<String> = i.devices.iter().map(|d| d.mig_uuid.clone()).collect();
            for h in pods.iter().flat_map(|p| p.holders_of(&mig_uuids)) {
                let values = [&h.container, &index, &gi, &h.namespace, &h.pod, &g.uuid];
                out.add(&MIG_ALLOCATION, &values.map(|s| s.as_str()), 1.0);
            }
        }
    }
    for (uuid, e) in &mig.errors {
        let index = e.gpu.to_string();
        out.add(&MIG_ERRORS, &[&index, "mig_state", uuid], e.state as f64);
        out.add(&MIG_ERRORS, &[&index, "gpm", uuid], e.gpm as f64);
    }
}
