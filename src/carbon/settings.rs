//! What the carbon model is set up with: the provider and its settings, the static value (the
//! static provider's value, or the fallback of the others), staleness, PUE and embodied
//! emissions. `config` builds these from flags; the carbon model never sees a flag.

use std::time::Duration;

use super::embodied::Amortisation;
use super::providers::schedule::Schedule;
use super::providers::{electricitymaps, ukgrid, watttime};
use super::{FixedIntensity, Scope, Signal};

/// Where the intensity comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderSettings {
    /// The static value.
    Static,
    /// Electricity Maps.
    ElectricityMaps(electricitymaps::ElectricityMapsSettings),
    /// WattTime.
    WattTime(watttime::WattTimeSettings),
    /// The GB Carbon Intensity API at `url`.
    UkGrid {
        /// Base URL.
        url: String,
        /// National, region or postcode.
        target: ukgrid::Target,
    },
    /// A schedule file.
    Schedule(Schedule),
}

impl ProviderSettings {
    /// The `provider` label value.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderSettings::Static => "static",
            ProviderSettings::ElectricityMaps(_) => "electricitymaps",
            ProviderSettings::WattTime(_) => "watttime",
            ProviderSettings::UkGrid { .. } => "ukgrid",
            ProviderSettings::Schedule(_) => "schedule",
        }
    }
}

/// Carbon accounting settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The provider.
    pub provider: ProviderSettings,
    /// The static provider's value, or the fallback of the others.
    pub static_value: FixedIntensity,
    /// True when no intensity, zone or fallback zone was given (the world average applies).
    pub is_default: bool,
    /// Power usage effectiveness of the site (`--carbon.pue`).
    pub pue: f64,
    /// How old a live value may get before the static value replaces it (`--carbon.max-age`).
    pub max_age: Duration,
    /// The live provider's refresh period, if the user overrides the provider's own
    /// (`--carbon.refresh-interval`).
    pub refresh: Option<Duration>,
    /// Timeout of one request to a live provider (`--carbon.http-timeout`).
    pub http_timeout: Duration,
    /// What user-given values measure.
    pub signal: Signal,
    /// What user-given values count.
    pub scope: Scope,
    /// Embodied emissions, if `--embodied.kg-per-gpu` is given.
    pub embodied: Option<Amortisation>,
    /// Embodied emissions of the host, if `--embodied.host-kg` is given.
    pub embodied_host: Option<Amortisation>,
}
