//! Workloads on MIG instances: each instance's share of the GPU's energy is split among its
//! compute processes, equally (NVML has no per-process utilization under MIG), and what no
//! instance got is unattributed, so the workloads and unattributed still add up to the GPU.

use super::Attributor;
use crate::backend::DeviceInfo;
use crate::energy::mig::MigShare;
use crate::energy::Step;
use crate::units::{Grams, Joules};

impl Attributor {
    /// Splits MIG GPU `gpu`'s interval `step` by its instances' `shares`: each instance's part
    /// among its processes, the rest unattributed.
    pub fn account_mig(
        &mut self,
        gpu: &DeviceInfo,
        shares: &[MigShare],
        step: Step,
        now_unix: f64,
    ) {
        let (mut energy, mut co2e) = (step.energy.0, step.co2e.0);
        for share in shares {
            energy -= share.step.energy.0;
            co2e -= share.step.co2e.0;
            self.account(
                gpu,
                Some(&share.processes),
                share.step,
                share.power,
                now_unix,
            );
        }
        let rest = Step {
            energy: Joules(energy.max(0.0)),
            idle: Joules(0.0),
            co2e: Grams(co2e.max(0.0)),
        };
        self.account(gpu, None, rest, None, now_unix);
    }
}
