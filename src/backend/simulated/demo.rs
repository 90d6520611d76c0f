//! The processes of `--demo` on the simulated GPUs (who runs them and the pods they belong to
//! are made up in [`crate::attribution::demo`]). Simulated GPU `i` runs, by `i mod 4`:
//! 0. two ranks of a training pod (`ml-research/llm-pretrain-N`, user `alice`);
//! 1. an inference pod (`serving/chat-api-N`, user `svc-infer`);
//! 2. a Slurm batch job (`4821N`, user `bob`), holding the GPU also while idle;
//! 3. nothing: its energy is unattributed.

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
