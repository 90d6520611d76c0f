//! The text exposition served on the telemetry path: the exporter's own metrics plus the
//! process metrics of the `prometheus` crate, in one registry, sorted and diffable.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Encoder, Registry, TextEncoder};

use crate::collector::{BuildInfo, SnapshotCollector};
use crate::sampler::Published;
use crate::state::writer::StateHealth;

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the registry.
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// A registry with the snapshot collector (and persistence status, if any) and, if
    /// `process` is set, the process collector.
    pub fn new(
        snapshots: Published,
        process: bool,
        state: Option<Arc<StateHealth>>,
    ) -> prometheus::Result<Exposition> {
        let registry = Registry::new();
        let own = SnapshotCollector::new(snapshots, BuildInfo::current(), state)?;
        registry.register(Box::new(own))?;
        if process {
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
        }
        Ok(Exposition { registry })
    }

    /// Adds a collector of other state (e.g. the web configuration's reload status).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    /// Exports the configured sample interval as a constant gauge, the yardstick that alerts and
    /// panels judge the snapshot's age by.
    pub fn register_sample_interval(&self, interval: Duration) -> prometheus::Result<()> {
        let spec = &crate::collector::metrics::SAMPLE_INTERVAL;
        let gauge = prometheus::Gauge::with_opts(prometheus::Opts::new(spec.name, spec.help))?;
        gauge.set(interval.as_secs_f64());
        self.registry.register(Box::new(gauge))
    }

    /// The current exposition in text format.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }
}
