//! The MIG part of a device's check: whether MIG mode is on, which instances NVML lists, and
//! whether the instance list and GPM (the activity the energy split weighs by) could be read
//! at every sample.

use super::report::{Section, Status};
use crate::backend::mig::MigReading;

/// What the samples of one GPU said about MIG.
#[derive(Debug, Clone, Default)]
pub(super) struct MigProbe {
    /// Samples that came with a MIG reading (MIG mode on).
    readings: u32,
    /// Of those, samples whose MIG state or instance list could not be read.
    unlisted: u32,
    /// Failed reads of the MIG state or the instance list.
    state_errors: u64,
    /// Instances whose GPM sample failed.
    gpm_errors: u64,
    /// The latest instance layout: each instance's profile, and whether GPM is there.
    layout: Option<(Vec<String>, bool)>,
}

impl MigProbe {
    /// Records one sample's MIG reading (`None`: MIG mode off, or not an NVML GPU).
    pub(super) fn record(&mut self, mig: Option<&MigReading>) {
        let Some(mig) = mig else { return };
        self.readings += 1;
        self.state_errors += mig.state_errors;
        self.gpm_errors += mig.gpm_errors;
        match &mig.layout {
            Some(layout) => {
                let profiles = layout
                    .instances
                    .iter()
                    .flat_map(|i| i.devices.iter().map(|d| d.profile.clone()))
                    .collect();
                self.layout = Some((profiles, layout.gpm));
            }
            None => self.unlisted += 1,
        }
    }

    /// Adds the `MIG` finding to `s`, out of `samples` readable samples.
    pub(super) fn report(&self, s: &mut Section, samples: u32) {
        if self.readings == 0 {
            s.add("MIG", Status::Note, "not enabled");
            return;
        }
        if self.unlisted > 0 || self.state_errors > 0 {
            let detail = format!(
                "instances unreadable in {} of {samples} samples ({} failed reads): their energy goes to the GPU's unallocated share",
                self.unlisted, self.state_errors
            );
            s.add("MIG", Status::Problem, detail);
            return;
        }
        let (profiles, gpm) = self.layout.clone().unwrap_or_default();
        let instances = match profiles.len() {
            0 => "enabled, no instances: all energy is unallocated".to_string(),
            1 => format!("enabled, 1 instance ({})", profiles[0]),
            n => format!("enabled, {n} instances ({})", profiles.join(", ")),
        };
        if self.gpm_errors > 0 {
            let detail = format!(
                "{instances}; GPM failed {} times (those instances fell back to their processes)",
                self.gpm_errors
            );
            s.add("MIG", Status::Problem, detail);
        } else if gpm {
            s.add("MIG", Status::Ok, format!("{instances}, activity from GPM"));
        } else {
            let detail = format!("{instances}, activity from processes (no GPM)");
            s.add("MIG", Status::Ok, detail);
        }
    }
}
