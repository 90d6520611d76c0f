//! Renders the latest [`Snapshot`] as Prometheus metric families (a custom `Collector`, as
//! rust-prometheus recommends for state prepared elsewhere). A scrape builds families from an
//! `Arc` clone of the snapshot: no device call, no lock held, no integration.

// Each metric constant is documented by the help text it carries, which the exposition serves.
#[allow(missing_docs)]
pub mod metrics;
pub mod mig;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::attribution::AttributionSnapshot;
use crate::backend::DeviceKind;
use crate::energy::SourceKind;
use crate::snapshot::Published;
use crate::snapshot::{DeviceSnapshot, ErrorKind, Snapshot};
use crate::state::writer::StateHealth;
use metrics::*;

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

/// The exporter's own metrics, rendered from the published snapshot.
pub struct SnapshotRenderer {
    snapshots: Published,
    build: BuildInfo,
    state: Option<Arc<StateHealth>>,
    descs: Vec<Desc>,
}

impl SnapshotRenderer {
    /// A collector reading the latest snapshot from `snapshots`, and the persistence status
    /// from `state` when `--state.file` is set.
    pub fn new(
        snapshots: Published,
        build: BuildInfo,
        state: Option<Arc<StateHealth>>,
    ) -> prometheus::Result<SnapshotRenderer> {
        let descs = ALL
            .iter()
            .chain(mig::SPECS.iter())
            .map(|s| {
                let labels = s.labels.iter().map(|l| l.to_string()).collect();
                Desc::new(s.name.into(), s.help.into(), labels, HashMap::new())
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(SnapshotRenderer {
            snapshots,
            build,
            state,
            descs,
        })
    }
}

impl Collector for SnapshotRenderer {
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
        if let Some(h) = &self.state {
            render_state(h, &mut out);
        }
        out.0.into_values().collect()
    }
}

/// Families under construction, keyed by name.
#[derive(Default)]
pub(crate) struct Families(pub(crate) HashMap<&'static str, MetricFamily>);

impl Families {
    /// Adds one sample; `values` are the label values in the order of `spec.labels`.
    pub(crate) fn add(&mut self, spec: &Spec, values: &[&str], value: f64) {
        let pairs: Vec<(&str, &str)> = spec
            .labels
            .iter()
            .copied()
            .zip(values.iter().copied())
            .collect();
        self.add_labelled(spec, pairs, value);
    }

    /// Adds one sample with labels chosen at run time (sorted here by name).
    fn add_labelled(&mut self, spec: &Spec, mut pairs: Vec<(&str, &str)>, value: f64) {
        pairs.sort_by_key(|(name, _)| *name);
        let family = self.0.entry(spec.name).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(spec.name.to_string());
            f.set_help(spec.help.to_string());
            f.set_field_type(spec.kind);
            f
        });
        let labels = pairs
            .into_iter()
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
    let i = &s.intensity;
    out.add(
        &INTENSITY,
        &[i.provider, i.scope.as_str(), i.signal.as_str(), &i.zone],
        i.value.0,
    );
    out.add(&INTENSITY_INFO, &[i.provider, &i.source, &i.zone], 1.0);
    out.add(&FALLBACK, &[], if i.fallback { 1.0 } else { 0.0 });
    out.add(
        &FETCH_ERRORS,
        &[s.carbon.provider],
        s.carbon.fetch_errors as f64,
    );
    if let Some(t) = s.carbon.last_update_unix {
        out.add(&INTENSITY_UPDATED, &[], t);
    }
    out.add(&PUE, &[], s.pue);
    out.add(&LAST, &[], s.taken_at_unix);
    out.add(&DURATION, &[], s.sample_duration.as_secs_f64());
    out.add(&SKIPPED, &[], s.skipped_samples as f64);
    for c in &s.collectors {
        out.add(&COLLECTOR_UP, &[c.name], if c.up { 1.0 } else { 0.0 });
        for domain in &c.unreadable {
            out.add(&HOST_UNREADABLE, &[domain], 1.0);
        }
        if let Some(child) = &c.child {
            let reasons = [
                ("exited", child.exited),
                ("garbled", child.garbled),
                ("stalled", child.stalled),
            ];
            for (reason, n) in reasons {
                out.add(&CHILD_RESTARTS, &[c.name, reason], n as f64);
            }
            out.add(&CHILD_MALFORMED, &[c.name], child.malformed as f64);
        }
    }
    for gpu in s.of_kind(DeviceKind::Gpu) {
        render_gpu(gpu, out);
    }
    for host in s.of_kind(DeviceKind::HostDomain) {
        render_host(host, out);
    }
    if let Some(a) = &s.attribution {
        render_attribution(a, out);
    }
    let pods = s.attribution.as_ref().map(|a| a.allocations.as_ref());
    mig::render(&s.mig, pods, out);
}

fn render_attribution(a: &AttributionSnapshot, out: &mut Families) {
    out.add(&ATTRIBUTION_SERIES, &[], a.named_series as f64);
    out.add(&ATTRIBUTION_MAX_SERIES, &[], a.max_series as f64);
    out.add(&ATTRIBUTION_FOLDED, &[], a.folded_workloads as f64);
    if let Some(up) = a.kubernetes_up {
        out.add(&KUBERNETES_UP, &[], if up { 1.0 } else { 0.0 });
    }
    for w in &a.workloads {
        let index = w.gpu.to_string();
        let mut pairs = vec![("gpu", index.as_str()), ("uuid", &*w.uuid)];
        pairs.extend(
            a.labels
                .iter()
                .copied()
                .zip(w.labels.iter().map(String::as_str)),
        );
        out.add_labelled(&WORKLOAD_ENERGY, pairs.clone(), w.energy.kwh());
        out.add_labelled(&WORKLOAD_CO2E, pairs.clone(), w.co2e.0);
        if let Some(p) = w.power {
            out.add_labelled(&WORKLOAD_POWER, pairs, p.0);
        }
    }
    for u in &a.unattributed {
        let index = u.gpu.to_string();
        let id: [&str; 2] = [&index, &u.uuid];
        out.add(&UNATTRIBUTED_ENERGY, &id, u.energy.kwh());
        out.add(&UNATTRIBUTED_CO2E, &id, u.co2e.0);
        for h in a.allocations.holders(&u.uuid) {
            let values = [h.container.as_str(), &index, &h.namespace, &h.pod, &u.uuid];
            out.add(&KUBERNETES_ALLOCATION, &values, 1.0);
        }
    }
}

fn render_state(h: &StateHealth, out: &mut Families) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    out.add(
        &STATE_PERSISTING,
        &[],
        if h.persisting() { 1.0 } else { 0.0 },
    );
    out.add(&STATE_WRITES, &[], load(&h.writes));
    out.add(&STATE_WRITE_FAILURES, &[], load(&h.write_failures));
    out.add(&STATE_WRITTEN_BYTES, &[], load(&h.bytes_written));
    out.add(&STATE_HELD, &[], if h.held() { 1.0 } else { 0.0 });
    out.add(&STATE_LAST_WRITE, &[], h.last_success_unix());
    out.add(&STATE_RESTORED, &[], load(&h.restored_devices));
    out.add(&STATE_SET_ASIDE, &[], load(&h.set_aside));
}

fn render_host(h: &DeviceSnapshot, out: &mut Families) {
    let domain = [h.info.name.as_str(), h.energy_source.as_str()];
    out.add(&HOST_ENERGY, &domain, h.totals.energy.kwh());
    out.add(&HOST_CO2E, &domain, h.totals.co2e.0);
    if let Some(p) = h.power {
        out.add(&HOST_POWER, &domain, p.0);
    }
    if let Some(embodied) = h.embodied {
        out.add(&HOST_EMBODIED, &[], embodied.0);
    }
    for kind in ErrorKind::ALL {
        out.add(
            &HOST_ERRORS,
            &[&h.info.name, kind.as_str()],
            h.errors.get(kind) as f64,
        );
    }
}

fn render_gpu(g: &DeviceSnapshot, out: &mut Families) {
    let index = g.info.index.to_string();
    let id: [&str; 2] = [&index, &g.info.uuid];
    let mut info = vec![
        ("energy_source", g.energy_source.as_str()),
        ("gpu", index.as_str()),
        ("name", g.info.name.as_str()),
        ("uuid", g.info.uuid.as_str()),
    ];
    if let Some(channel) = &g.info.channel {
        info.push(("energy_channel", channel));
    }
    out.add_labelled(&INFO, info, 1.0);
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
    if let Some(embodied) = g.embodied {
        out.add(&EMBODIED, &id, embodied.0);
    }
    if g.energy_source == SourceKind::Counter {
        out.add(&RESETS, &id, g.totals.counter_resets as f64);
    }
    if let Some(ratio) = g.counter_discrepancy {
        out.add(&DISCREPANCY, &id, ratio);
    }
    for kind in ErrorKind::ALL {
        out.add(
            &ERRORS,
            &[&index, kind.as_str(), &g.info.uuid],
            g.errors.get(kind) as f64,
        );
    }
}
