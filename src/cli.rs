//! Command-line flags as the user types them, in node_exporter's dotted style. Every flag can
//! also come from an environment variable (`GPU_CARBON_EXPORTER_` + the flag name in upper case
//! with `.` and `-` as `_`), which suits systemd environment files and Kubernetes manifests.
//! Values are checked and turned into the validated configuration (the `config` module) in a
//! second stage; this module knows nothing of it.

mod carbon;
mod check;
mod host;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

pub use carbon::{CarbonFlags, EmbodiedFlags, Provider, ScopeFlag, SignalFlag, WattTimeSignalFlag};
pub use check::{CheckFlags, Command};
pub use host::{HostFlags, HostScope};

/// What `--version` prints after the name, as Prometheus' own tools print it.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("GPU_CARBON_EXPORTER_REVISION"),
    ")\n  build date:    ",
    env!("GCE_BUILD_DATE"),
    "\n  rustc version: ",
    env!("GCE_BUILD_RUSTC"),
    "\n  platform:      ",
    env!("GCE_BUILD_TARGET"),
);

/// Raw flags.
#[derive(Debug, Parser)]
#[command(
    name = "gpu-carbon-exporter",
    version,
    long_version = LONG_VERSION,
    disable_help_subcommand = true,
    about = "Prometheus exporter for GPU power, exact cumulative energy (kWh) and CO2e emissions.",
    after_help = "Try it without a GPU: gpu-carbon-exporter --demo, then open http://localhost:9402/"
)]
pub struct Cli {
    /// Address to listen on for HTTP, as host:port or :port (all IPv4 interfaces). Repeat to
    /// listen on several.
    #[arg(
        long = "web.listen-address",
        env = "GPU_CARBON_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":9402",
        value_name = "ADDR"
    )]
    pub listen_address: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        env = "GPU_CARBON_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,

    /// Maximum number of HTTP requests served at once; more are answered 503.
    #[arg(
        long = "web.max-requests",
        env = "GPU_CARBON_EXPORTER_WEB_MAX_REQUESTS",
        default_value_t = 40,
        value_name = "N"
    )]
    pub max_requests: usize,

    /// Maximum number of open HTTP connections. At the cap a new client takes the place of the
    /// connection idle the longest (closed); while all are busy, new clients wait in the listen
    /// backlog. Bounds memory whatever clients do.
    #[arg(
        long = "web.max-connections",
        env = "GPU_CARBON_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Web configuration file (Prometheus exporter-toolkit format) enabling TLS, mTLS, basic
    /// authentication and extra response headers; reloaded on SIGHUP and when it changes.
    /// Default: none (plain HTTP, no authentication).
    #[arg(
        long = "web.config.file",
        env = "GPU_CARBON_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub web_config_file: Option<PathBuf>,

    /// How often every GPU is read, in Prometheus duration syntax (200ms, 1s, 1m).
    #[arg(
        long = "sample.interval",
        env = "GPU_CARBON_EXPORTER_SAMPLE_INTERVAL",
        default_value = "1s",
        value_name = "DURATION"
    )]
    pub sample_interval: String,

    /// Run with simulated NVIDIA GPUs instead of NVML: no GPU needed.
    #[arg(long = "demo", env = "GPU_CARBON_EXPORTER_DEMO")]
    pub demo: bool,

    /// Read NVIDIA GPUs through NVML (on by default; --no-collector.nvml turns it off).
    #[arg(long = "collector.nvml", overrides_with = "no_collector_nvml")]
    pub collector_nvml: bool,
    /// Do not read NVIDIA GPUs.
    #[arg(
        long = "no-collector.nvml",
        env = "GPU_CARBON_EXPORTER_NO_COLLECTOR_NVML"
    )]
    pub no_collector_nvml: bool,

    /// Read AMD and Intel GPUs through hwmon sysfs (off by default).
    #[arg(
        long = "collector.hwmon",
        env = "GPU_CARBON_EXPORTER_COLLECTOR_HWMON",
        overrides_with = "no_collector_hwmon"
    )]
    pub collector_hwmon: bool,
    /// Do not read AMD and Intel GPUs.
    #[arg(long = "no-collector.hwmon")]
    pub no_collector_hwmon: bool,

    /// Read CPU package and DRAM energy through powercap RAPL (off by default; needs read access
    /// to energy_uj, root-only since Linux 5.10).
    #[arg(
        long = "collector.rapl",
        env = "GPU_CARBON_EXPORTER_COLLECTOR_RAPL",
        overrides_with = "no_collector_rapl"
    )]
    pub collector_rapl: bool,
    /// Do not read RAPL.
    #[arg(long = "no-collector.rapl")]
    pub no_collector_rapl: bool,

    /// Read Mac CPU, GPU and Neural Engine power (Intel Macs: the package) through Apple's
    /// powermetrics, run as a child process (macOS; off by default; needs root, as powermetrics
    /// does).
    #[arg(
        long = "collector.powermetrics",
        env = "GPU_CARBON_EXPORTER_COLLECTOR_POWERMETRICS",
        overrides_with = "no_collector_powermetrics"
    )]
    pub collector_powermetrics: bool,
    /// Do not run powermetrics.
    #[arg(long = "no-collector.powermetrics")]
    pub no_collector_powermetrics: bool,

    /// The powermetrics program to run. Default: /usr/bin/powermetrics on macOS; on other
    /// systems --collector.powermetrics needs it (a stand-in writing powermetrics' plist output,
    /// for testing).
    #[arg(
        long = "powermetrics.path",
        env = "GPU_CARBON_EXPORTER_POWERMETRICS_PATH",
        value_name = "FILE"
    )]
    pub powermetrics_path: Option<PathBuf>,

    /// Mount point of sysfs (for the hwmon and rapl collectors); set to the host's /sys when
    /// running in a container that mounts it elsewhere.
    #[arg(
        long = "path.sysfs",
        env = "GPU_CARBON_EXPORTER_PATH_SYSFS",
        default_value = "/sys",
        value_name = "DIR"
    )]
    pub path_sysfs: PathBuf,

    /// Split each GPU's energy and CO2e among the workloads (users, pods, Slurm jobs) running
    /// on it (on by default; --no-collector.attribution turns it off).
    #[arg(
        long = "collector.attribution",
        overrides_with = "no_collector_attribution"
    )]
    pub collector_attribution: bool,
    /// Do not attribute energy to workloads.
    #[arg(
        long = "no-collector.attribution",
        env = "GPU_CARBON_EXPORTER_NO_COLLECTOR_ATTRIBUTION"
    )]
    pub no_collector_attribution: bool,

    /// Workload labels, comma-separated, from user, namespace, pod, container, slurm_job; empty
    /// for per-GPU attribution only.
    #[arg(
        long = "attribution.labels",
        env = "GPU_CARBON_EXPORTER_ATTRIBUTION_LABELS",
        default_value = "user,namespace,pod,slurm_job",
        value_name = "LIST"
    )]
    pub attribution_labels: String,

    /// How long a workload that ended stays exported with its final totals.
    #[arg(
        long = "attribution.retention",
        env = "GPU_CARBON_EXPORTER_ATTRIBUTION_RETENTION",
        default_value = "10m",
        value_name = "DURATION"
    )]
    pub attribution_retention: String,

    /// Most workload series (per GPU and label set); further workloads are counted in an
    /// overflow bucket whose labels are all _overflow_.
    #[arg(
        long = "attribution.max-series",
        env = "GPU_CARBON_EXPORTER_ATTRIBUTION_MAX_SERIES",
        default_value_t = 2000,
        value_name = "N"
    )]
    pub attribution_max_series: usize,

    /// Where the host's procfs is mounted (the host's /proc inside a container, with hostPID),
    /// for attribution and the host estimate.
    #[arg(
        long = "path.procfs",
        env = "GPU_CARBON_EXPORTER_PATH_PROCFS",
        default_value = "/proc",
        value_name = "DIR"
    )]
    pub path_procfs: PathBuf,

    /// Where the host's root filesystem is mounted, for /etc/passwd.
    #[arg(
        long = "path.rootfs",
        env = "GPU_CARBON_EXPORTER_PATH_ROOTFS",
        default_value = "/",
        value_name = "DIR"
    )]
    pub path_rootfs: PathBuf,

    /// Kubelet pod-resources socket, for which GPUs each pod was given; empty to not use it.
    #[arg(
        long = "kubernetes.pod-resources-socket",
        env = "GPU_CARBON_EXPORTER_KUBERNETES_POD_RESOURCES_SOCKET",
        default_value = "/var/lib/kubelet/pod-resources/kubelet.sock",
        value_name = "FILE"
    )]
    pub pod_resources_socket: String,

    /// Container runtime CRI socket (containerd, or CRI-O's /var/run/crio/crio.sock), for the
    /// namespace, pod and container names of a process's own pod; empty to not use it (names
    /// then come from /var/log/pods under --path.rootfs).
    #[arg(
        long = "kubernetes.cri-socket",
        env = "GPU_CARBON_EXPORTER_KUBERNETES_CRI_SOCKET",
        default_value = "/run/containerd/containerd.sock",
        value_name = "FILE"
    )]
    pub cri_socket: String,

    /// How often the pod-resources socket is asked for the pods on the node.
    #[arg(
        long = "kubernetes.refresh-interval",
        env = "GPU_CARBON_EXPORTER_KUBERNETES_REFRESH_INTERVAL",
        default_value = "15s",
        value_name = "DURATION"
    )]
    pub kubernetes_refresh_interval: String,

    /// Estimate power from utilization for every GPU, even where a power sensor exists.
    #[arg(long = "estimate.force", env = "GPU_CARBON_EXPORTER_ESTIMATE_FORCE")]
    pub estimate_force: bool,

    /// Rated board power (W) for estimates; default: the built-in table by GPU model.
    #[arg(
        long = "estimate.rated-watts",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_RATED_WATTS",
        value_name = "W"
    )]
    pub estimate_rated_watts: Option<f64>,

    /// Idle power (W) for estimates; needs --estimate.rated-watts; default: 10 % of rated.
    #[arg(
        long = "estimate.idle-watts",
        env = "GPU_CARBON_EXPORTER_ESTIMATE_IDLE_WATTS",
        requires = "estimate_rated_watts",
        value_name = "W"
    )]
    pub estimate_idle_watts: Option<f64>,

    /// Host CPU and memory estimates.
    #[command(flatten)]
    pub host: HostFlags,

    /// File that keeps every device's energy, idle energy and CO2e totals across restarts
    /// (and the energy drawn while the exporter was down), with a journal beside it
    /// (<FILE>.journal). Must be a regular file or not exist yet. Off when not set.
    #[arg(
        long = "state.file",
        env = "GPU_CARBON_EXPORTER_STATE_FILE",
        value_name = "FILE"
    )]
    pub state_file: Option<PathBuf>,

    /// How often the state file is rewritten whole (and once more at shutdown). Every sample
    /// is committed to its journal before it is served, whatever this interval.
    #[arg(
        long = "state.flush-interval",
        env = "GPU_CARBON_EXPORTER_STATE_FLUSH_INTERVAL",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub state_flush_interval: String,

    /// How long a device that is gone stays exported with its saved totals.
    #[arg(
        long = "state.retention",
        env = "GPU_CARBON_EXPORTER_STATE_RETENTION",
        default_value = "30d",
        value_name = "DURATION"
    )]
    pub state_retention: String,

    /// Number of simulated GPUs (with --demo).
    #[arg(
        long = "simulated.gpus",
        env = "GPU_CARBON_EXPORTER_SIMULATED_GPUS",
        default_value_t = 4,
        value_name = "N"
    )]
    pub simulated_gpus: u32,

    /// NVML library to load instead of libnvidia-ml.so.1 from the loader's search path.
    #[arg(
        long = "nvml.library-path",
        env = "GPU_CARBON_EXPORTER_NVML_LIBRARY_PATH",
        value_name = "FILE"
    )]
    pub nvml_library_path: Option<PathBuf>,

    /// Carbon intensity of the electricity in g CO2e/kWh (e.g. from your supplier). Default:
    /// the world average, unless --carbon.zone is given.
    #[arg(
        long = "carbon.intensity",
        env = "GPU_CARBON_EXPORTER_CARBON_INTENSITY",
        conflicts_with_all = ["carbon_zone", "fallback_zone"],
        value_name = "G_PER_KWH"
    )]
    pub carbon_intensity: Option<f64>,

    /// Grid zone whose average intensity to use, from the built-in table (ISO 3166-1 alpha-2
    /// code such as DE, FR, US, IN, SG; see docs/methodology.md).
    #[arg(
        long = "carbon.zone",
        env = "GPU_CARBON_EXPORTER_CARBON_ZONE",
        value_name = "CODE"
    )]
    pub carbon_zone: Option<String>,

    /// Power usage effectiveness of the facility (1.0 to 5.0): energy is multiplied by it for
    /// CO2e.
    #[arg(
        long = "carbon.pue",
        env = "GPU_CARBON_EXPORTER_CARBON_PUE",
        default_value_t = 1.0,
        value_name = "RATIO"
    )]
    pub carbon_pue: f64,

    /// Live and scheduled intensity providers.
    #[command(flatten)]
    pub carbon: CarbonFlags,

    /// Embodied emissions.
    #[command(flatten)]
    pub embodied: EmbodiedFlags,

    /// Only log messages with this severity or above.
    #[arg(
        long = "log.level",
        env = "GPU_CARBON_EXPORTER_LOG_LEVEL",
        value_enum,
        default_value_t = LogLevel::Info
    )]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(
        long = "log.format",
        env = "GPU_CARBON_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Logfmt
    )]
    pub log_format: LogFormat,

    /// A subcommand (`check`); without one the exporter serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--log.level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Per-tick detail.
    Debug,
    /// Start-up inventory and state changes.
    Info,
    /// Faults that degrade a series.
    Warn,
    /// Failures.
    Error,
}

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, as Prometheus and its exporters log.
    Logfmt,
    /// One JSON object per line.
    Json,
}
