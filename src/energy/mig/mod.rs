//! MIG: each sample interval's energy of a MIG-enabled GPU split among its GPU instances.
//!
//! NVML measures power and energy for the parent GPU only. For an interval's device energy
//! ΔE, instance i's weight is wᵢ = SMsᵢ × activityᵢ, where activityᵢ is its GPM graphics
//! utilization over the interval (0–1, Hopper and newer) or, without a GPM figure (A100, a
//! failed sample, an instance's first interval), 1 if it has a compute process and 0 if not.
//! If Σw > 0, ΔEᵢ = ΔE·wᵢ/Σw. Otherwise (every instance idle) ΔEᵢ = ΔE·SMsᵢ/SMs of the GPU,
//! and the rest — the share of SMs in no instance — is unallocated. CO2e follows energy step
//! by step with the same shares.
//!
//! The parts and the unallocated rest add up to ΔE: the rest is ΔE minus the parts, never
//! below zero, so Σ parts + unallocated = ΔE to the rounding of one sum.
//!
//! [`ledger`] keeps each instance's and the unallocated running totals.

pub mod ledger;

pub use ledger::{InstanceTotals, MigAccounts, MigErrors, MigGpu, MigShare, MigSnapshot};

/// One GPU instance's claim on an interval's energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// SMs of the GPU instance.
    pub sm_count: u32,
    /// How busy it was over the interval, 0–1.
    pub activity: f64,
}

/// How an interval's shares were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// In proportion to SMs × activity.
    Activity,
    /// Every instance idle (or none): by SM count, the rest unallocated.
    Idle,
}

/// An instance's activity: its GPM figure if there is one, else 1 with a compute process and 0
/// without (`None`: the listing failed, counted as no process).
pub fn activity(gpm: Option<f64>, processes: Option<usize>) -> f64 {
    match gpm.filter(|a| a.is_finite()) {
        Some(a) => a.clamp(0.0, 1.0),
        None if processes.unwrap_or(0) > 0 => 1.0,
        None => 0.0,
    }
}

/// Each instance's share (0–1) of an interval's energy, in the order of `claims`, and the rule
/// that decided them. `gpu_sm_count` is the SM count of the whole GPU; should the instances
/// claim more SMs than that (a driver answer that can't be true), their sum is used instead.
pub fn shares(gpu_sm_count: u32, claims: &[Claim]) -> (Vec<f64>, Rule) {
    let weights: Vec<f64> = claims
        .iter()
        .map(|c| f64::from(c.sm_count) * activity(Some(c.activity), None))
        .collect();
    let total: f64 = weights.iter().sum();
    if total > 0.0 {
        return (weights.iter().map(|w| w / total).collect(), Rule::Activity);
    }
    let claimed: u32 = claims.iter().map(|c| c.sm_count).sum();
    let whole = f64::from(gpu_sm_count.max(claimed));
    let shares = claims
        .iter()
        .map(|c| {
            if whole > 0.0 {
                f64::from(c.sm_count) / whole
            } else {
                0.0
            }
        })
        .collect();
    (shares, Rule::Idle)
}

/// `amount` split by `shares` (each 0–1, summing to at most 1): the parts, and the unallocated
/// rest, which is `amount` minus the parts and never negative.
pub fn split(amount: f64, shares: &[f64]) -> (Vec<f64>, f64) {
    let parts: Vec<f64> = shares.iter().map(|s| amount * s).collect();
    let allocated: f64 = parts.iter().sum();
    (parts, (amount - allocated).max(0.0))
}

#[cfg(test)]
mod tests;
