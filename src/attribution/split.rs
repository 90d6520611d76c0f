//! The split of one interval's device energy among the processes present on the GPU: a pure
//! function of what NVML reported, unit-tested without a device.
//!
//! Policy (full-cost allocation):
//! - no process present: everything is unattributed;
//! - at least one present process has a positive SM-utilization sample: shares are
//!   proportional to SM utilization, so a process that ran no kernel this interval gets 0;
//! - processes present but no usable sample (unsupported, MIG, all idle): equal shares, because
//!   a process that holds a GPU keeps it from everyone else and owns its idle draw.
//!
//! The parts always add up to the whole: the largest share takes the remainder of the
//! floating-point products, so Σ parts = amount to the last bit of one addition.

/// How the shares of one interval were decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// No process present.
    Unattributed,
    /// Proportional to SM utilization samples.
    SmUtilization,
    /// Equal among present processes.
    Equal,
}

/// Shares (summing to 1) of the processes whose SM utilization samples (0–1, `None` where
/// NVML had no sample) are `sm`, in the same order, and how they were decided. Empty when no
/// process is present.
pub fn shares(sm: &[Option<f64>]) -> (Vec<f64>, Basis) {
    if sm.is_empty() {
        return (Vec::new(), Basis::Unattributed);
    }
    let usable = |s: &Option<f64>| s.filter(|v| v.is_finite() && *v > 0.0);
    let total: f64 = sm.iter().filter_map(usable).sum();
    if total > 0.0 {
        let weights = sm.iter().map(|s| usable(s).unwrap_or(0.0) / total);
        (weights.collect(), Basis::SmUtilization)
    } else {
        let equal = 1.0 / sm.len() as f64;
        (vec![equal; sm.len()], Basis::Equal)
    }
}

/// `amount` split by `shares` (which sum to 1): the parts add up to `amount` exactly up to one
/// floating-point rounding, the remainder going to the largest share (so it never turns
/// negative). Empty shares give no parts.
pub fn split(amount: f64, shares: &[f64]) -> Vec<f64> {
    let Some(largest) = shares
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
    else {
        return Vec::new();
    };
    let mut parts: Vec<f64> = shares.iter().map(|s| amount * s).collect();
    let others: f64 = parts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != largest)
        .map(|(_, p)| p)
        .sum();
    parts[largest] = amount - others;
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn no_process_is_unattributed() {
        assert_eq!(shares(&[]), (vec![], Basis::Unattributed));
        assert!(split(5.0, &[]).is_empty());
    }

    #[test]
    fn proportional_to_sm_where_samples_exist() {
        let (s, basis) = shares(&[Some(0.6), Some(0.2), None]);
        assert_eq!(basis, Basis::SmUtilization);
        assert!(
            close(s[0], 0.75) && close(s[1], 0.25) && s[2] == 0.0,
            "{s:?}"
        );
    }

    #[test]
    fn equal_where_no_sample_or_all_idle() {
        assert_eq!(shares(&[None, None]), (vec![0.5, 0.5], Basis::Equal));
        let (s, basis) = shares(&[Some(0.0), None, Some(f64::NAN), Some(-1.0)]);
        assert_eq!(basis, Basis::Equal);
        assert_eq!(s, vec![0.25; 4]);
    }

    #[test]
    fn parts_add_up_exactly() {
        let sm: Vec<Option<f64>> = (1..=20).map(|i| Some(f64::from(i) * 0.0137)).collect();
        let (s, _) = shares(&sm);
        for amount in [0.0, 1e-9, 0.1, 123.456_789, 7.3e6] {
            let parts = split(amount, &s);
            let sum: f64 = parts.iter().sum();
            assert!((sum - amount).abs() <= amount * 1e-15, "{amount}: {sum}");
            assert!(parts.iter().all(|p| *p >= 0.0));
        }
        let parts = split(3.0, &[1.0 / 3.0; 3]);
        assert!(parts.iter().all(|p| close(*p, 1.0)));
    }

    #[test]
    fn zero_shares_get_nothing_and_remainder_goes_to_largest() {
        let parts = split(10.0, &[0.0, 1.0, 0.0]);
        assert_eq!(parts, vec![0.0, 10.0, 0.0]);
    }
}
