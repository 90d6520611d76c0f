//! The immutable result of one sampling tick: everything a scrape renders, and nothing that
//! needs a device, a lock across `.await`, or arithmetic beyond unit conversion to render.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::attribution::AttributionSnapshot;
use crate::backend::{ChildCounts, DeviceInfo, DeviceKind};
use crate::carbon::{Intensity, ProviderStatus};
use crate::energy::mig::MigSnapshot;
use crate::energy::{SourceKind, Totals};
use crate::units::{Grams, Watts};

/// The latest snapshot served, `None` until the first tick.
pub type Published = watch::Receiver<Option<Arc<Snapshot>>>;

/// Everything known at the end of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Wall-clock time of the tick, Unix seconds.
    pub taken_at_unix: f64,
    /// How long reading every GPU took.
    pub sample_duration: Duration,
    /// Samples skipped so far because one overran `--sample.interval` (since the process
    /// started; set by the sampler thread).
    pub skipped_samples: u64,
    /// Carbon intensity applied at this tick.
    pub intensity: Intensity,
    /// The configured intensity provider's status at this tick.
    pub carbon: ProviderStatus,
    /// PUE applied at this tick.
    pub pue: f64,
    /// One entry per device found at start-up, GPUs and host domains, in discovery order.
    pub devices: Vec<DeviceSnapshot>,
    /// Which collectors are enabled and whether they started.
    pub collectors: Vec<CollectorStatus>,
    /// Per-workload totals, when attribution is enabled.
    pub attribution: Option<AttributionSnapshot>,
    /// MIG GPUs' per-instance accounts and MIG read errors (empty without MIG).
    pub mig: MigSnapshot,
}

impl Snapshot {
    /// The devices of one kind.
    pub fn of_kind(&self, kind: DeviceKind) -> impl Iterator<Item = &DeviceSnapshot> {
        self.devices.iter().filter(move |d| d.info.kind == kind)
    }
}

/// An enabled collector and whether it could start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorStatus {
    /// `nvml`, `simulated`, `hwmon`, `rapl` or `powermetrics`.
    pub name: &'static str,
    /// False when it could not start (e.g. RAPL files unreadable).
    pub up: bool,
    /// Host domains it found but can't read (RAPL zones whose counter is root-only), each
    /// named in the log; the readable ones are exported.
    pub unreadable: Vec<String>,
    /// For a collector that runs a helper process (`powermetrics`), its restarts and the
    /// samples it skipped, as of this tick.
    pub child: Option<ChildCounts>,
}

impl CollectorStatus {
    /// A collector that started (`up`) or not, with nothing left out.
    pub fn new(name: &'static str, up: bool) -> CollectorStatus {
        CollectorStatus {
            name,
            up,
            unreadable: Vec::new(),
            child: None,
        }
    }
}

/// One device at the end of a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSnapshot {
    /// Static facts.
    pub info: DeviceInfo,
    /// How its energy is measured.
    pub energy_source: SourceKind,
    /// Whether the last read of this device fully succeeded.
    pub up: bool,
    /// Latest accepted power reading (absent while down or after a rejected reading).
    pub power: Option<Watts>,
    /// Latest enforced power limit (absent while down).
    pub power_limit: Option<Watts>,
    /// Latest utilization, 0–1 (absent while down or when unsupported).
    pub utilization: Option<f64>,
    /// How far the energy counter disagrees with the integrated power readings over the last
    /// window (`energy::discrepancy`); absent without a counter or before the first compared interval.
    pub counter_discrepancy: Option<f64>,
    /// Running totals since the exporter started.
    pub totals: Totals,
    /// Failed or rejected readings so far, by kind.
    pub errors: ErrorCounts,
    /// The last raw energy counter reading, kept in the state file to count downtime energy.
    pub counter: Option<CounterMark>,
    /// Last time the device was read successfully, Unix seconds.
    pub last_seen_unix: f64,
    /// When the device's counters started from zero, Unix seconds (OpenMetrics `_created`);
    /// `None` when unknown (restored from a ledger written before this was kept).
    pub created_unix: Option<f64>,
    /// Embodied emissions amortised so far (GPUs, with `--embodied.kg-per-gpu`).
    pub embodied: Option<Grams>,
}

/// A raw counter value and when it was read (saved in the ledger as it is).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterMark {
    /// Counter value, µJ.
    pub uj: u64,
    /// When it was read, Unix seconds.
    pub at_unix: f64,
    /// The range of a counter that wraps around (RAPL), µJ.
    pub wraps_at_uj: Option<u64>,
}

/// Kinds of failed or rejected readings (the `kind` label of the sample-error counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The GPU could not be reached at all (fell off the bus, reset, removed).
    DeviceLost,
    /// A supported reading failed this tick.
    ReadError,
    /// A power reading that can't be true was ignored.
    ImplausiblePower,
    /// An energy counter step that can't be true was ignored.
    ImplausibleEnergy,
}

impl ErrorKind {
    /// Every kind, in label order; all are exported from the start so `rate()` sees the first.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::DeviceLost,
        ErrorKind::ImplausibleEnergy,
        ErrorKind::ImplausiblePower,
        ErrorKind::ReadError,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::DeviceLost => "device_lost",
            ErrorKind::ReadError => "read_error",
            ErrorKind::ImplausiblePower => "implausible_power",
            ErrorKind::ImplausibleEnergy => "implausible_energy",
        }
    }
}

/// Counts per [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; 4]);

impl ErrorCounts {
    fn slot(kind: ErrorKind) -> usize {
        kind as usize
    }

    /// Adds `n` errors of `kind`.
    pub fn add(&mut self, kind: ErrorKind, n: u64) {
        self.0[Self::slot(kind)] += n;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[Self::slot(kind)]
    }
}
