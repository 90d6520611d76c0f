//! Every metric the exporter defines: name, type, labels and help. The names are the public
//! API (dashboards and rules depend on them); change them only with a migration note.

use prometheus::proto::MetricType::{self, COUNTER, GAUGE};

/// One exported metric.
pub struct Spec {
    /// Metric name, ending in its unit (and `_total` for counters).
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
    /// Label names, sorted.
    pub labels: &'static [&'static str],
    /// HELP text, stating the unit.
    pub help: &'static str,
}

const GPU: &[&str] = &["gpu", "uuid"];
const HOST: &[&str] = &["domain", "energy_source"];

const fn spec(
    name: &'static str,
    kind: MetricType,
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

pub const INFO: Spec = spec("gpu_info", GAUGE, &["energy_source", "gpu", "name", "uuid"],
    "Static facts about a GPU; always 1. energy_source: counter (hardware energy counter), integrated (trapezoid of power readings), estimated (power model of utilization) or none. hwmon GPUs also carry energy_channel: the sensor channel read (card, pkg = GPU package without memory and board, ppt, or energyN/powerN without a label).");
pub const UP: Spec = spec(
    "gpu_up",
    GAUGE,
    GPU,
    "1 if the last sample of this GPU fully succeeded, else 0.",
);
pub const POWER: Spec = spec("gpu_power_watts", GAUGE, GPU,
    "Latest power in watts: the reading (a 1 s average on NVIDIA Ampere and newer), the estimate where energy_source=estimated, or the counter's average over the last sample where no reading exists.");
pub const LIMIT: Spec = spec(
    "gpu_power_limit_watts",
    GAUGE,
    GPU,
    "Enforced power limit in watts.",
);
pub const UTIL: Spec = spec(
    "gpu_utilization_ratio",
    GAUGE,
    GPU,
    "Fraction of the last sample period a kernel was running, 0 to 1.",
);
pub const ENERGY: Spec = spec(
    "gpu_energy_kwh_total",
    COUNTER,
    GPU,
    "Energy drawn by the GPU since the exporter started, in kWh. Never decreases.",
);
pub const IDLE: Spec = spec(
    "gpu_idle_energy_kwh_total",
    COUNTER,
    GPU,
    "Part of gpu_energy_kwh_total drawn in sample intervals that ended at 0 utilization, in kWh.",
);
pub const CO2E: Spec = spec("gpu_co2e_grams_total", COUNTER, GPU,
    "Estimated emissions of the GPU's energy in grams CO2e: energy x PUE x carbon intensity in force at each sample.");
pub const EMBODIED: Spec = spec("gpu_embodied_co2e_grams_total", COUNTER, GPU,
    "Embodied (manufacturing, scope 3) emissions of the GPU amortised linearly over its service life while the exporter runs, in grams CO2e. Separate from gpu_co2e_grams_total (operational, scope 2).");
pub const RESETS: Spec = spec("gpu_energy_hardware_resets_total", COUNTER, GPU,
    "Times the hardware energy counter restarted (driver reload, GPU reset); the exported energy carries on.");
pub const DISCREPANCY: Spec = spec("gpu_energy_discrepancy_ratio", GAUGE, GPU,
    "How far the hardware energy counter disagrees with the trapezoid of the power readings over the same sample intervals in the last 5 minutes: counter energy / integrated energy - 1 (0 = agreement, 0.5 = counter 50 % higher). Only for energy_source=counter.");
pub const INTENSITY: Spec = spec("gpu_carbon_intensity_grams_per_kwh", GAUGE, &["provider", "scope", "signal", "zone"],
    "Carbon intensity of electricity in force, in grams CO2e per kWh. provider: static, electricitymaps, watttime, ukgrid or schedule (static while a live provider falls back); signal: average or marginal; scope: lifecycle or direct.");
pub const INTENSITY_INFO: Spec = spec("gpu_carbon_intensity_info", GAUGE, &["provider", "source", "zone"],
    "Dataset behind the intensity in force (source: flag, a zone-table tag such as owid-ember-2023, electricitymaps, watttime-co2_moer, neso-actual, a schedule file); always 1.");
pub const INTENSITY_UPDATED: Spec = spec("gpu_carbon_intensity_last_update_timestamp_seconds", GAUGE, &[],
    "Unix time of the latest good intensity from the configured provider, as the provider dates it (start of the interval it covers); for a static value, when it was first applied.");
pub const FETCH_ERRORS: Spec = spec("gpu_carbon_intensity_fetch_errors_total", COUNTER, &["provider"],
    "Failed fetches of the configured intensity provider (HTTP errors, timeouts, malformed or out-of-range answers).");
pub const FALLBACK: Spec = spec("gpu_carbon_intensity_fallback", GAUGE, &[],
    "1 while the intensity in force is a fallback: the last good live value after failed refreshes, or the static value when no live value is younger than --carbon.max-age; else 0.");
pub const PUE: Spec = spec(
    "gpu_pue_ratio",
    GAUGE,
    &[],
    "Power usage effectiveness applied to energy for CO2e.",
);
pub const BUILD: Spec = spec(
    "gpu_carbon_exporter_build_info",
    GAUGE,
    &["revision", "version"],
    "Build facts of the exporter; always 1.",
);
pub const ERRORS: Spec = spec("gpu_carbon_exporter_sample_errors_total", COUNTER, &["gpu", "kind", "uuid"],
    "Failed or rejected GPU readings by kind: device_lost, read_error, implausible_power, implausible_energy.");
pub const HOST_ENERGY: Spec = spec("gpu_host_energy_kwh_total", COUNTER, HOST,
    "Energy of a host domain since the exporter started, in kWh: RAPL's package-N (CPU package) and dram-N (its memory), energy_source=counter; where there is no RAPL, cpu and memory, energy_source=estimated (Cloud Carbon Footprint model); or powermetrics on a Mac (cpu, gpu, ane: Apple Silicon CPU, GPU and Neural Engine; package: an Intel Mac's package), energy_source=integrated.");
pub const HOST_CO2E: Spec = spec(
    "gpu_host_co2e_grams_total",
    COUNTER,
    HOST,
    "Estimated emissions of a host domain's energy in grams CO2e, PUE included.",
);
pub const HOST_POWER: Spec = spec(
    "gpu_host_power_watts",
    GAUGE,
    HOST,
    "Average power of a host domain over the latest sample interval, in watts (the estimate where energy_source=estimated).",
);
pub const HOST_EMBODIED: Spec = spec("gpu_host_embodied_co2e_grams_total", COUNTER, &[],
    "Embodied (manufacturing, scope 3) emissions of the host without its GPUs (--embodied.host-kg), amortised linearly over its service life while the exporter runs, in grams CO2e.");
pub const HOST_ERRORS: Spec = spec(
    "gpu_carbon_exporter_host_sample_errors_total",
    COUNTER,
    &["domain", "kind"],
    "Failed or rejected host-domain readings by kind.",
);
pub const HOST_UNREADABLE: Spec = spec("gpu_carbon_exporter_host_domain_unreadable", GAUGE, &["domain"],
    "1 for each host domain (RAPL zone) found at start whose counter this user can't read; it is not exported, the others are (the log names the file and the fix).");
pub const COLLECTOR_UP: Spec = spec(
    "gpu_carbon_exporter_collector_up",
    GAUGE,
    &["collector"],
    "1 if an enabled collector started, 0 if it could not (the log says why).",
);
pub const CHILD_RESTARTS: Spec = spec("gpu_carbon_exporter_collector_child_restarts_total", COUNTER, &["collector", "reason"],
    "Restarts of a collector's helper process (powermetrics) by reason: exited (it ended or could not be started), garbled (several unparseable samples in a row), stalled (no output for ten intervals, at least 10 s). Samples already read are kept.");
pub const CHILD_MALFORMED: Spec = spec(
    "gpu_carbon_exporter_collector_malformed_samples_total",
    COUNTER,
    &["collector"],
    "Samples from a collector's helper process (powermetrics) that could not be parsed (malformed or cut short) and were skipped.",
);
pub const LAST: Spec = spec(
    "gpu_carbon_exporter_last_sample_timestamp_seconds",
    GAUGE,
    &[],
    "Unix time of the latest sample.",
);
pub const SAMPLE_INTERVAL: Spec = spec("gpu_carbon_exporter_sample_interval_seconds", GAUGE, &[],
    "Configured time between samples (--sample.interval), in seconds: what the snapshot age is judged against.");
pub const DURATION: Spec = spec(
    "gpu_carbon_exporter_sample_duration_seconds",
    GAUGE,
    &[],
    "Time the latest sample took to read every device, in seconds.",
);
pub const SKIPPED: Spec = spec(
    "gpu_carbon_exporter_skipped_samples_total",
    COUNTER,
    &[],
    "Samples skipped because one overran --sample.interval (a slow or hung device read), since the process started.",
);

pub const STATE_PERSISTING: Spec = spec("gpu_carbon_exporter_state_persisting", GAUGE, &[],
    "1 if totals are being saved to --state.file, 0 if persistence had to be turned off (the log says why).");
pub const STATE_WRITES: Spec = spec(
    "gpu_carbon_exporter_state_writes_total",
    COUNTER,
    &[],
    "Samples committed to the ledger (journal appends and whole rewrites of --state.file) before they were served.",
);
pub const STATE_WRITE_FAILURES: Spec = spec("gpu_carbon_exporter_state_write_failures_total", COUNTER, &[],
    "Failed ledger commits (disk full, read-only or missing directory); counters are held at their last saved values meanwhile.");
pub const STATE_WRITTEN_BYTES: Spec = spec(
    "gpu_carbon_exporter_state_written_bytes_total",
    COUNTER,
    &[],
    "Bytes written to the ledger (journal and state file), in bytes.",
);
pub const STATE_HELD: Spec = spec("gpu_carbon_exporter_state_counters_held", GAUGE, &[],
    "1 while the served energy and CO2e counters are held at their last saved values because the ledger cannot be written; they catch up when it can.");
pub const STATE_LAST_WRITE: Spec = spec(
    "gpu_carbon_exporter_state_last_write_timestamp_seconds",
    GAUGE,
    &[],
    "Unix time of the sample last committed to the ledger (0 if none yet).",
);
pub const STATE_RESTORED: Spec = spec(
    "gpu_carbon_exporter_state_restored_devices",
    GAUGE,
    &[],
    "Devices whose totals were restored from the state file at start.",
);
pub const STATE_SET_ASIDE: Spec = spec(
    "gpu_carbon_exporter_state_set_aside_total",
    COUNTER,
    &[],
    "Ledger files (state file or journal) found corrupt or unreadable at start and renamed to <file>.corrupt-<time>.",
);

pub const WORKLOAD_ENERGY: Spec = spec("gpu_workload_energy_kwh_total", COUNTER, GPU,
    "Part of gpu_energy_kwh_total attributed to a workload (labels from --attribution.labels), in kWh: by SM-utilization share, else equally among the processes on the GPU.");
pub const WORKLOAD_CO2E: Spec = spec(
    "gpu_workload_co2e_grams_total",
    COUNTER,
    GPU,
    "Part of gpu_co2e_grams_total attributed to a workload, in grams CO2e.",
);
pub const WORKLOAD_POWER: Spec = spec(
    "gpu_workload_power_watts",
    GAUGE,
    GPU,
    "A workload's share of the GPU's power at the latest sample, in watts; absent once it ended.",
);
pub const UNATTRIBUTED_ENERGY: Spec = spec("gpu_unattributed_energy_kwh_total", COUNTER, GPU,
    "Part of gpu_energy_kwh_total drawn while no process was on the GPU (or its processes could not be listed), in kWh.");
pub const UNATTRIBUTED_CO2E: Spec = spec(
    "gpu_unattributed_co2e_grams_total",
    COUNTER,
    GPU,
    "Emissions of gpu_unattributed_energy_kwh_total, in grams CO2e.",
);
pub const ATTRIBUTION_SERIES: Spec = spec("gpu_carbon_exporter_attribution_series", GAUGE, &[],
    "Workload series exported now (live and retained), the _overflow_ series not counted; at most gpu_carbon_exporter_attribution_max_series.");
pub const ATTRIBUTION_MAX_SERIES: Spec = spec(
    "gpu_carbon_exporter_attribution_max_series",
    GAUGE,
    &[],
    "--attribution.max-series: the most workload series; new workloads past it are counted in the _overflow_ series.",
);
pub const ATTRIBUTION_FOLDED: Spec = spec("gpu_carbon_exporter_attribution_overflow_workloads", GAUGE, &[],
    "Workloads counted in an _overflow_ series because the cap was reached, live or ended within --attribution.retention. Above 0: raise --attribution.max-series or use fewer labels.");
pub const KUBERNETES_ALLOCATION: Spec = spec("gpu_kubernetes_allocation_info", GAUGE, &["container", "gpu", "namespace", "pod", "uuid"],
    "A container the kubelet gave this GPU (pod-resources API: device plugin IDs, time-slicing replicas, index IDs and DRA devices); always 1. Who was given a GPU, not who used it: join with gpu_unattributed_energy_kwh_total for allocated-but-idle energy.");
pub const KUBERNETES_UP: Spec = spec("gpu_carbon_exporter_kubernetes_pod_resources_up", GAUGE, &[],
    "1 if the kubelet pod-resources API answered at the latest refresh; 0 if not, and pods are then labelled by UID only.");

pub const WEB_CONFIG_RELOAD: Spec = spec(
    "gpu_carbon_exporter_web_config_reload_success",
    GAUGE,
    &[],
    "1 if the latest load of --web.config.file succeeded, 0 if it failed and the previous configuration is still in force. Only with --web.config.file.",
);
pub const WEB_CONFIG_LAST: Spec = spec(
    "gpu_carbon_exporter_web_config_last_reload_success_timestamp_seconds",
    GAUGE,
    &[],
    "Unix time of the latest successful load of --web.config.file. Only with --web.config.file.",
);

/// The web configuration's metrics, for [`crate::webconfig::ReloadMetrics`].
pub const WEB: [&Spec; 2] = [&WEB_CONFIG_RELOAD, &WEB_CONFIG_LAST];

/// All of the above but [`WEB`], for the snapshot collector's descriptors.
pub const ALL: &[&Spec] = &[
    &WORKLOAD_ENERGY,
    &WORKLOAD_CO2E,
    &WORKLOAD_POWER,
    &UNATTRIBUTED_ENERGY,
    &UNATTRIBUTED_CO2E,
    &ATTRIBUTION_SERIES,
    &ATTRIBUTION_MAX_SERIES,
    &ATTRIBUTION_FOLDED,
    &KUBERNETES_ALLOCATION,
    &KUBERNETES_UP,
    &INFO,
    &UP,
    &POWER,
    &LIMIT,
    &UTIL,
    &ENERGY,
    &IDLE,
    &CO2E,
    &EMBODIED,
    &RESETS,
    &DISCREPANCY,
    &INTENSITY,
    &INTENSITY_INFO,
    &INTENSITY_UPDATED,
    &FETCH_ERRORS,
    &FALLBACK,
    &PUE,
    &BUILD,
    &ERRORS,
    &HOST_ENERGY,
    &HOST_CO2E,
    &HOST_POWER,
    &HOST_EMBODIED,
    &HOST_ERRORS,
    &COLLECTOR_UP,
    &HOST_UNREADABLE,
    &CHILD_RESTARTS,
    &CHILD_MALFORMED,
    &LAST,
    &DURATION,
    &SKIPPED,
    &STATE_PERSISTING,
    &STATE_WRITES,
    &STATE_WRITE_FAILURES,
    &STATE_WRITTEN_BYTES,
    &STATE_HELD,
    &STATE_LAST_WRITE,
    &STATE_RESTORED,
    &STATE_SET_ASIDE,
];
