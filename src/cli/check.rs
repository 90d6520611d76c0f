//! The `check` subcommand's own flags (the exporter's flags go before `check`).

use clap::{Args, Subcommand};

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the devices, intensity provider, state file and listen address, then exit.
    ///
    /// Uses the flags given before `check`: samples every device for --check.duration and
    /// reports which readings work and whether each energy counter agrees with its power
    /// readings; asks the intensity provider once; checks that the state file can be written
    /// (without writing it, or locking a running exporter out) and that the listen address is
    /// free or taken by a running exporter. Exit 0 when all is well, 1 with the reasons
    /// otherwise, 2 for bad flags.
    Check(CheckFlags),
}

/// Flags of `check`.
#[derive(Debug, Args)]
pub struct CheckFlags {
    /// How long to sample the devices, at --sample.interval, in Prometheus duration syntax.
    #[arg(
        long = "check.duration",
        env = "GPU_CARBON_EXPORTER_CHECK_DURATION",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub duration: String,
}
