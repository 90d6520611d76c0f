//! Flags of the host estimate: the host's CPU and memory power by the Cloud Carbon Footprint
//! model where RAPL can't measure them (`--collector.host-estimate`, `--estimate.host.force`,
//! `--estimate.cpu.*`, `--estimate.memory.*`).

use clap::{Args, ValueEnum};

/// `--estimate.host.scope` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostScope {
    /// The vCPUs and memory the exporter's cgroup allows (cpu.max, cpuset, memory.max).
    Cgroup,
    /// All online CPUs and all installed memory, whatever the exporter's own limits.
    Machine,
}

/// Host estimate flags.
#[derive(Debug, Args)]
pub struct HostFlags {
    /// Estimate the host's CPU and memory power from CPU utilization (/proc/stat), vCPUs and
    /// installed memory where RAPL doesn't measure them (on by default unless RAPL is read or
    /// --demo is given; --no-collector.host-estimate turns it off).
    #[arg(
        long = "collector.host-estimate",
        env = "GPU_CARBON_EXPORTER_COLLECTOR_HOST_ESTIMATE",
        overrides_with = "no_collector_host_estimate"
    )]
    pub collector_host_estimate: bool,
    /// Do not estimate the host's CPU and memory power.
    #[arg(long = "no-collector.host-estimate")]
    pub no_collector_host_estimate: bool,

    /// Estimate the host's CPU and memory power even where RAPL measures them.
    #[arg(
        long = "estimate.host.force",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_HOST_FORCE"
    )]
    pub force: bool,

    /// What the host estimate counts: cgroup (the vCPUs and memory the exporter's cgroup
    /// under --path.sysfs allows: a container's or a VM's) or machine (all online CPUs and
    /// installed memory, for an exporter in a resource-limited pod that reports its node).
    #[arg(
        long = "estimate.host.scope",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_HOST_SCOPE",
        value_enum,
        default_value = "cgroup",
        value_name = "SCOPE"
    )]
    pub host_scope: HostScope,

    /// Watts per vCPU at 0 % utilization for the host estimate; default: the Cloud Carbon
    /// Footprint table by CPU microarchitecture (0.74 where it is not recognised).
    #[arg(
        long = "estimate.cpu.min-watts-per-vcpu",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_CPU_MIN_WATTS_PER_VCPU",
        value_name = "W"
    )]
    pub cpu_min_watts: Option<f64>,

    /// Watts per vCPU at 100 % utilization for the host estimate; default: the Cloud Carbon
    /// Footprint table by CPU microarchitecture (3.5 where it is not recognised).
    #[arg(
        long = "estimate.cpu.max-watts-per-vcpu",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_CPU_MAX_WATTS_PER_VCPU",
        value_name = "W"
    )]
    pub cpu_max_watts: Option<f64>,

    /// Watts per GB (GiB) of installed memory for the host estimate. Default: 0.392 (Cloud
    /// Carbon Footprint).
    #[arg(
        long = "estimate.memory.watts-per-gb",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_MEMORY_WATTS_PER_GB",
        value_name = "W"
    )]
    pub memory_watts_per_gb: Option<f64>,
}
