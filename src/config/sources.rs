//! Which collectors run, checked against the platform: NVML, hwmon, RAPL and workload
//! attribution read Linux interfaces, powermetrics is Apple's. On macOS the Linux collectors
//! are off by default and refused by name when asked for; on Linux, powermetrics runs only a
//! program named with `--powermetrics.path` (a stand-in, for testing).

use std::path::{Path, PathBuf};

use super::host::HostEstimateConfig;
use super::{invalid, ConfigError};
use crate::backend::powermetrics;
use crate::cli::Cli;
use crate::energy::{EstimateSettings, PowerModel};
use crate::units::Watts;

/// Where powermetrics is on macOS.
pub const POWERMETRICS: &str = "/usr/bin/powermetrics";

/// The operating system, as far as the collectors care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux: NVML, sysfs (hwmon, RAPL), procfs.
    Linux,
    /// macOS: powermetrics.
    MacOs,
    /// Anything else: only what runs anywhere.
    Other,
}

impl Platform {
    /// The platform this binary was built for.
    pub fn current() -> Platform {
        if cfg!(target_os = "linux") {
            Platform::Linux
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Other
        }
    }
}

/// Where NVIDIA GPU readings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum NvidiaSource {
    /// NVML, from `library` or the default library name.
    Nvml {
        /// `--nvml.library-path`.
        library: Option<PathBuf>,
    },
    /// `gpus` simulated GPUs (`--demo`).
    Simulated {
        /// `--simulated.gpus`.
        gpus: u32,
    },
}

/// The collectors to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// NVIDIA GPUs (or simulated ones), unless `--no-collector.nvml` (or on macOS).
    pub nvidia: Option<NvidiaSource>,
    /// `--collector.hwmon`: AMD and Intel GPUs.
    pub hwmon: bool,
    /// `--collector.rapl`: CPU package and DRAM energy.
    pub rapl: bool,
    /// `--collector.powermetrics`: Mac CPU, GPU and Neural Engine power.
    pub powermetrics: Option<powermetrics::Settings>,
    /// `--path.sysfs`.
    pub sysfs: PathBuf,
    /// Power estimation settings.
    pub estimate: EstimateSettings,
    /// The host's CPU and memory estimate, unless off (Linux only: it reads `/proc`).
    pub host_estimate: Option<HostEstimateConfig>,
}

/// Refuses a Linux-only flag given on macOS.
fn linux_only(flag: &'static str, given: bool, platform: Platform) -> Result<(), ConfigError> {
    if given && platform == Platform::MacOs {
        return Err(invalid(
            flag,
            true,
            "not available on macOS (it reads Linux interfaces); use --collector.powermetrics",
        ));
    }
    Ok(())
}

pub(super) fn sources(cli: &Cli, platform: Platform) -> Result<Sources, ConfigError> {
    linux_only("collector.nvml", cli.collector_nvml, platform)?;
    linux_only(
        "nvml.library-path",
        cli.nvml_library_path.is_some(),
        platform,
    )?;
    linux_only("collector.hwmon", cli.collector_hwmon, platform)?;
    linux_only("collector.rapl", cli.collector_rapl, platform)?;
    linux_only(
        "collector.attribution",
        cli.collector_attribution && !cli.demo,
        platform,
    )?;
    let nvidia = if cli.demo {
        if !(1..=1024).contains(&cli.simulated_gpus) {
            return Err(invalid(
                "simulated.gpus",
                cli.simulated_gpus,
                "must be 1 to 1024",
            ));
        }
        Some(NvidiaSource::Simulated {
            gpus: cli.simulated_gpus,
        })
    } else if cli.no_collector_nvml || platform == Platform::MacOs {
        None
    } else {
        Some(NvidiaSource::Nvml {
            library: cli.nvml_library_path.clone(),
        })
    };
    let (hwmon, rapl) = (cli.collector_hwmon, cli.collector_rapl);
    let powermetrics = powermetrics_settings(cli, platform)?;
    if nvidia.is_none() && !hwmon && !rapl && powermetrics.is_none() {
        let (flag, reason) = match platform {
            Platform::MacOs => (
                "collector.powermetrics",
                "no collector enabled; on macOS enable --collector.powermetrics (as root), or use --demo",
            ),
            _ => (
                "no-collector.nvml",
                "no collector left; enable --collector.hwmon, --collector.rapl or --collector.powermetrics, or use --demo",
            ),
        };
        let given = platform != Platform::MacOs;
        return Err(invalid(flag, given, reason));
    }
    Ok(Sources {
        nvidia,
        hwmon,
        rapl,
        powermetrics,
        sysfs: cli.path_sysfs.clone(),
        estimate: EstimateSettings {
            force: cli.estimate_force,
            model: power_model(cli.estimate_rated_watts, cli.estimate_idle_watts)?,
        },
        host_estimate: match platform {
            Platform::Linux => super::host::config(cli)?,
            _ => None,
        },
    })
}

/// Workload attribution reads `/proc`: on macOS it runs only for `--demo`'s made-up workloads.
pub(super) fn attributes(cli: &Cli, platform: Platform) -> bool {
    platform != Platform::MacOs || cli.demo
}

/// `--collector.powermetrics`: the program is `--powermetrics.path`, which macOS defaults to
/// Apple's and every other platform needs, and which must be a file.
fn powermetrics_settings(
    cli: &Cli,
    platform: Platform,
) -> Result<Option<powermetrics::Settings>, ConfigError> {
    if !cli.collector_powermetrics {
        return Ok(None);
    }
    let program = match (&cli.powermetrics_path, platform) {
        (Some(path), _) => path.clone(),
        (None, Platform::MacOs) => PathBuf::from(POWERMETRICS),
        (None, _) => {
            return Err(invalid(
                "collector.powermetrics",
                true,
                "powermetrics exists only on macOS; on this system name a stand-in that writes its plist output with --powermetrics.path",
            ))
        }
    };
    if !Path::new(&program).is_file() {
        return Err(invalid(
            "powermetrics.path",
            program.display(),
            "is not a file (powermetrics ships with macOS in /usr/bin)",
        ));
    }
    let interval = super::checks::within(
        "sample.interval",
        &cli.sample_interval,
        super::INTERVAL_RANGE,
    )?;
    Ok(Some(powermetrics::Settings { program, interval }))
}

/// A model from `--estimate.rated-watts` and `--estimate.idle-watts`, if given.
fn power_model(rated: Option<f64>, idle: Option<f64>) -> Result<Option<PowerModel>, ConfigError> {
    let Some(rated) = rated else { return Ok(None) };
    if !(rated > 0.0 && rated <= 5_000.0) {
        return Err(invalid(
            "estimate.rated-watts",
            rated,
            "must be above 0 and at most 5000",
        ));
    }
    let model = match idle {
        None => PowerModel::from_rated(Watts(rated)),
        Some(i) if (0.0..=rated).contains(&i) => PowerModel {
            idle: Watts(i),
            rated: Watts(rated),
        },
        Some(i) => {
            return Err(invalid(
                "estimate.idle-watts",
                i,
                "must be between 0 and --estimate.rated-watts",
            ))
        }
    };
    Ok(Some(model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn on(platform: Platform, args: &[&str]) -> Result<Sources, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("gpu-carbon-exporter").chain(args.iter().copied()))
                .expect("flags parse");
        sources(&cli, platform)
    }

    const FAKE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fake-powermetrics/powermetrics"
    );

    /// On Linux, powermetrics runs only a program named on the command line, which must exist;
    /// it samples at the exporter's interval.
    #[test]
    fn powermetrics_on_linux_needs_a_program() {
        let err = on(Platform::Linux, &["--collector.powermetrics"]).expect_err("no path");
        assert_eq!(err.flag, "collector.powermetrics");
        assert!(err.to_string().contains("--powermetrics.path"), "{err}");
        let err = on(
            Platform::Linux,
            &[
                "--collector.powermetrics",
                "--powermetrics.path=/nonexistent",
            ],
        )
        .expect_err("missing");
        assert_eq!(err.flag, "powermetrics.path");
        let path = format!("--powermetrics.path={FAKE}");
        let s = on(
            Platform::Linux,
            &["--collector.powermetrics", &path, "--sample.interval=250ms"],
        )
        .expect("valid");
        let p = s.powermetrics.expect("on");
        assert_eq!(p.program, PathBuf::from(FAKE));
        assert_eq!(
            p.launch().args.join(" "),
            "--samplers cpu_power,gpu_power -i 250 -f plist"
        );
        assert!(s.nvidia.is_some(), "NVML stays on by default on Linux");
        let s = on(Platform::Linux, &[&path]).expect("valid");
        assert_eq!(s.powermetrics, None, "off by default");
    }

    /// On macOS the Linux collectors are off by default and refused by name when asked for;
    /// powermetrics defaults to Apple's program; with nothing enabled the message says what to
    /// enable.
    #[test]
    fn macos_refuses_linux_collectors_by_name() {
        for (arg, flag) in [
            ("--collector.nvml", "collector.nvml"),
            ("--nvml.library-path=/x.so", "nvml.library-path"),
            ("--collector.hwmon", "collector.hwmon"),
            ("--collector.rapl", "collector.rapl"),
            ("--collector.attribution", "collector.attribution"),
        ] {
            let err = on(Platform::MacOs, &["--demo", arg]).err();
            let err = match (arg, err) {
                // --demo attributes to made-up workloads anywhere.
                ("--collector.attribution", None) => continue,
                (_, err) => err.expect("refused"),
            };
            assert_eq!(err.flag, flag);
            assert!(err.to_string().contains("not available on macOS"), "{err}");
        }
        let err = on(
            Platform::MacOs,
            &["--collector.attribution", "--collector.powermetrics"],
        )
        .err();
        assert_eq!(err.map(|e| e.flag), Some("collector.attribution"));
        let err = on(Platform::MacOs, &[]).expect_err("nothing enabled");
        assert_eq!(err.flag, "collector.powermetrics");
        let s = on(Platform::MacOs, &["--demo"]).expect("valid");
        assert_eq!(s.nvidia, Some(NvidiaSource::Simulated { gpus: 4 }));
        let cli = Cli::try_parse_from(["x"]).expect("parse");
        assert!(!attributes(&cli, Platform::MacOs));
        assert!(attributes(&cli, Platform::Linux));
    }
}
