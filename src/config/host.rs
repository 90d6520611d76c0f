//! `--collector.host-estimate`, `--estimate.host.force`, `--estimate.cpu.*` and
//! `--estimate.memory.*`: the host's CPU and memory power estimate where RAPL doesn't measure.

use std::path::PathBuf;

use super::{invalid, ConfigError};
use crate::cli::{Cli, HostScope};
use crate::energy::host::HostEstimateSettings;
use crate::units::Watts;

/// Largest accepted watts per vCPU (CCF's largest is 8.58, Sandy Bridge).
const MAX_WATTS_PER_VCPU: f64 = 100.0;
/// Largest accepted watts per GiB (CCF's is 0.392).
const MAX_WATTS_PER_GIB: f64 = 10.0;

/// The host estimate, when enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEstimateConfig {
    /// The coefficients given by flags (the rest come from the built-in table).
    pub settings: HostEstimateSettings,
    /// `--estimate.host.force`: estimate even where RAPL measures.
    pub force: bool,
    /// `--path.procfs`: `stat`, `cpuinfo`, `meminfo`.
    pub procfs: PathBuf,
    /// The cgroup (v2) whose `cpu.max`, `cpuset.cpus.effective` and `memory.max` bound the
    /// vCPUs and memory counted: `--path.sysfs`/fs/cgroup; `None` with
    /// `--estimate.host.scope=machine`.
    pub cgroup: Option<PathBuf>,
}

/// The host estimate's settings, or `None` when it is off: by `--no-collector.host-estimate`,
/// or by default with `--demo` (the simulated GPUs' numbers are made up; the host's would be
/// real), where `--collector.host-estimate` turns it on.
pub(super) fn config(cli: &Cli) -> Result<Option<HostEstimateConfig>, ConfigError> {
    let f = &cli.host;
    let cpu_min = per_vcpu("estimate.cpu.min-watts-per-vcpu", f.cpu_min_watts)?;
    let cpu_max = per_vcpu("estimate.cpu.max-watts-per-vcpu", f.cpu_max_watts)?;
    if let (Some(min), Some(max)) = (cpu_min, cpu_max) {
        if min > max {
            return Err(invalid(
                "estimate.cpu.min-watts-per-vcpu",
                min.0,
                format!(
                    "must not exceed --estimate.cpu.max-watts-per-vcpu ({})",
                    max.0
                ),
            ));
        }
    }
    let memory = match f.memory_watts_per_gb {
        Some(w) if !(w.is_finite() && (0.0..=MAX_WATTS_PER_GIB).contains(&w)) => {
            return Err(invalid(
                "estimate.memory.watts-per-gb",
                w,
                format!("must be 0 to {MAX_WATTS_PER_GIB}"),
            ))
        }
        other => other,
    };
    let on = !f.no_collector_host_estimate && (!cli.demo || f.collector_host_estimate);
    Ok(on.then(|| HostEstimateConfig {
        settings: HostEstimateSettings {
            cpu_min,
            cpu_max,
            memory_watts_per_gib: memory,
        },
        force: f.force,
        procfs: cli.path_procfs.clone(),
        cgroup: (f.host_scope == HostScope::Cgroup).then(|| cli.path_sysfs.join("fs/cgroup")),
    }))
}

fn per_vcpu(flag: &'static str, value: Option<f64>) -> Result<Option<Watts>, ConfigError> {
    match value {
        Some(w) if !(w.is_finite() && (0.0..=MAX_WATTS_PER_VCPU).contains(&w)) => Err(invalid(
            flag,
            w,
            format!("must be 0 to {MAX_WATTS_PER_VCPU}"),
        )),
        other => Ok(other.map(Watts)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Option<HostEstimateConfig>, ConfigError> {
        let mut all = vec!["gpu-carbon-exporter"];
        all.extend_from_slice(args);
        config(&Cli::parse_from(all))
    }

    #[test]
    fn on_by_default_off_with_demo_unless_asked() {
        let c = parse(&[]).expect("valid").expect("on");
        assert_eq!(c.procfs, PathBuf::from("/proc"));
        assert_eq!(c.cgroup, Some(PathBuf::from("/sys/fs/cgroup")));
        let machine = parse(&["--estimate.host.scope=machine"]).expect("valid");
        assert_eq!(machine.expect("on").cgroup, None);
        assert!(!c.force);
        assert_eq!(
            parse(&["--no-collector.host-estimate"]).expect("valid"),
            None
        );
        assert_eq!(parse(&["--demo"]).expect("valid"), None);
        assert!(parse(&["--demo", "--collector.host-estimate"])
            .expect("valid")
            .is_some());
    }

    #[test]
    fn coefficients_from_flags() {
        let c = parse(&[
            "--estimate.cpu.min-watts-per-vcpu=1",
            "--estimate.cpu.max-watts-per-vcpu=3",
            "--estimate.memory.watts-per-gb=0.5",
            "--estimate.host.force",
        ])
        .expect("valid")
        .expect("on");
        assert_eq!(c.settings.cpu_min, Some(Watts(1.0)));
        assert_eq!(c.settings.cpu_max, Some(Watts(3.0)));
        assert_eq!(c.settings.memory_watts_per_gib, Some(0.5));
        assert!(c.force);
    }

    #[test]
    fn bad_coefficients_name_their_flag() {
        for (args, flag) in [
            (
                vec!["--estimate.cpu.min-watts-per-vcpu=-1"],
                "estimate.cpu.min-watts-per-vcpu",
            ),
            (
                vec!["--estimate.cpu.max-watts-per-vcpu=NaN"],
                "estimate.cpu.max-watts-per-vcpu",
            ),
            (
                vec!["--estimate.memory.watts-per-gb=11"],
                "estimate.memory.watts-per-gb",
            ),
            (
                vec![
                    "--estimate.cpu.min-watts-per-vcpu=4",
                    "--estimate.cpu.max-watts-per-vcpu=3",
                ],
                "estimate.cpu.min-watts-per-vcpu",
            ),
        ] {
            let err = parse(&args).expect_err("invalid");
            assert_eq!(err.flag, flag, "{args:?}");
        }
    }
}
