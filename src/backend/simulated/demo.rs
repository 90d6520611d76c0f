//! The processes of `--demo` on the simulated GPUs (who runs them and the pods they belong to
//! are made up in [`crate::attribution::demo`]). Simulated GPU `i` runs, by `i mod 4`:
//! 0. two ranks of a training pod (`ml-research/llm-pretrain-N`, user `alice`);
//! 1. an inference pod (`serving/chat-api-N`, user `svc-infer`);
//! 2. a Slurm batch job (`4821N`, user `bob`), holding the GPU also while idle;
//! 3. nothing: its energy is unattributed.
//!
//! The inference GPUs (`i mod 4 = 1`) are in MIG mode, as inference fleets share GPUs: a
//! `1g.10gb` instance runs the inference pod (busy as the GPU's utilization), a `2g.20gb`
//! instance is half as busy with nothing the exporter can name, and a `3g.40gb` instance idles.

use crate::backend::mig::{InstanceReading, MigDevice, MigLayout, MigReading};
use crate::backend::ProcessUse;

/// The first demo PID; GPU `i`'s processes are `PID_BASE + 10 i` and the next.
pub const PID_BASE: u32 = 40_000;

/// The processes on simulated GPU `index` whose utilization is `util`.
pub fn processes(index: u32, util: f64) -> Vec<ProcessUse> {
    let pid = PID_BASE + index * 10;
    let p = |pid, sm| ProcessUse {
        pid,
        sm_utilization: Some(sm),
    };
    match index % 4 {
        0 => vec![p(pid, util * 0.55), p(pid + 1, util * 0.42)],
        1 | 2 => vec![p(pid, util)],
        _ => Vec::new(),
    }
}

/// SMs of the simulated H100 (NVIDIA H100 SXM5: 132 SMs).
const H100_SMS: u32 = 132;

/// The MIG instances of simulated GPU `index` whose utilization is `util`, with `processes` (the
/// GPU's, when watched) in the first; `None` for GPUs not in MIG mode.
pub fn mig(index: u32, util: f64, processes: Option<&[ProcessUse]>) -> Option<MigReading> {
    if index % 4 != 1 {
        return None;
    }
    let instance = |gi: u32, profile: &str, sm_count: u32, activity: f64, pids: &[ProcessUse]| {
        InstanceReading {
            gpu_instance: gi,
            devices: vec![MigDevice {
                mig_uuid: format!("MIG-5e1f0000-0000-4000-{index:04x}-{gi:012x}"),
                gpu_instance: gi,
                compute_instance: 0,
                profile: profile.to_string(),
                sm_count,
                memory_mb: u64::from(sm_count / 16) * 9984,
            }],
            gpm_activity: Some(activity),
            processes: Some(pids.to_vec()),
        }
    };
    let pods = processes.unwrap_or_default();
    Some(MigReading {
        layout: Some(MigLayout {
            sm_count: H100_SMS,
            gpm: true,
            instances: vec![
                instance(7, "1g.10gb", 16, util, pods),
                instance(3, "2g.20gb", 32, util * 0.5, &[]),
                instance(1, "3g.40gb", 60, 0.0, &[]),
            ],
        }),
        state_errors: 0,
        gpm_errors: 0,
    })
}
