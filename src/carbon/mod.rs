//! Carbon intensity of the electricity the GPUs draw: where it comes from, and its provenance.
//!
//! Providers sit behind [`IntensityProvider`]; the sampler asks for the intensity in force at
//! each tick, so a value that changes over time is applied to exactly the energy drawn while
//! it was in force. `intensity_at` runs on the sampling thread: it never does I/O. Live
//! providers fetch in the background ([`refresh`]) and `intensity_at` reads the latest value.
//!
//! - [`providers`]: one module per source of intensity — [`FixedIntensity`] (a user-given value
//!   or a row of the built-in [`providers::zones`] table), [`providers::schedule`] (a local
//!   file), and the live APIs [`providers::electricitymaps`], [`providers::watttime`] and
//!   [`providers::ukgrid`];
//! - the plumbing the live providers share: [`refresh`] (background fetch, backoff, fallback),
//!   [`http`] (the client), [`secret`] (credentials) and [`time`] (RFC 3339 timestamps as the
//!   APIs and schedule files write them);
//! - [`Settings`] (built from flags by `config`) and [`start`], which turns them into the
//!   running provider;
//! - [`embodied`]: manufacturing emissions amortised over a GPU's service life (scope 3).

pub mod embodied;
pub mod http;
pub mod providers;
pub mod refresh;
pub mod secret;
mod settings;
pub mod start;
pub mod time;

pub use providers::fixed::FixedIntensity;
pub use settings::{ProviderSettings, Settings};

use crate::units::GramsPerKwh;

/// Largest intensity accepted from any source (flag, zone table, schedule file, API answer),
/// in g/kWh. The dirtiest grids are near 1,100, so anything above this is a unit or parsing
/// error rather than a grid, and accounting it would inflate CO2e silently.
pub const MAX_GRAMS_PER_KWH: f64 = 2_000.0;

/// What an intensity measures: the mix's average or the generator that responds to more load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Average emissions of all generation in the zone (attributional accounting).
    Average,
    /// Emissions of the marginal generator (consequential: what extra load causes).
    Marginal,
}

impl Signal {
    /// The `signal` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Average => "average",
            Signal::Marginal => "marginal",
        }
    }
}

/// Which emissions an intensity counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Whole life cycle of the generators: fuel supply chain, construction, combustion.
    Lifecycle,
    /// Combustion at the power station only (operational emissions).
    Direct,
}

impl Scope {
    /// The `scope` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Lifecycle => "lifecycle",
            Scope::Direct => "direct",
        }
    }
}

/// An intensity together with where it came from, as the metrics label it.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    /// Grams of CO2e per kWh.
    pub value: GramsPerKwh,
    /// The grid zone (`DE`, `WORLD`, `CAISO_NORTH`, `GB`, or `custom` for a user-given value).
    pub zone: String,
    /// The provider the value comes from (`static`, `electricitymaps`, `watttime`, `ukgrid`,
    /// `schedule`); `static` while a live provider falls back.
    pub provider: &'static str,
    /// Average or marginal.
    pub signal: Signal,
    /// Lifecycle or direct.
    pub scope: Scope,
    /// The dataset behind the number (`flag`, a table tag such as `owid-ember-2023`,
    /// `electricitymaps`, `neso-actual`, a schedule file name, …).
    pub source: String,
    /// True while the value is a fallback: the configured provider's last good value after a
    /// failed refresh, or the static value when there is no good value younger than the
    /// maximum age.
    pub fallback: bool,
}

/// How the configured provider is doing, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStatus {
    /// The configured provider (`static`, `electricitymaps`, …), also while it falls back.
    pub provider: &'static str,
    /// Failed fetches so far (0 for providers that do not fetch).
    pub fetch_errors: u64,
    /// Unix time of the latest good value, as its provider dates it (start of the interval it
    /// covers); for a static value, the first tick it applied to. `None` before the first.
    pub last_update_unix: Option<f64>,
}

/// A source of carbon intensity.
pub trait IntensityProvider: Send {
    /// The intensity in force at wall-clock time `unix` (seconds). Called once per sampler
    /// tick: it must not block or do I/O.
    fn intensity_at(&mut self, unix: f64) -> Intensity;

    /// The provider's status as of the latest [`Self::intensity_at`] call.
    fn status(&self) -> ProviderStatus;
}
