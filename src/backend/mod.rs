//! Sources of GPU readings. Each backend discovers its devices once, at start-up, and then
//! answers one [`Backend::read`] per device per sampling tick. Backends do blocking I/O; the
//! sampler calls them from its own thread, never from the HTTP workers.

pub mod host_estimate;
pub mod hwmon;
pub mod mig;
pub mod nvml;
pub mod powermetrics;
pub mod rapl;
pub mod simulated;
pub mod sysfs;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::Watts;

/// What a device can report, found once at start-up and carried as data, so that an unsupported
/// reading is never mistaken for a failing one. Saved in the ledger as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// A cumulative energy counter (NVML total energy consumption, Volta and newer).
    pub energy_counter: bool,
    /// A power reading.
    pub power: bool,
    /// A utilization reading.
    pub utilization: bool,
    /// An enforced power limit.
    pub power_limit: bool,
}

/// What a device is, which decides the series it is exported under (saved as `gpu`/`host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A GPU: `gpu_*` series labelled `gpu` and `uuid`.
    Gpu,
    /// A host energy domain (CPU package, DRAM): `gpu_host_*` series labelled `domain`.
    #[serde(rename = "host")]
    HostDomain,
}

/// Static facts about one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// GPU or host domain.
    pub kind: DeviceKind,
    /// Index as the driver numbers devices (the `gpu` label).
    pub index: u32,
    /// Stable identity (the `uuid` label), used to find the device again after a fault.
    pub uuid: String,
    /// Product name, e.g. "NVIDIA H100 80GB HBM3"; for a host domain, the `domain` label.
    pub name: String,
    /// What the device can report.
    pub caps: Capabilities,
    /// For an energy counter that wraps around (RAPL), its range in µJ.
    pub wraps_at_uj: Option<u64>,
    /// Which of a device's sensor channels energy and power come from, where it has several
    /// that measure different things (hwmon: the channel's label, e.g. `card` or `pkg` on Intel
    /// xe, where `pkg` leaves out memory and board); `gpu_info`'s `energy_channel` label.
    pub channel: Option<String>,
}

impl DeviceInfo {
    /// A GPU without a wrapping counter.
    pub fn gpu(index: u32, uuid: String, name: String, caps: Capabilities) -> DeviceInfo {
        DeviceInfo {
            kind: DeviceKind::Gpu,
            index,
            uuid,
            name,
            caps,
            wraps_at_uj: None,
            channel: None,
        }
    }
}

/// The readings of one device at one tick. A field is `None` when unsupported or when its read
/// failed this tick; failures are listed in `failed` so they can be counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Power draw as the device reports it (an average over up to 1 s on recent NVIDIA GPUs).
    pub power: Option<Watts>,
    /// Cumulative energy counter in microjoules (NVML counts from the driver load; RAPL wraps).
    pub energy_uj: Option<u64>,
    /// Fraction of time a kernel was running over the device's last sample period, 0–1.
    pub utilization: Option<f64>,
    /// Enforced power limit.
    pub power_limit: Option<Watts>,
    /// For a host estimate domain: what its power scales with, vCPUs (`cpu`) or GiB of memory
    /// (`memory`).
    pub host_size: Option<f64>,
    /// Readings that are supported but failed this tick.
    pub failed: Vec<Field>,
    /// Processes on the device, once [`Backend::watch_processes`] was called; `None` where the
    /// device can't list them or the listing failed this tick.
    pub processes: Option<Vec<ProcessUse>>,
    /// For a device that times its own power averages ([`Backend::reports_averages`]), those
    /// that arrived since the previous read, oldest first; empty otherwise.
    pub averages: Vec<PowerAverage>,
    /// A MIG-enabled GPU's instances (NVML); `None` for a GPU without MIG mode.
    pub mig: Option<mig::MigReading>,
}

/// Power a device averaged over an interval it timed itself (one `powermetrics` sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerAverage {
    /// The average.
    pub power: Watts,
    /// The interval it covers.
    pub over: Duration,
}

/// How a collector that runs a helper process (`powermetrics`) has fared with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Restarts after the process exited (or could not be started again).
    pub exited: u64,
    /// Restarts after it wrote output that could not be parsed, several samples in a row.
    pub garbled: u64,
    /// Restarts after it wrote nothing for too long.
    pub stalled: u64,
    /// Samples that could not be parsed and were skipped.
    pub malformed: u64,
}

/// A process holding a GPU at a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUse {
    /// Its PID, in the host's PID namespace.
    pub pid: u32,
    /// Its SM utilization (0–1) over the interval, `None` where the device gave no sample.
    pub sm_utilization: Option<f64>,
}

/// One kind of reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Power draw.
    Power,
    /// Energy counter.
    Energy,
    /// Utilization.
    Utilization,
    /// Power limit.
    PowerLimit,
}

/// Why a whole device could not be read this tick.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The device is gone (fell off the bus, reset, removed); it is retried every tick.
    #[error("device lost: {0}")]
    Lost(String),
    /// A failure that may pass by the next tick.
    #[error("transient read failure: {0}")]
    Transient(String),
}

/// A source of GPU readings.
pub trait Backend: Send {
    /// A short name for logs and the landing page ("nvml", "simulated").
    fn name(&self) -> &'static str;
    /// The devices found at start-up, in index order.
    fn devices(&self) -> &[DeviceInfo];
    /// Reads device `position` (its place in [`Backend::devices`]).
    fn read(&mut self, position: usize) -> Result<Reading, DeviceError>;
    /// Also lists the processes on each device from now on (for attribution). Backends that
    /// can't leave [`Reading::processes`] at `None`.
    fn watch_processes(&mut self) {}
    /// The processor, for a backend whose devices' power is not measured but estimated by the
    /// host model from their size and utilization (the host estimate); `None` for the others.
    fn cpu_identity(&self) -> Option<&host_estimate::CpuIdentity> {
        None
    }
    /// Whether power comes as averages over intervals the device timed itself
    /// ([`Reading::averages`]) rather than as instantaneous readings; such devices are accounted
    /// by summing average × interval, not by the trapezoid rule.
    fn reports_averages(&self) -> bool {
        false
    }
    /// For a collector that runs a helper process, how that process has fared.
    fn child_counts(&self) -> Option<ChildCounts> {
        None
    }
}
