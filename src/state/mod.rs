//! The persistent ledger: every device's and workload's totals, kept in `--state.file` and its
//! journal so that energy, idle energy and CO2e continue across restarts, crashes, upgrades and
//! driver reloads, and so that no counter ever served can be lower after a restart.
//!
//! - this module: the state's content ([`StateFile`]) and its (de)serialisation — pure;
//! - [`delta`]: what changed between two states (a journal [`delta::Record`]) and applying it;
//! - [`journal`]: `<file>.journal`, one fsynced line per committed sample, locked;
//! - [`store`]: loading at start (read-only) and atomic rewrites of the state file;
//! - [`files`]: the file-system rules (regular files only, no links followed, 0600, read cap);
//! - [`hold`]: what is served while the ledger can't be written;
//! - [`writer`]: the thread that commits each sample before it is served.
//!
//! Besides the totals, the ledger keeps each hardware counter's last raw value and when it was
//! read. On restart the first counter reading is compared with it, so the energy a GPU drew
//! while the exporter was down is counted too (exactly, unless the driver was reloaded in the
//! meantime; then the energy since the reload is counted). Energy of integrated or estimated
//! devices during the downtime is unknown and not counted.

pub mod delta;
pub mod files;
pub mod hold;
pub mod journal;
pub mod mig;
pub mod store;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::attribution::{AttributionSnapshot, Label, UnattributedSnapshot, WorkloadSnapshot};
use crate::backend::{Capabilities, DeviceInfo, DeviceKind};
use crate::energy::mig::MigGpu;
use crate::energy::{SourceKind, Totals};
use crate::snapshot::{CounterMark, DeviceSnapshot, Snapshot};
use crate::units::{Grams, Joules};

/// Version of the file format; a file of another version is set aside like a corrupt one.
///
/// The rule: adding an optional field (one with a default, like `attribution`) keeps the
/// version, so every file written before it still loads; a field that changes meaning, or a new
/// required one, bumps it. (An older exporter refuses a file with fields it does not know and
/// sets it aside: downgrades start from zero.)
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// When the file was written, Unix seconds.
    pub written_at_unix: f64,
    /// The commit it holds, counted from the first: journal lines of this commit or earlier
    /// are already in it and are not applied again (0 in files of older exporters).
    #[serde(default)]
    pub seq: u64,
    /// One entry per device, live or retained.
    pub devices: Vec<SavedDevice>,
    /// Per-workload totals, when attribution is enabled (absent in files of older exporters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<SavedAttribution>,
    /// MIG GPUs' per-instance and unallocated totals (absent without MIG, and in older files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig: Vec<MigGpu>,
}

/// The attribution's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAttribution {
    /// Workload label names, sorted (`--attribution.labels` at the time).
    pub labels: Vec<String>,
    /// Every exported workload, live or retained.
    pub workloads: Vec<SavedWorkload>,
    /// Unattributed totals per GPU.
    pub unattributed: Vec<SavedUnattributed>,
}

/// One workload's totals on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedWorkload {
    /// GPU UUID.
    pub uuid: String,
    /// GPU index.
    pub gpu: u32,
    /// Label values, in the order of [`SavedAttribution::labels`].
    pub labels: Vec<String>,
    /// Energy, joules.
    pub energy_j: f64,
    /// Emissions, grams CO2e.
    pub co2e_g: f64,
    /// When one of its processes was last seen, Unix seconds.
    pub last_active_unix: f64,
    /// When its series started from zero, Unix seconds (absent in files of older exporters:
    /// such a workload gets no `_created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<f64>,
}

/// One GPU's unattributed totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedUnattributed {
    /// GPU UUID.
    pub uuid: String,
    /// GPU index.
    pub gpu: u32,
    /// Energy, joules.
    pub energy_j: f64,
    /// Emissions, grams CO2e.
    pub co2e_g: f64,
}

impl SavedAttribution {
    fn from_snapshot(a: &AttributionSnapshot) -> SavedAttribution {
        SavedAttribution {
            labels: a.labels.iter().map(|l| l.to_string()).collect(),
            workloads: a
                .workloads
                .iter()
                .map(|w| SavedWorkload {
                    uuid: w.uuid.to_string(),
                    gpu: w.gpu,
                    labels: w.labels.to_vec(),
                    energy_j: w.energy.0,
                    co2e_g: w.co2e.0,
                    last_active_unix: w.last_active_unix,
                    created_unix: w.created_unix,
                })
                .collect(),
            unattributed: a
                .unattributed
                .iter()
                .map(|u| SavedUnattributed {
                    uuid: u.uuid.to_string(),
                    gpu: u.gpu,
                    energy_j: u.energy.0,
                    co2e_g: u.co2e.0,
                })
                .collect(),
        }
    }

    /// The saved totals as the attributor restores them; an unknown label name keeps the
    /// label set from matching any configuration, so those workloads are not restored.
    pub fn to_snapshot(&self) -> AttributionSnapshot {
        AttributionSnapshot {
            labels: self
                .labels
                .iter()
                .map(|l| Label::parse(l).map_or("?", Label::as_str))
                .collect(),
            workloads: self
                .workloads
                .iter()
                .map(|w| WorkloadSnapshot {
                    gpu: w.gpu,
                    uuid: w.uuid.as_str().into(),
                    labels: w.labels.clone().into(),
                    energy: Joules(w.energy_j),
                    co2e: Grams(w.co2e_g),
                    power: None,
                    last_active_unix: w.last_active_unix,
                    created_unix: w.created_unix,
                })
                .collect(),
            unattributed: self
                .unattributed
                .iter()
                .map(|u| UnattributedSnapshot {
                    gpu: u.gpu,
                    uuid: u.uuid.as_str().into(),
                    energy: Joules(u.energy_j),
                    co2e: Grams(u.co2e_g),
                })
                .collect(),
            ..AttributionSnapshot::default()
        }
    }

    fn values(&self) -> impl Iterator<Item = (&str, &'static str, f64)> {
        let w = self.workloads.iter().flat_map(|w| {
            [("energy_j", w.energy_j), ("co2e_g", w.co2e_g)]
                .map(move |(what, v)| (w.uuid.as_str(), what, v))
        });
        let u = self.unattributed.iter().flat_map(|u| {
            [
                ("unattributed energy_j", u.energy_j),
                ("unattributed co2e_g", u.co2e_g),
            ]
            .map(move |(what, v)| (u.uuid.as_str(), what, v))
        });
        w.chain(u)
    }
}

/// One device's saved totals and identity, in the domain's own types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedDevice {
    /// The device's UUID (the key).
    pub uuid: String,
    /// `gpu` or `host`.
    pub kind: DeviceKind,
    /// Index at the time.
    pub index: u32,
    /// Product name, or the host domain.
    pub name: String,
    /// What the device could report.
    pub caps: Capabilities,
    /// How its energy was measured (the `energy_source` label).
    pub energy_source: SourceKind,
    /// Total energy, joules.
    pub energy_j: f64,
    /// Idle part of it, joules.
    pub idle_energy_j: f64,
    /// Emissions, grams CO2e.
    pub co2e_g: f64,
    /// Hardware counter restarts seen.
    pub hardware_resets: u64,
    /// Last accepted counter value and when it was read, for counting the downtime.
    pub counter: Option<CounterMark>,
    /// Last time the device was read successfully, Unix seconds.
    pub last_seen_unix: f64,
    /// Embodied emissions amortised so far, grams CO2e (GPUs, with `--embodied.kg-per-gpu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embodied_g: Option<f64>,
    /// When the device's counters started from zero, Unix seconds (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<f64>,
}

/// Why a state file's content was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON of the expected shape.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Another format version.
    #[error("format version {0} is not {VERSION}")]
    Version(u32),
    /// Values that can't be totals.
    #[error("device {uuid}: {what} is negative or not finite")]
    Value {
        /// The device.
        uuid: String,
        /// The field.
        what: &'static str,
    },
}

impl StateFile {
    /// Parses and checks a state file's text.
    pub fn parse(text: &str) -> Result<StateFile, ParseError> {
        let file: StateFile = serde_json::from_str(text).map_err(|e| ParseError::Syntax {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        file.validate()?;
        Ok(file)
    }

    /// Checks what `parse` checks beyond the JSON shape: the version and that every total is
    /// a finite, non-negative number.
    pub(crate) fn validate(&self) -> Result<(), ParseError> {
        if self.version != VERSION {
            return Err(ParseError::Version(self.version));
        }
        for d in &self.devices {
            for (what, v) in [
                ("energy_j", d.energy_j),
                ("idle_energy_j", d.idle_energy_j),
                ("co2e_g", d.co2e_g),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(ParseError::Value {
                        uuid: d.uuid.clone(),
                        what,
                    });
                }
            }
        }
        let mig = self
            .mig
            .iter()
            .flat_map(|g| g.values().map(|(what, v)| (g.uuid.as_str(), what, v)));
        for (uuid, what, v) in self.attribution.iter().flat_map(|a| a.values()).chain(mig) {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ParseError::Value {
                    uuid: uuid.to_string(),
                    what,
                });
            }
        }
        Ok(())
    }

    /// The file's text, or why it must not be written: a total that is not a finite number
    /// would be saved as `null` and make the file unreadable at the next start, so the writer
    /// keeps the last good file instead.
    pub fn to_json(&self) -> Result<String, ParseError> {
        self.validate()?;
        serde_json::to_string_pretty(self).map_err(|e| ParseError::Syntax {
            line: 0,
            column: 0,
            message: e.to_string(),
        })
    }

    /// The state to save after `snapshot`.
    pub fn from_snapshot(snapshot: &Snapshot) -> StateFile {
        StateFile {
            version: VERSION,
            written_at_unix: snapshot.taken_at_unix,
            seq: 0,
            devices: snapshot
                .devices
                .iter()
                .map(SavedDevice::from_snapshot)
                .collect(),
            attribution: snapshot
                .attribution
                .as_ref()
                .map(SavedAttribution::from_snapshot),
            mig: mig::saved(&snapshot.mig),
        }
    }

    /// A state with no device (a first start).
    pub fn empty() -> StateFile {
        StateFile {
            version: VERSION,
            written_at_unix: 0.0,
            seq: 0,
            devices: Vec::new(),
            attribution: None,
            mig: Vec::new(),
        }
    }

    /// The saved device with `uuid`.
    pub fn device(&self, uuid: &str) -> Option<&SavedDevice> {
        self.devices.iter().find(|d| d.uuid == uuid)
    }
}

impl SavedDevice {
    fn from_snapshot(d: &DeviceSnapshot) -> SavedDevice {
        SavedDevice {
            uuid: d.info.uuid.clone(),
            kind: d.info.kind,
            index: d.info.index,
            name: d.info.name.clone(),
            caps: d.info.caps,
            energy_source: d.energy_source,
            energy_j: d.totals.energy.0,
            idle_energy_j: d.totals.idle_energy.0,
            co2e_g: d.totals.co2e.0,
            hardware_resets: d.totals.counter_resets,
            counter: d.counter,
            last_seen_unix: d.last_seen_unix,
            embodied_g: d.embodied.map(|g| g.0),
            created_unix: d.created_unix,
        }
    }

    /// The saved totals.
    pub fn totals(&self) -> Totals {
        Totals {
            energy: Joules(self.energy_j),
            idle_energy: Joules(self.idle_energy_j),
            co2e: Grams(self.co2e_g),
            counter_resets: self.hardware_resets,
        }
    }

    /// A snapshot entry for a device that is gone but still within retention: not up, no live
    /// readings, its saved totals.
    pub fn retained_snapshot(&self) -> DeviceSnapshot {
        let info = DeviceInfo {
            kind: self.kind,
            index: self.index,
            uuid: self.uuid.clone(),
            name: self.name.clone(),
            caps: self.caps,
            wraps_at_uj: self.counter.and_then(|c| c.wraps_at_uj),
            channel: None,
        };
        DeviceSnapshot {
            info,
            energy_source: self.energy_source,
            up: false,
            power: None,
            power_limit: None,
            utilization: None,
            counter_discrepancy: None,
            totals: self.totals(),
            errors: Default::default(),
            counter: self.counter,
            last_seen_unix: self.last_seen_unix,
            created_unix: self.created_unix,
            embodied: self.embodied_g.map(Grams),
        }
    }
}

#[cfg(test)]
mod tests;
