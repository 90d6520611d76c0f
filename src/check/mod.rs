//! `gpu-carbon-exporter check`: proves, on the user's own host and configuration, what the
//! exporter would measure, before it is trusted.
//!
//! One part per file, each returning sections of a [`Report`]:
//! - [`devices`]: every enabled collector opened as the exporter opens them, each device
//!   sampled at `--sample.interval` for `--check.duration`: which readings work, and the
//!   energy counter against the integrated power readings (`energy::discrepancy`), and on a
//!   MIG GPU its instances and GPM (`mig`);
//! - [`intensity`]: the carbon intensity provider, asked once;
//! - [`state`]: whether the ledger at `--state.file` can be kept, without writing it or
//!   locking a running exporter out;
//! - [`listen`]: whether each `--web.listen-address` is free, or served by a running exporter.
//!
//! Flag values the exporter accepts with a warning (a `--path.*` that is not a directory) come
//! first, as problems. [`report`] holds the findings and prints them; any problem makes
//! `check` exit 1.

pub mod devices;
pub mod intensity;
pub mod listen;
mod mig;
pub mod report;
pub mod state;

use std::time::Duration;

use crate::cli::CheckFlags;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::duration;

pub use report::{Report, Section, Status};

/// The check's own settings, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// How long to sample the devices.
    pub duration: Duration,
}

impl Settings {
    /// Checks `--check.duration` against the configuration: it must cover at least one sample
    /// interval, so that counter and power can be compared over one.
    pub fn from_flags(flags: &CheckFlags, config: &Config) -> Result<Settings, ConfigError> {
        let invalid = |reason: String| ConfigError {
            flag: "check.duration",
            value: flags.duration.clone(),
            reason,
        };
        let duration = duration::parse(&flags.duration).map_err(|e| invalid(e.to_string()))?;
        if duration < config.sample_interval {
            return Err(invalid(format!(
                "must be at least --sample.interval ({:?}), so that one interval is compared",
                config.sample_interval
            )));
        }
        Ok(Settings { duration })
    }
}

/// Runs every part of the check against `config` (taking `settings.duration` for the devices)
/// and returns what it found.
pub fn run(config: &Config, settings: Settings) -> Report {
    let mut sections = Vec::new();
    if !config.warnings.is_empty() {
        // Accepted values that look wrong: the exporter only warns, but they lose data.
        let mut s = Section::new("configuration");
        for w in &config.warnings {
            let detail = format!("{}: {}", w.value, w.reason);
            s.add(format!("--{}", w.flag), Status::Problem, detail);
        }
        sections.push(s);
    }
    sections.extend(devices::check(config, settings.duration));
    sections.push(intensity::check(config, SystemClock::new().now().unix));
    sections.push(state::check(config));
    sections.push(listen::check(config));
    Report { sections }
}
