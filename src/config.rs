//! Validated configuration, built from the raw flags. Every rejection names its flag; `main`
//! turns one into exit code 2.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod attribution;
mod carbon;
mod checks;
pub mod environment;
mod host;
mod sources;

use crate::cli::{Cli, LogFormat, LogLevel};
use crate::duration;
use crate::state;
use crate::webconfig::Security;
pub use attribution::AttributionConfig;
pub use host::HostEstimateConfig;
pub use sources::{NvidiaSource, Platform, Sources};

/// Shortest and longest accepted `--sample.interval`.
const INTERVAL_RANGE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(300));
/// Paths the exporter serves itself, which the telemetry path may not take.
const RESERVED_PATHS: [&str; 3] = ["/", "/-/healthy", "/-/ready"];

/// A flag value that can't be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for --{flag}: {reason}")]
pub struct ConfigError {
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A flag value that is accepted but looks wrong; logged as a warning at start-up (logging is
/// not set up yet while flags are checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}={value}: {reason}")]
pub struct ConfigWarning {
    /// The flag, without dashes.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What looks wrong, and what it affects.
    pub reason: String,
}

fn invalid(flag: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `--state.*`: the persistent ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// `--state.file`.
    pub path: PathBuf,
    /// `--state.flush-interval`.
    pub flush_interval: Duration,
    /// `--state.retention`.
    pub retention: Duration,
}

/// `--web.config.file`, loaded and checked.
#[derive(Debug, Clone)]
pub struct WebSetup {
    /// The file, reloaded on SIGHUP and when it changes.
    pub path: PathBuf,
    /// What it configured at start-up.
    pub security: Arc<Security>,
    /// The files the load read (the config and the files it names).
    pub watched: Vec<PathBuf>,
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
    /// Cap on concurrent requests.
    pub max_requests: usize,
    /// Cap on open connections.
    pub max_connections: usize,
    /// TLS, authentication and headers, if `--web.config.file` is given.
    pub web: Option<WebSetup>,
    /// Sampling period.
    pub sample_interval: Duration,
    /// The collectors.
    pub sources: Sources,
    /// The persistent ledger, if `--state.file` is set.
    pub state: Option<StateConfig>,
    /// Per-workload attribution, unless `--no-collector.attribution`.
    pub attribution: Option<AttributionConfig>,
    /// Carbon accounting settings.
    pub carbon: crate::carbon::Settings,
    /// `--log.level`.
    pub log_level: LogLevel,
    /// `--log.format`.
    pub log_format: LogFormat,
    /// Accepted values that look wrong, to log at start-up.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    /// Checks every flag, reading credentials from the process environment.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        Config::from_cli_env(cli, &|name| std::env::var(name).ok())
    }

    /// Checks every flag, looking credentials up with `env`.
    pub fn from_cli_env(
        cli: Cli,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let platform = Platform::current();
        let sources = sources::sources(&cli, platform)?;
        let state = state(&cli)?;
        let carbon = carbon::carbon(&cli, env)?;
        let attribution =
            attribution::config(&cli)?.filter(|_| sources::attributes(&cli, platform));
        // The host paths are read only by the Linux collectors, which macOS doesn't run.
        let warnings = match platform {
            Platform::MacOs => Vec::new(),
            _ => checks::host_paths(&cli),
        };
        Ok(Config {
            attribution,
            listen: cli
                .listen_address
                .iter()
                .map(|a| listen_address(a))
                .collect::<Result<_, _>>()?,
            telemetry_path: telemetry_path(cli.telemetry_path)?,
            max_connections: match cli.max_connections {
                0 => return Err(invalid("web.max-connections", 0, "must be at least 1")),
                n => n,
            },
            max_requests: match cli.max_requests {
                0 => return Err(invalid("web.max-requests", 0, "must be at least 1")),
                n => n,
            },
            web: cli.web_config_file.as_deref().map(web_config).transpose()?,
            sample_interval: checks::within(
                "sample.interval",
                &cli.sample_interval,
                INTERVAL_RANGE,
            )?,
            sources,
            state,
            carbon,
            log_level: cli.log_level,
            log_format: cli.log_format,
            warnings,
        })
    }
}

fn state(cli: &Cli) -> Result<Option<StateConfig>, ConfigError> {
    let flush = checks::within(
        "state.flush-interval",
        &cli.state_flush_interval,
        (Duration::from_secs(1), Duration::from_secs(3600)),
    )?;
    let retention = duration::parse(&cli.state_retention)
        .map_err(|e| invalid("state.retention", &cli.state_retention, e))?;
    let Some(path) = &cli.state_file else {
        return Ok(None);
    };
    if path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(invalid("state.file", path.display(), "must name a file"));
    }
    // Only a regular file (or nothing yet) is ever read, written or moved aside: not a
    // directory, a device, a FIFO or a symbolic link, and the journal beside it likewise.
    for (p, what) in [
        (path.clone(), "it"),
        (state::journal::path_for(path), "its journal"),
    ] {
        match state::files::not_regular(&p) {
            Ok(None) => {}
            Ok(Some(kind)) => {
                let why = format!("{what} ({}) is {kind}, not a regular file", p.display());
                return Err(invalid("state.file", path.display(), why));
            }
            Err(e) => {
                let why = format!("cannot look at {what} ({}): {e}", p.display());
                return Err(invalid("state.file", path.display(), why));
            }
        }
    }
    Ok(Some(StateConfig {
        path: path.clone(),
        flush_interval: flush,
        retention,
    }))
}

/// `:9402` means every IPv4 interface, as in Go's `net.Listen`; host names are resolved once.
fn listen_address(text: &str) -> Result<SocketAddr, ConfigError> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    if let Ok(addr) = full.parse() {
        return Ok(addr);
    }
    full.to_socket_addrs()
        .map_err(|e| invalid("web.listen-address", text, e))?
        .next()
        .ok_or_else(|| invalid("web.listen-address", text, "resolves to no address"))
}

/// Loads the web configuration now, so a bad file stops the exporter at start with the file,
/// line and reason.
fn web_config(path: &std::path::Path) -> Result<WebSetup, ConfigError> {
    let (security, watched) = Security::load(path);
    let security = security.map_err(|e| invalid("web.config.file", path.display(), e))?;
    Ok(WebSetup {
        path: path.to_path_buf(),
        security: Arc::new(security),
        watched,
    })
}

fn telemetry_path(path: String) -> Result<String, ConfigError> {
    if !path.starts_with('/') {
        return Err(invalid("web.telemetry-path", path, "must start with /"));
    }
    if RESERVED_PATHS.contains(&path.as_str()) {
        return Err(invalid(
            "web.telemetry-path",
            path,
            "is taken by the landing page or a health endpoint",
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::EstimateSettings;
    use crate::units::Watts;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("gpu-carbon-exporter").chain(args.iter().copied()))
                .expect("flags parse");
        Config::from_cli(cli)
    }

    #[test]
    fn defaults() {
        let c = config(&[]).expect("valid");
        assert_eq!(
            c.listen,
            vec!["0.0.0.0:9402".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(c.telemetry_path, "/metrics");
        assert_eq!(c.sample_interval, Duration::from_secs(1));
        assert_eq!(c.sources.nvidia, Some(NvidiaSource::Nvml { library: None }));
        assert!(!c.sources.hwmon && !c.sources.rapl);
        assert_eq!(c.sources.sysfs, PathBuf::from("/sys"));
        assert_eq!(c.sources.estimate, EstimateSettings::default());
        assert!(c.carbon.is_default);
        assert_eq!(c.carbon.provider, crate::carbon::ProviderSettings::Static);
        assert_eq!(c.carbon.static_value.intensity().zone, "WORLD");
        assert_eq!(c.carbon.max_age, Duration::from_secs(7_200));
        assert_eq!(c.carbon.embodied, None);
        assert_eq!(c.carbon.pue, 1.0);
        let a = c.attribution.expect("attribution on by default");
        let names: Vec<&str> = a.settings.labels.iter().map(|l| l.as_str()).collect();
        assert_eq!(names, ["namespace", "pod", "slurm_job", "user"]);
        assert_eq!(a.settings.retention, Duration::from_secs(600));
        assert_eq!(a.settings.max_series, 2000);
        assert_eq!(a.procfs, PathBuf::from("/proc"));
        assert_eq!(
            a.pod_resources,
            Some(PathBuf::from("/var/lib/kubelet/pod-resources/kubelet.sock"))
        );
    }

    #[test]
    fn attribution_flags() {
        let c = config(&[
            "--attribution.labels=user, container,user",
            "--kubernetes.pod-resources-socket=",
            "--path.procfs=/host/proc",
        ])
        .expect("valid");
        let a = c.attribution.expect("on");
        assert_eq!(
            a.settings.labels,
            [
                crate::attribution::Label::Container,
                crate::attribution::Label::User
            ]
        );
        assert_eq!(a.pod_resources, None);
        assert_eq!(a.procfs, PathBuf::from("/host/proc"));
        let c = config(&["--no-collector.attribution"]).expect("valid");
        assert!(c.attribution.is_none());
    }

    #[test]
    fn demo_zone_and_addresses() {
        let c = config(&[
            "--demo",
            "--carbon.zone=fr",
            "--web.listen-address=127.0.0.1:1234",
            "--web.listen-address=:5678",
            "--sample.interval=200ms",
        ])
        .expect("valid");
        assert_eq!(c.sources.nvidia, Some(NvidiaSource::Simulated { gpus: 4 }));
        assert_eq!(c.carbon.static_value.intensity().zone, "FR");
        assert!(!c.carbon.is_default);
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.sample_interval, Duration::from_millis(200));
    }

    #[test]
    fn collectors_and_estimates() {
        let c = config(&[
            "--no-collector.nvml",
            "--collector.rapl",
            "--collector.hwmon",
            "--path.sysfs=/host/sys",
            "--estimate.rated-watts=300",
        ])
        .expect("valid");
        assert_eq!(c.sources.nvidia, None);
        assert!(c.sources.hwmon && c.sources.rapl);
        assert_eq!(c.sources.sysfs, PathBuf::from("/host/sys"));
        let model = c.sources.estimate.model.expect("model");
        assert_eq!((model.idle, model.rated), (Watts(30.0), Watts(300.0)));
        let c = config(&["--collector.rapl", "--no-collector.rapl"]).expect("valid");
        assert!(!c.sources.rapl, "the last of a flag pair wins");
    }

    /// Host paths that don't exist are accepted (a collector that doesn't use them must not be
    /// stopped by them) with a warning naming the flag.
    #[test]
    fn missing_host_paths_are_warned_about_by_flag() {
        assert_eq!(config(&[]).expect("valid").warnings, []);
        let c = config(&[
            "--path.procfs=/nonexistent/proc",
            "--path.sysfs=/nonexistent/sys",
            "--path.rootfs=/nonexistent/root",
        ])
        .expect("valid");
        let flags: Vec<&str> = c.warnings.iter().map(|w| w.flag).collect();
        assert_eq!(flags, ["path.procfs", "path.sysfs", "path.rootfs"]);
        let shown = c.warnings[1].to_string();
        assert!(
            shown.starts_with("--path.sysfs=/nonexistent/sys: ") && shown.contains("hwmon"),
            "{shown}"
        );
    }

    #[test]
    fn each_bad_value_names_its_flag() {
        let cases: [(&[&str], &str); 18] = [
            (&["--attribution.labels=user,pid"], "attribution.labels"),
            (&["--attribution.retention=soon"], "attribution.retention"),
            (&["--attribution.max-series=0"], "attribution.max-series"),
            (
                &["--kubernetes.refresh-interval=1ms"],
                "kubernetes.refresh-interval",
            ),
            (&["--carbon.zone=XX"], "carbon.zone"),
            (&["--carbon.intensity=-5"], "carbon.intensity"),
            (&["--carbon.intensity=NaN"], "carbon.intensity"),
            (&["--carbon.pue=0.9"], "carbon.pue"),
            (&["--sample.interval=1"], "sample.interval"),
            (&["--sample.interval=1ms"], "sample.interval"),
            (&["--web.telemetry-path=metrics"], "web.telemetry-path"),
            (&["--web.listen-address=nonsense"], "web.listen-address"),
            (&["--web.max-requests=0"], "web.max-requests"),
            (&["--no-collector.nvml"], "no-collector.nvml"),
            (&["--state.flush-interval=10ms"], "state.flush-interval"),
            (&["--state.retention=forever"], "state.retention"),
            (&["--estimate.rated-watts=0"], "estimate.rated-watts"),
            (
                &["--estimate.rated-watts=300", "--estimate.idle-watts=400"],
                "estimate.idle-watts",
            ),
        ];
        for (args, flag) in cases {
            let err = config(args).expect_err("invalid");
            assert_eq!(err.flag, flag, "{args:?}");
            assert!(err.to_string().contains(&format!("--{flag}")), "{err}");
        }
    }
}
