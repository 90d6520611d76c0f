//! Builds the configured intensity provider: the static value, a schedule, or a live API on
//! its own refresh thread with the static value as its fallback.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use super::http::{FetchError, Http};
use super::providers::electricitymaps::{self, ElectricityMaps};
use super::providers::schedule::ScheduleProvider;
use super::providers::ukgrid::{self, UkGrid};
use super::providers::watttime::{self, WattTime};
use super::refresh::{Cadence, Fetch, LiveProvider};
use super::{Intensity, IntensityProvider, ProviderSettings, Settings};
use crate::clock::Clock;
use crate::units::GramsPerKwh;

/// Wait before the first retry of a failed fetch; it doubles up to the refresh period.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// A started provider.
pub struct Started {
    /// The provider, for the sampler.
    pub provider: Box<dyn IntensityProvider>,
    /// For live providers: reports when the first fetch attempt is over.
    pub first_fetch: Option<Receiver<()>>,
}

/// Starts the provider `settings` describe (spawning its refresh thread if it is live).
pub fn start(settings: &Settings, clock: Arc<dyn Clock>) -> std::io::Result<Started> {
    let Some((fetcher, period)) = live_fetcher(settings) else {
        return Ok(Started {
            provider: local_provider(settings),
            first_fetch: None,
        });
    };
    let period = settings.refresh.unwrap_or(period);
    let cadence = Cadence {
        period,
        first_retry: FIRST_RETRY.min(period),
    };
    let (provider, first) = LiveProvider::spawn(
        settings.provider.name(),
        fetcher,
        cadence,
        settings.max_age,
        settings.static_value.clone(),
        clock,
    )?;
    Ok(Started {
        provider: Box::new(provider),
        first_fetch: Some(first),
    })
}

/// The configured provider's answer for `now_unix`, asked once: a live API is fetched now, on
/// this thread, without retry or fallback (`gpu-carbon-exporter check`); a static value or a
/// schedule answers from memory (a schedule with no entry for now answers its fallback,
/// flagged as one).
pub fn probe(settings: &Settings, now_unix: f64) -> Result<Intensity, FetchError> {
    let Some((mut fetcher, _)) = live_fetcher(settings) else {
        return Ok(local_provider(settings).intensity_at(now_unix));
    };
    let v = fetcher.fetch(now_unix)?;
    Ok(Intensity {
        value: GramsPerKwh(v.grams_per_kwh),
        zone: v.zone,
        provider: settings.provider.name(),
        signal: v.signal,
        scope: v.scope,
        source: v.source,
        fallback: false,
    })
}

/// The static value or the schedule; `None`'s place is taken by a live API.
fn local_provider(settings: &Settings) -> Box<dyn IntensityProvider> {
    match &settings.provider {
        ProviderSettings::Schedule(schedule) => Box::new(ScheduleProvider::new(
            schedule.clone(),
            settings.static_value.clone(),
            settings.signal,
            settings.scope,
        )),
        _ => Box::new(settings.static_value.clone()),
    }
}

/// A live API's fetcher and its default refresh period; `None` for a static value or a
/// schedule.
fn live_fetcher(settings: &Settings) -> Option<(Box<dyn Fetch>, Duration)> {
    let http = || Http::new(settings.http_timeout);
    Some(match &settings.provider {
        ProviderSettings::Static | ProviderSettings::Schedule(_) => return None,
        ProviderSettings::ElectricityMaps(s) => (
            Box::new(ElectricityMaps::new(http(), s.clone())),
            electricitymaps::PERIOD,
        ),
        ProviderSettings::WattTime(s) => {
            (Box::new(WattTime::new(http(), s.clone())), watttime::PERIOD)
        }
        ProviderSettings::UkGrid { url, target } => (
            Box::new(UkGrid::new(http(), url.clone(), target.clone())),
            ukgrid::PERIOD,
        ),
    })
}
