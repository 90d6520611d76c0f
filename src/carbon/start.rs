//! Builds the configured intensity provider: the static value, a schedule, or a live API on
//! its own refresh thread with the static value as its fallback.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use super::http::Http;
use super::providers::electricitymaps::{self, ElectricityMaps};
use super::providers::schedule::ScheduleProvider;
use super::providers::ukgrid::{self, UkGrid};
use super::providers::watttime::{self, WattTime};
use super::refresh::{Cadence, Fetch, LiveProvider};
use super::{IntensityProvider, ProviderSettings, Settings};
use crate::clock::Clock;

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
    let http = || Http::new(settings.http_timeout);
    let (fetcher, period): (Box<dyn Fetch>, Duration) = match &settings.provider {
        ProviderSettings::Static => {
            return Ok(Started {
                provider: Box::new(settings.static_value.clone()),
                first_fetch: None,
            })
        }
        ProviderSettings::Schedule(schedule) => {
            return Ok(Started {
                provider: Box::new(ScheduleProvider::new(
                    schedule.clone(),
                    settings.static_value.clone(),
                    settings.signal,
                    settings.scope,
                )),
                first_fetch: None,
            })
        }
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
