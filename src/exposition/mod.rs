//! The exposition served on the telemetry path: the exporter's own metrics plus the process
//! metrics of the `prometheus` crate, in one registry, sorted and diffable.
//!
//! Encoded once per sample: the first scrape after a new snapshot encodes it in the format
//! (and compression) it asked for, and every later scrape of that snapshot is served those
//! bytes. Process and persistence metrics are therefore as of that first scrape; collectors of
//! state that changes between samples (the web configuration's reloads) are registered with a
//! fingerprint, and a changed fingerprint encodes again.
//!
//! - [`negotiate`]: which format and compression a request gets;
//! - [`openmetrics`]: the OpenMetrics 1.0.0 encoding, with [`created`] times for `_created`.

pub mod created;
pub mod negotiate;
pub mod openmetrics;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::render::{BuildInfo, SnapshotRenderer};
use crate::snapshot::{Published, Snapshot};
use crate::state::writer::StateHealth;
use negotiate::{Format, Negotiated};

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the exposition could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The registry or the text encoder failed.
    #[error(transparent)]
    Registry(#[from] prometheus::Error),
    /// A family can't be written as OpenMetrics.
    #[error(transparent)]
    OpenMetrics(#[from] openmetrics::EncodeError),
    /// Compression failed.
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
}

/// The encodings of one snapshot made so far.
#[derive(Default)]
struct Encoded {
    /// The snapshot they were made from (held, so its address can't be reused meanwhile).
    snapshot: Option<Arc<Snapshot>>,
    /// The live collectors' fingerprints when they were made.
    fingerprint: u64,
    bodies: HashMap<(Format, bool), Bytes>,
}

/// A fingerprint of state rendered outside the snapshot.
type Fingerprint = Box<dyn Fn() -> u64 + Send + Sync>;

/// Renders the registry.
pub struct Exposition {
    registry: Registry,
    snapshots: Published,
    started_unix: f64,
    live: Mutex<Vec<Fingerprint>>,
    encoded: Mutex<Encoded>,
}

impl Exposition {
    /// A registry with the snapshot collector (and persistence status, if any) and, if
    /// `process` is set, the process collector (on Linux, where it can read `/proc`).
    pub fn new(
        snapshots: Published,
        process: bool,
        state: Option<Arc<StateHealth>>,
    ) -> prometheus::Result<Exposition> {
        let registry = Registry::new();
        let own = SnapshotRenderer::new(snapshots.clone(), BuildInfo::current(), state)?;
        registry.register(Box::new(own))?;
        // The process collector reads /proc: Linux only (elsewhere no process_* series).
        #[cfg(target_os = "linux")]
        if process {
            registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = process;
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Ok(Exposition {
            registry,
            snapshots,
            started_unix,
            live: Mutex::new(Vec::new()),
            encoded: Mutex::new(Encoded::default()),
        })
    }

    /// Adds a collector of other state (e.g. the web configuration's reload status).
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    /// Adds a collector of state that changes between samples; `fingerprint` changes whenever
    /// what it renders does, and the exposition is then encoded again.
    pub fn register_live(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
        fingerprint: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> prometheus::Result<()> {
        self.registry.register(collector)?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(fingerprint));
        Ok(())
    }

    fn fingerprint(&self) -> u64 {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.iter().fold(0u64, |acc, f| acc.rotate_left(7) ^ f())
    }

    /// Exports the configured sample interval as a constant gauge, the yardstick that alerts and
    /// panels judge the snapshot's age by.
    pub fn register_sample_interval(&self, interval: Duration) -> prometheus::Result<()> {
        let spec = &crate::render::metrics::SAMPLE_INTERVAL;
        let gauge = prometheus::Gauge::with_opts(prometheus::Opts::new(spec.name, spec.help))?;
        gauge.set(interval.as_secs_f64());
        self.registry.register(Box::new(gauge))
    }

    /// The current exposition in text format, freshly encoded.
    pub fn render(&self) -> Result<Vec<u8>, RenderError> {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }

    /// The current exposition as negotiated, encoded at most once per snapshot.
    pub fn body(&self, how: Negotiated) -> Result<Bytes, RenderError> {
        let current = self.snapshots.borrow().clone();
        let fingerprint = self.fingerprint();
        // Encoding holds the lock (a millisecond at 64 GPUs), so concurrent scrapes of a new
        // snapshot encode it once and share it.
        let mut encoded = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        let same = match (&encoded.snapshot, &current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same || encoded.fingerprint != fingerprint {
            *encoded = Encoded {
                snapshot: current.clone(),
                fingerprint,
                bodies: HashMap::new(),
            };
        }
        if let Some(body) = encoded.bodies.get(&(how.format, how.gzip)) {
            return Ok(body.clone());
        }
        let plain = match encoded.bodies.get(&(how.format, false)) {
            Some(b) => b.clone(),
            None => {
                let families = self.registry.gather();
                let b = Bytes::from(match how.format {
                    Format::Text => {
                        let mut buf = Vec::with_capacity(16 * 1024);
                        TextEncoder::new().encode(&families, &mut buf)?;
                        buf
                    }
                    Format::OpenMetrics => {
                        let created = created::Created::of(current.as_deref(), self.started_unix);
                        openmetrics::encode(&families, |f, l| created.get(f, l))?.into_bytes()
                    }
                });
                encoded.bodies.insert((how.format, false), b.clone());
                b
            }
        };
        if !how.gzip {
            return Ok(plain);
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::default(),
        );
        gz.write_all(&plain)?;
        let body = Bytes::from(gz.finish()?);
        encoded.bodies.insert((how.format, true), body.clone());
        Ok(body)
    }
}
