//! MIG discovery and per-tick instance readings over the [`NvmlApi`] seam.
//!
//! Whether a GPU is in MIG mode, and whether it has GPM, is probed once at start-up and
//! carried as data (changing MIG mode needs a GPU reset, which the driver only allows with no
//! process on it). The instances themselves are listed at every tick, so instances created or
//! destroyed while the exporter runs are found without a restart.

use tracing::{debug, info, warn};

use super::{classify, ErrorClass, NvmlApi};
use crate::backend::mig::{group, InstanceReading, MigDevice, MigLayout, MigReading};
use crate::backend::ProcessUse;

/// Whether a GPU is in MIG mode, found at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigProbe {
    /// Not in MIG mode, or a GPU without MIG.
    Off,
    /// In MIG mode.
    On {
        /// Whether the GPU has GPM (Hopper and newer): per-instance activity.
        gpm: bool,
    },
    /// The MIG state could not be read: the GPU is exported without MIG series, the read is
    /// retried every tick and each failure is counted.
    Unknown,
}

/// Probes MIG mode and GPM support.
pub(super) fn probe(api: &impl NvmlApi, uuid: &str) -> MigProbe {
    match api.mig_enabled(uuid) {
        Ok(true) => {
            let gpm = match api.gpm_supported(uuid) {
                Ok(gpm) => gpm,
                Err(err) => {
                    warn!(uuid, error = %err, "Could not ask whether the GPU has GPM; MIG instances' activity comes from their processes");
                    false
                }
            };
            info!(
                uuid,
                gpm, "GPU in MIG mode: its energy is split among its instances"
            );
            MigProbe::On { gpm }
        }
        Ok(false) => MigProbe::Off,
        Err(err) if classify(&err) == ErrorClass::NotSupported => MigProbe::Off,
        Err(err) => {
            warn!(uuid, error = %err, "Could not read the GPU's MIG state; exporting it without MIG series until it can be read");
            MigProbe::Unknown
        }
    }
}

/// The GPU's MIG instances this tick; `None` for a GPU not in MIG mode.
pub(super) fn read(api: &impl NvmlApi, uuid: &str, probe: &mut MigProbe) -> Option<MigReading> {
    let failed = MigReading {
        layout: None,
        state_errors: 1,
        gpm_errors: 0,
    };
    if *probe == MigProbe::Unknown {
        match api.mig_enabled(uuid) {
            Ok(on) => {
                info!(uuid, mig = on, "GPU's MIG state readable again");
                *probe = if on {
                    self::probe(api, uuid)
                } else {
                    MigProbe::Off
                };
            }
            Err(err) if classify(&err) == ErrorClass::NotSupported => *probe = MigProbe::Off,
            Err(err) => {
                debug!(uuid, error = %err, "MIG state unreadable");
                return Some(failed);
            }
        }
    }
    let MigProbe::On { gpm } = *probe else {
        return None;
    };
    let (sm_count, devices) = match api.mig_devices(uuid) {
        Ok(found) => found,
        Err(err) => {
            debug!(uuid, error = %err, "Could not list MIG instances this tick");
            return Some(failed);
        }
    };
    let mut gpm_errors = 0;
    let instances = group(devices)
        .into_iter()
        .map(|devices| {
            let gi = devices[0].gpu_instance;
            let gpm_activity = if gpm {
                match api.gpm_activity(uuid, gi) {
                    Ok(pct) => pct.map(|p| (p / 100.0).clamp(0.0, 1.0)),
                    Err(err) => {
                        gpm_errors += 1;
                        debug!(uuid, gpu_instance = gi, error = %err, "GPM sample failed; this instance's activity comes from its processes");
                        None
                    }
                }
            } else {
                None
            };
            InstanceReading {
                gpu_instance: gi,
                processes: processes(api, &devices),
                devices,
                gpm_activity,
            }
        })
        .collect();
    Some(MigReading {
        layout: Some(MigLayout {
            sm_count,
            gpm,
            instances,
        }),
        state_errors: 0,
        gpm_errors,
    })
}

/// The compute processes on a GPU instance's MIG devices (NVML has no per-process utilization
/// under MIG); `None` if any listing failed.
fn processes(api: &impl NvmlApi, devices: &[MigDevice]) -> Option<Vec<ProcessUse>> {
    let mut pids = Vec::new();
    for d in devices {
        match api.running_processes(&d.mig_uuid) {
            Ok(found) => pids.extend(found),
            Err(err) => {
                debug!(mig_uuid = %d.mig_uuid, error = %err, "Could not list the MIG device's processes");
                return None;
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Some(
        pids.into_iter()
            .map(|pid| ProcessUse {
                pid,
                sm_utilization: None,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
