//! Renders the latest [`Snapshot`] as Prometheus metric families (a custom `Collector`, as
//! rust-prometheus recommends for state prepared elsewhere). A scrape builds families from an
//! `Arc` clone of the snapshot: no device call, no lock held, no integration.

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::sampler::Published;
use crate::snapshot::{ErrorKind, GpuSnapshot, Snapshot};

/// Version and source revision of this build, for `gpu_carbon_exporter_build_info`.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    /// Crate version.
    pub version: String,
    /// Git revision the binary was built from, or `unknown`.
    pub revision: String,
}

impl BuildInfo {
    /// This binary's build facts.
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("GPU_CARBON_EXPORTER_REVISION")
                .unwrap_or("unknown")
                .to_string(),
        }
    }
}

/// One exported metric: name, help, type and label names.
struct Spec {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const GPU: &[&str] = &["gpu", "uuid"];

macro_rules! spec {
    ($id:ident, $name:literal, $kind:ident, $labels:expr, $help:literal) => {
        const $id: Spec = Spec {
            name: $name,
            help: $help,
            kind: MetricType::$kind,
            labels: $labels,
        };
    };
}

spec!(INFO, "gpu_info", GAUGE, &["energy_source", "gpu", "name", "uuid"],
    "Static facts about a GPU; always 1. energy_source is counter (hardware energy counter) or integrated (trapezoid of power readings).");
spec!(
    UP,
    "gpu_up",
    GAUGE,
    GPU,
    "1 if the last sample of this GPU fully succeeded, else 0."
);
spec!(
    POWER,
    "gpu_power_watts",
    GAUGE,
    GPU,
    "Latest power reading in watts (a 1 s average on NVIDIA Ampere and newer)."
);
spec!(
    LIMIT,
    "gpu_power_limit_watts",
    GAUGE,
    GPU,
    "Enforced power limit in watts."
);
spec!(
    UTIL,
    "gpu_utilization_ratio",
    GAUGE,
    GPU,
    "Fraction of the last sample period a kernel was running, 0 to 1."
);
spec!(
    ENERGY,
    "gpu_energy_kwh_total",
    COUNTER,
    GPU,
    "Energy drawn by the GPU since the exporter started, in kWh. Never decreases."
);
spec!(
    IDLE,
    "gpu_idle_energy_kwh_total",
    COUNTER,
    GPU,
    "Part of gpu_energy_kwh_total drawn in sample intervals that ended at 0 utilization, in kWh."
);
spec!(CO2E, "gpu_co2e_grams_total", COUNTER, GPU, "Estimated emissions of the GPU's energy in grams CO2e: energy x PUE x carbon intensity in force at each sample.");
spec!(RESETS, "gpu_energy_hardware_resets_total", COUNTER, GPU, "Times the hardware energy counter restarted (driver reload, GPU reset); the exported energy carries on.");
spec!(
    INTENSITY,
    "gpu_carbon_intensity_grams_per_kwh",
    GAUGE,
    &["source", "zone"],
    "Carbon intensity of electricity in force, in grams CO2e per kWh."
);
spec!(
    PUE,
    "gpu_pue_ratio",
    GAUGE,
    &[],
    "Power usage effectiveness applied to GPU energy for CO2e."
);
spec!(
    BUILD,
    "gpu_carbon_exporter_build_info",
    GAUGE,
    &["revision", "version"],
    "Build facts of the exporter; always 1."
);
spec!(ERRORS, "gpu_carbon_exporter_sample_errors_total", COUNTER, &["gpu", "kind", "uuid"],
    "Failed or rejected readings by kind: device_lost, read_error, implausible_power, implausible_energy.");
spec!(
    LAST,
    "gpu_carbon_exporter_last_sample_timestamp_seconds",
    GAUGE,
    &[],
    "Unix time of the latest sample."
);
spec!(
    DURATION,
    "gpu_carbon_exporter_sample_duration_seconds",
    GAUGE,
    &[],
    "Time the latest sample took to read every GPU, in seconds."
);

const SPECS: [&Spec; 15] = [
    &INFO, &UP, &POWER, &LIMIT, &UTIL, &ENERGY, &IDLE, &CO2E, &RESETS, &INTENSITY, &PUE, &BUILD,
    &ERRORS, &LAST, &DURATION,
];

/// The exporter's own metrics, rendered from the published snapshot.
pub struct SnapshotCollector {
    snapshots: Published,
    build: BuildInfo,
    descs: Vec<Desc>,
}

impl SnapshotCollector {
    /// A collector reading the latest snapshot from `snapshots`.
    pub fn new(snapshots: Published, build: BuildInfo) -> prometheus::Result<SnapshotCollector> {
        let descs = SPECS
            .iter()
            .map(|s| {
                let labels = s.labels.iter().map(|l| l.to_string()).collect();
                Desc::new(s.name.into(), s.help.into(), labels, HashMap::new())
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(SnapshotCollector {
            snapshots,
            build,
            descs,
        })
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.snapshots.borrow().clone();
        let mut out = Families::default();
        out.add(&BUILD, &[&self.build.revision, &self.build.version], 1.0);
        if let Some(s) = snapshot {
            render(&s, &mut out);
        }
        out.0.into_values().collect()
    }
}

/// Families under construction, keyed by name.
#[derive(Default)]
struct Families(HashMap<&'static str, MetricFamily>);

impl Families {
    /// Adds one sample; `values` are the label values in the order of `spec.labels`.
    fn add(&mut self, spec: &Spec, values: &[&str], value: f64) {
        let family = self.0.entry(spec.name).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(spec.name.to_string());
            f.set_help(spec.help.to_string());
            f.set_field_type(spec.kind);
            f
        });
        let labels = spec
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.to_string());
                pair.set_value(value.to_string());
                pair
            })
            .collect();
        let mut metric = Metric::from_label(labels);
        if spec.kind == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(value);
            metric.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            metric.set_gauge(g);
        }
        family.mut_metric().push(metric);
    }
}

fn render(s: &Snapshot, out: &mut Families) {
    out.add(
        &INTENSITY,
        &[&s.intensity.source, &s.intensity.zone],
        s.intensity.value.0,
    );
    out.add(&PUE, &[], s.pue);
    out.add(&LAST, &[], s.taken_at_unix);
    out.add(&DURATION, &[], s.sample_duration.as_secs_f64());
    for gpu in &s.gpus {
        render_gpu(gpu, out);
    }
}

fn render_gpu(g: &GpuSnapshot, out: &mut Families) {
    let index = g.info.index.to_string();
    let id: [&str; 2] = [&index, &g.info.uuid];
    out.add(
        &INFO,
        &[g.energy_source.as_str(), &index, &g.info.name, &g.info.uuid],
        1.0,
    );
    out.add(&UP, &id, if g.up { 1.0 } else { 0.0 });
    let gauges = [
        (&POWER, g.power.map(|w| w.0)),
        (&LIMIT, g.power_limit.map(|w| w.0)),
        (&UTIL, g.utilization),
    ];
    for (spec, value) in gauges {
        if let Some(v) = value {
            out.add(spec, &id, v);
        }
    }
    out.add(&ENERGY, &id, g.totals.energy.kwh());
    if g.info.caps.utilization {
        out.add(&IDLE, &id, g.totals.idle_energy.kwh());
    }
    out.add(&CO2E, &id, g.totals.co2e.0);
    if g.info.caps.energy_counter {
        out.add(&RESETS, &id, g.totals.counter_resets as f64);
    }
    for kind in ErrorKind::ALL {
        out.add(
            &ERRORS,
            &[&index, kind.as_str(), &g.info.uuid],
            g.errors.get(kind) as f64,
        );
    }
}
