//! Flags of the carbon model: where the intensity comes from (`--carbon.provider` and each
//! provider's flags), how stale it may get, and embodied emissions (`--embodied.*`).
//! Credentials are read from environment variables or files, never from flags.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `--carbon.provider` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// `--carbon.intensity`, `--carbon.zone` or the world average.
    Static,
    /// Electricity Maps API v3 (token needed).
    Electricitymaps,
    /// WattTime API v3 (account needed).
    Watttime,
    /// Carbon Intensity API for Great Britain (no key).
    Ukgrid,
    /// A local schedule file.
    Schedule,
}

/// `--carbon.signal` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalFlag {
    /// Average of the generation mix.
    Average,
    /// Marginal generator.
    Marginal,
}

/// `--carbon.scope` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeFlag {
    /// Life-cycle emission factors.
    Lifecycle,
    /// Combustion only.
    Direct,
}

/// `--carbon.watttime.signal-type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WattTimeSignalFlag {
    /// Marginal operating emissions rate.
    #[value(name = "co2_moer")]
    Co2Moer,
    /// Average operating emissions rate.
    #[value(name = "co2_aoer")]
    Co2Aoer,
}

/// Carbon intensity provider flags.
#[derive(Debug, Args)]
pub struct CarbonFlags {
    /// Where the carbon intensity comes from: static (--carbon.intensity, --carbon.zone or the
    /// world average), electricitymaps, watttime, ukgrid or schedule. Default: static.
    #[arg(long = "carbon.provider", env = "GPU_CARBON_EXPORTER_CARBON_PROVIDER", value_enum, default_value_t = Provider::Static)]
    pub provider: Provider,

    /// Built-in zone whose average is used while a live provider or schedule has no value
    /// (exclusive with --carbon.intensity). Default: the world average.
    #[arg(
        long = "carbon.fallback-zone",
        env = "GPU_CARBON_EXPORTER_CARBON_FALLBACK_ZONE",
        value_name = "CODE"
    )]
    pub fallback_zone: Option<String>,

    /// What a user-given intensity (--carbon.intensity, a schedule) measures. Default: average.
    #[arg(long = "carbon.signal", env = "GPU_CARBON_EXPORTER_CARBON_SIGNAL", value_enum, default_value_t = SignalFlag::Average)]
    pub signal: SignalFlag,

    /// Emissions a user-given intensity counts, and the emission factors to request from
    /// Electricity Maps. Default: lifecycle.
    #[arg(long = "carbon.scope", env = "GPU_CARBON_EXPORTER_CARBON_SCOPE", value_enum, default_value_t = ScopeFlag::Lifecycle)]
    pub scope: ScopeFlag,

    /// Oldest live value still used, its age counted from the end of the interval it covers
    /// (or its fetch while that interval lasts); older, the fallback applies. Default: 2h.
    #[arg(
        long = "carbon.max-age",
        env = "GPU_CARBON_EXPORTER_CARBON_MAX_AGE",
        default_value = "2h",
        value_name = "DURATION"
    )]
    pub max_age: String,

    /// Time between fetches of a live provider. Default: the provider's own (Electricity Maps
    /// 10m, WattTime 5m, ukgrid 15m).
    #[arg(
        long = "carbon.refresh-interval",
        env = "GPU_CARBON_EXPORTER_CARBON_REFRESH_INTERVAL",
        value_name = "DURATION"
    )]
    pub refresh_interval: Option<String>,

    /// Deadline of one request to a live provider (connect, headers and body). Default: 10s.
    #[arg(
        long = "carbon.http-timeout",
        env = "GPU_CARBON_EXPORTER_CARBON_HTTP_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub http_timeout: String,

    /// Electricity Maps zone key (DE, FR, US-CAL-CISO, …). Required with electricitymaps.
    #[arg(
        long = "carbon.electricitymaps.zone",
        env = "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_ZONE",
        value_name = "ZONE"
    )]
    pub electricitymaps_zone: Option<String>,

    /// Electricity Maps API base URL. Default: https://api.electricitymaps.com/v3.
    #[arg(
        long = "carbon.electricitymaps.url",
        env = "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_URL",
        value_name = "URL"
    )]
    pub electricitymaps_url: Option<String>,

    /// File holding the Electricity Maps API token. Default: the environment variable
    /// GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN.
    #[arg(
        long = "carbon.electricitymaps.token-file",
        env = "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub electricitymaps_token_file: Option<PathBuf>,

    /// WattTime region (CAISO_NORTH, …). Required with watttime.
    #[arg(
        long = "carbon.watttime.region",
        env = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_REGION",
        value_name = "REGION"
    )]
    pub watttime_region: Option<String>,

    /// WattTime signal: co2_moer (marginal) or co2_aoer (average). Default: co2_moer.
    #[arg(long = "carbon.watttime.signal-type", env = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_SIGNAL_TYPE", value_enum, default_value_t = WattTimeSignalFlag::Co2Moer)]
    pub watttime_signal_type: WattTimeSignalFlag,

    /// WattTime API base URL. Default: https://api.watttime.org.
    #[arg(
        long = "carbon.watttime.url",
        env = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_URL",
        value_name = "URL"
    )]
    pub watttime_url: Option<String>,

    /// File holding the WattTime user name. Default: the environment variable
    /// GPU_CARBON_EXPORTER_CARBON_WATTTIME_USERNAME.
    #[arg(
        long = "carbon.watttime.username-file",
        env = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_USERNAME_FILE",
        value_name = "FILE"
    )]
    pub watttime_username_file: Option<PathBuf>,

    /// File holding the WattTime password. Default: the environment variable
    /// GPU_CARBON_EXPORTER_CARBON_WATTTIME_PASSWORD.
    #[arg(
        long = "carbon.watttime.password-file",
        env = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub watttime_password_file: Option<PathBuf>,

    /// Region id of the GB Carbon Intensity API, 1 to 17. Default: national.
    #[arg(
        long = "carbon.ukgrid.region",
        env = "GPU_CARBON_EXPORTER_CARBON_UKGRID_REGION",
        conflicts_with = "ukgrid_postcode",
        value_name = "ID"
    )]
    pub ukgrid_region: Option<u8>,

    /// Outward postcode (RG10, SW1A) whose region to use. Default: national.
    #[arg(
        long = "carbon.ukgrid.postcode",
        env = "GPU_CARBON_EXPORTER_CARBON_UKGRID_POSTCODE",
        value_name = "POSTCODE"
    )]
    pub ukgrid_postcode: Option<String>,

    /// GB Carbon Intensity API base URL. Default: https://api.carbonintensity.org.uk.
    #[arg(
        long = "carbon.ukgrid.url",
        env = "GPU_CARBON_EXPORTER_CARBON_UKGRID_URL",
        value_name = "URL"
    )]
    pub ukgrid_url: Option<String>,

    /// Schedule file (CSV or JSON; see docs/methodology.md). Required with schedule.
    #[arg(
        long = "carbon.schedule.file",
        env = "GPU_CARBON_EXPORTER_CARBON_SCHEDULE_FILE",
        value_name = "FILE"
    )]
    pub schedule_file: Option<PathBuf>,

    /// Fixed UTC offset of the clock a schedule's hourly or weekly profile is written in.
    /// Default: +00:00.
    #[arg(
        long = "carbon.schedule.utc-offset",
        env = "GPU_CARBON_EXPORTER_CARBON_SCHEDULE_UTC_OFFSET",
        default_value = "+00:00",
        value_name = "OFFSET",
        allow_hyphen_values = true
    )]
    pub schedule_utc_offset: String,
}

/// Embodied emissions flags.
#[derive(Debug, Args)]
pub struct EmbodiedFlags {
    /// Manufacturing footprint of one GPU in kg CO2e, amortised over its life into
    /// gpu_embodied_co2e_grams_total. Default: off (no per-model figure ships).
    #[arg(
        long = "embodied.kg-per-gpu",
        env = "GPU_CARBON_EXPORTER_EMBODIED_KG_PER_GPU",
        value_name = "KG"
    )]
    pub kg_per_gpu: Option<f64>,

    /// Service life the footprint is spread over, in years. Default: 5.
    #[arg(
        long = "embodied.lifetime-years",
        env = "GPU_CARBON_EXPORTER_EMBODIED_LIFETIME_YEARS",
        value_name = "YEARS"
    )]
    pub lifetime_years: Option<f64>,

    /// Manufacturing footprint of the host (the server without its GPUs) in kg CO2e,
    /// amortised over the same life into gpu_host_embodied_co2e_grams_total. Default: off.
    #[arg(
        long = "embodied.host-kg",
        env = "GPU_CARBON_EXPORTER_EMBODIED_HOST_KG",
        value_name = "KG"
    )]
    pub host_kg: Option<f64>,
}
