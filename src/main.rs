//! `gpu-carbon-exporter`: parse flags, validate, log, run until SIGTERM/SIGINT, exit.
//! Exit codes: 0 clean shutdown, 1 runtime or start-up failure, 2 bad flags or values.
//! `check` instead runs the self-check and exits 0 (all well) or 1 (problems found).

use std::process::ExitCode;

use clap::Parser;
use gpu_carbon_exporter::check;
use gpu_carbon_exporter::cli::{CheckFlags, Cli, Command, LogLevel};
use gpu_carbon_exporter::config::{environment, Config};
use gpu_carbon_exporter::{logging, run, shutdown};

fn main() -> ExitCode {
    let mut cli = Cli::parse(); // clap prints usage errors and exits 2 itself
    let command = cli.command.take();
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(err) => return usage_error(&err),
    };
    if let Some(Command::Check(flags)) = command {
        return check(&flags, &config);
    }
    logging::init(config.log_level, config.log_format);
    for v in environment::unknown_variables(std::env::vars_os().map(|(name, _)| name)) {
        tracing::warn!(variable = %v.name, did_you_mean = v.did_you_mean.as_deref().unwrap_or("none"), "Ignoring an environment variable with the exporter's prefix that no flag reads (misspelt?)");
    }
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Every start-up error's message already includes its cause; the alternate form
            // would print the chain of sources after it again.
            tracing::error!(error = %err, "Exporter failed");
            ExitCode::from(1)
        }
    }
}

fn usage_error(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("gpu-carbon-exporter: error: {err}");
    ExitCode::from(2)
}

/// `check`: the report on stdout, the log (warnings and worse unless --log.level=debug) on
/// stderr; exit 1 when it found a problem.
fn check(flags: &CheckFlags, config: &Config) -> ExitCode {
    let settings = match check::Settings::from_flags(flags, config) {
        Ok(s) => s,
        Err(err) => return usage_error(&err),
    };
    let level = match config.log_level {
        LogLevel::Info => LogLevel::Warn,
        other => other,
    };
    logging::init(level, config.log_format);
    let report = check::run(config, settings);
    print!("{}", report.render());
    if report.problems().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn start(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http-worker")
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    // The signal handlers are installed inside the runtime, before anything listens.
    let result = runtime.block_on(async { run(config, shutdown::signal()).await });
    // `run` has drained the server and saved the state; what may be left is a password check
    // still running on the blocking pool, which dropping the runtime would wait for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result?;
    Ok(())
}
