//! The text exposition served on the telemetry path: the exporter's own metrics plus the
//! process metrics of the `prometheus` crate, in one registry, sorted and diffable.

use std::sync::Arc;

use prometheus::{Encoder, Registry, TextEncoder};

use crate::collector::{BuildInfo, SnapshotCollector};
use crate::snapshot::Published;
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

    /// The current exposition in text format.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }
}
