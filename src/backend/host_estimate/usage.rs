//! What the host uses, from what procfs and the cgroup say: the processor, CPU utilization
//! between two `/proc/stat` readings, the vCPUs its cgroup allows. Observations only; the
//! power model that turns them into watts is `energy::host`.

/// What `/proc/cpuinfo` says about the first processor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuIdentity {
    /// `vendor_id` (x86) : GenuineIntel, AuthenticAMD.
    pub vendor: String,
    /// `cpu family` (x86).
    pub family: Option<u32>,
    /// `model` (x86).
    pub model: Option<u32>,
    /// `stepping` (x86).
    pub stepping: Option<u32>,
    /// `CPU part` (Arm), e.g. 0xd0c for Neoverse N1.
    pub arm_part: Option<u32>,
    /// `model name`, for the log.
    pub model_name: String,
}

/// Cumulative CPU time from `/proc/stat`'s aggregate line, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// busy + idle + iowait + steal (guest time is already inside user and nice).
    pub total: u64,
}

/// The busy share of CPU time between two readings; `None` when no time passed or the
/// counters went back (a garbled read, a restored VM), where the share is unknown.
pub fn utilization(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    (total > 0 && busy <= total).then(|| busy as f64 / total as f64)
}

/// The vCPUs this host or container has: the online CPUs, fewer if its cpuset allows fewer,
/// and fewer again if its CFS quota (cgroup `cpu.max`) allows less time (fractional then).
pub fn vcpus(online: u32, cpuset: Option<u32>, quota: Option<f64>) -> f64 {
    let cpus = cpuset.map_or(online, |c| c.min(online)) as f64;
    quota
        .filter(|q| q.is_finite() && *q > 0.0)
        .map_or(cpus, |q| q.min(cpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_between_readings() {
        let t = |busy, total| CpuTimes { busy, total };
        assert_eq!(utilization(t(100, 400), t(150, 600)), Some(0.25));
        assert_eq!(utilization(t(100, 400), t(100, 400)), None);
        assert_eq!(utilization(t(100, 400), t(50, 600)), None);
        assert_eq!(utilization(t(100, 400), t(150, 300)), None);
        assert_eq!(utilization(t(0, 0), t(300, 200)), None);
    }

    #[test]
    fn vcpus_follow_the_cgroup() {
        assert_eq!(vcpus(16, None, None), 16.0);
        assert_eq!(vcpus(16, Some(4), None), 4.0);
        assert_eq!(vcpus(16, Some(4), Some(2.5)), 2.5);
        assert_eq!(vcpus(2, Some(4), Some(8.0)), 2.0);
        assert_eq!(vcpus(8, None, Some(0.0)), 8.0);
    }
}
