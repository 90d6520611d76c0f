//! `gpu-carbon-exporter`: parse flags, validate, log, run until SIGTERM/SIGINT, exit.
//! Exit codes: 0 clean shutdown, 1 runtime or start-up failure, 2 bad flags or values.

use std::process::ExitCode;

use clap::Parser;
use gpu_carbon_exporter::cli::Cli;
use gpu_carbon_exporter::config::Config;
use gpu_carbon_exporter::{logging, run, shutdown};

fn main() -> ExitCode {
    let cli = Cli::parse(); // clap prints usage errors and exits 2 itself
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("gpu-carbon-exporter: error: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_level, config.log_format);
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "Exporter failed");
            ExitCode::from(1)
        }
    }
}

fn start(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http-worker")
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(run(config, shutdown::signal()));
    // `run` has drained the server and saved the state; what may be left is a password check
    // still running on the blocking pool, which dropping the runtime would wait for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result?;
    Ok(())
}
