//! The carbon flags turned into [`carbon::Settings`](crate::carbon::Settings): the provider and
//! its settings, the static value, staleness, PUE and embodied emissions. Every rejection names
//! its flag.

use std::time::Duration;

use super::checks::{
    base_url, credential, embodied, embodied_host, identifier, outward_postcode, positive, within,
};
use super::{invalid, ConfigError};
use crate::carbon::providers::schedule::Schedule;
use crate::carbon::providers::watttime::SignalType;
use crate::carbon::providers::zones::ZoneTable;
use crate::carbon::providers::{electricitymaps, ukgrid, watttime};
use crate::carbon::time::parse_offset;
use crate::carbon::{FixedIntensity, ProviderSettings, Scope, Settings, Signal, MAX_GRAMS_PER_KWH};
use crate::cli::{CarbonFlags, Cli, Provider, ScopeFlag, SignalFlag, WattTimeSignalFlag};

/// Accepted `--carbon.intensity` range in g/kWh: the same limit as every other source.
const INTENSITY_RANGE: (f64, f64) = (0.0, MAX_GRAMS_PER_KWH);
/// Accepted `--carbon.pue` range; PUE below 1 is impossible, the worst sites are near 3.
const PUE_RANGE: (f64, f64) = (1.0, 5.0);
/// Accepted `--carbon.refresh-interval` range.
const REFRESH_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));
/// Accepted `--carbon.http-timeout` range.
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(300));

/// Checks the carbon flags; `env` looks up credentials.
pub fn carbon(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
    let f = &cli.carbon;
    let (lo, hi) = PUE_RANGE;
    if !(lo..=hi).contains(&cli.carbon_pue) {
        return Err(invalid(
            "carbon.pue",
            cli.carbon_pue,
            format!("must be between {lo} and {hi}"),
        ));
    }
    check_provider_flags(cli)?;
    let signal = match f.signal {
        SignalFlag::Average => Signal::Average,
        SignalFlag::Marginal => Signal::Marginal,
    };
    let scope = match f.scope {
        ScopeFlag::Lifecycle => Scope::Lifecycle,
        ScopeFlag::Direct => Scope::Direct,
    };
    let (static_value, is_default) = static_value(cli, signal, scope)?;
    Ok(Settings {
        provider: provider(f, scope, env)?,
        static_value,
        is_default,
        pue: cli.carbon_pue,
        max_age: positive("carbon.max-age", &f.max_age)?,
        refresh: f
            .refresh_interval
            .as_deref()
            .map(|t| within("carbon.refresh-interval", t, REFRESH_RANGE))
            .transpose()?,
        http_timeout: within("carbon.http-timeout", &f.http_timeout, TIMEOUT_RANGE)?,
        signal,
        scope,
        embodied: embodied(&cli.embodied)?,
        embodied_host: embodied_host(&cli.embodied)?,
    })
}

/// Provider-specific flags need their provider; `--carbon.zone` is the static provider's,
/// `--carbon.fallback-zone` the others'.
fn check_provider_flags(cli: &Cli) -> Result<(), ConfigError> {
    let f = &cli.carbon;
    let given: [(&'static str, bool, Provider); 11] = [
        (
            "carbon.electricitymaps.zone",
            f.electricitymaps_zone.is_some(),
            Provider::Electricitymaps,
        ),
        (
            "carbon.electricitymaps.url",
            f.electricitymaps_url.is_some(),
            Provider::Electricitymaps,
        ),
        (
            "carbon.electricitymaps.token-file",
            f.electricitymaps_token_file.is_some(),
            Provider::Electricitymaps,
        ),
        (
            "carbon.watttime.region",
            f.watttime_region.is_some(),
            Provider::Watttime,
        ),
        (
            "carbon.watttime.url",
            f.watttime_url.is_some(),
            Provider::Watttime,
        ),
        (
            "carbon.watttime.username-file",
            f.watttime_username_file.is_some(),
            Provider::Watttime,
        ),
        (
            "carbon.watttime.password-file",
            f.watttime_password_file.is_some(),
            Provider::Watttime,
        ),
        (
            "carbon.ukgrid.region",
            f.ukgrid_region.is_some(),
            Provider::Ukgrid,
        ),
        (
            "carbon.ukgrid.postcode",
            f.ukgrid_postcode.is_some(),
            Provider::Ukgrid,
        ),
        (
            "carbon.ukgrid.url",
            f.ukgrid_url.is_some(),
            Provider::Ukgrid,
        ),
        (
            "carbon.schedule.file",
            f.schedule_file.is_some(),
            Provider::Schedule,
        ),
    ];
    let wanted = |p: Provider| format!("{p:?}").to_ascii_lowercase();
    for (flag, set, needs) in given {
        if set && f.provider != needs {
            return Err(invalid(
                flag,
                "(given)",
                format!("needs --carbon.provider={}", wanted(needs)),
            ));
        }
    }
    match (f.provider, &cli.carbon_zone, &f.fallback_zone) {
        (Provider::Static, _, Some(z)) => Err(invalid(
            "carbon.fallback-zone",
            z,
            "only applies to a live provider or a schedule; use --carbon.zone with the static provider",
        )),
        (p, Some(z), _) if p != Provider::Static => Err(invalid(
            "carbon.zone",
            z,
            format!("is the static provider's; with --carbon.provider={} use --carbon.fallback-zone", wanted(p)),
        )),
        _ => Ok(()),
    }
}

fn static_value(
    cli: &Cli,
    signal: Signal,
    scope: Scope,
) -> Result<(FixedIntensity, bool), ConfigError> {
    let table = ZoneTable::builtin();
    let zone_flag = if cli.carbon_zone.is_some() {
        "carbon.zone"
    } else {
        "carbon.fallback-zone"
    };
    match (
        cli.carbon_intensity,
        cli.carbon_zone
            .as_ref()
            .or(cli.carbon.fallback_zone.as_ref()),
    ) {
        (Some(g), _) => {
            let (lo, hi) = INTENSITY_RANGE;
            if !(lo..=hi).contains(&g) {
                return Err(invalid(
                    "carbon.intensity",
                    g,
                    format!("must be between {lo} and {hi} g/kWh"),
                ));
            }
            Ok((FixedIntensity::custom(g).describing(signal, scope), false))
        }
        (None, Some(code)) => {
            let zone = table.get(code).ok_or_else(|| {
                invalid(zone_flag, code, format!("unknown zone; use an ISO 3166-1 alpha-2 code of one of the {} zones in the built-in table (e.g. DE, FR, US, IN, SG) or WORLD", table.len()))
            })?;
            Ok((FixedIntensity::zone(zone), false))
        }
        (None, None) => Ok((FixedIntensity::zone(table.world()), true)),
    }
}

fn provider(
    f: &CarbonFlags,
    scope: Scope,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderSettings, ConfigError> {
    Ok(match f.provider {
        Provider::Static => ProviderSettings::Static,
        Provider::Electricitymaps => {
            ProviderSettings::ElectricityMaps(electricitymaps::ElectricityMapsSettings {
                url: base_url(
                    "carbon.electricitymaps.url",
                    f.electricitymaps_url.as_deref(),
                    electricitymaps::DEFAULT_URL,
                )?,
                zone: identifier(
                    "carbon.electricitymaps.zone",
                    f.electricitymaps_zone.as_deref(),
                )?,
                token: credential(
                    "carbon.electricitymaps.token-file",
                    f.electricitymaps_token_file.as_deref(),
                    electricitymaps::TOKEN_ENV,
                    env,
                )?,
                scope,
            })
        }
        Provider::Watttime => ProviderSettings::WattTime(watttime::WattTimeSettings {
            url: base_url(
                "carbon.watttime.url",
                f.watttime_url.as_deref(),
                watttime::DEFAULT_URL,
            )?,
            region: identifier("carbon.watttime.region", f.watttime_region.as_deref())?,
            signal_type: match f.watttime_signal_type {
                WattTimeSignalFlag::Co2Moer => SignalType::Moer,
                WattTimeSignalFlag::Co2Aoer => SignalType::Aoer,
            },
            username: credential(
                "carbon.watttime.username-file",
                f.watttime_username_file.as_deref(),
                watttime::USERNAME_ENV,
                env,
            )?,
            password: credential(
                "carbon.watttime.password-file",
                f.watttime_password_file.as_deref(),
                watttime::PASSWORD_ENV,
                env,
            )?,
        }),
        Provider::Ukgrid => ProviderSettings::UkGrid {
            url: base_url(
                "carbon.ukgrid.url",
                f.ukgrid_url.as_deref(),
                ukgrid::DEFAULT_URL,
            )?,
            target: match (f.ukgrid_region, f.ukgrid_postcode.as_deref()) {
                (Some(id), _) if (1..=17).contains(&id) => ukgrid::Target::Region(id),
                (Some(id), _) => {
                    return Err(invalid(
                        "carbon.ukgrid.region",
                        id,
                        "must be 1 to 17 (14 DNO regions, 15 England, 16 Scotland, 17 Wales)",
                    ))
                }
                (None, Some(code)) => ukgrid::Target::Postcode(outward_postcode(code)?),
                (None, None) => ukgrid::Target::National,
            },
        },
        Provider::Schedule => {
            let Some(file) = &f.schedule_file else {
                return Err(invalid(
                    "carbon.schedule.file",
                    "(unset)",
                    "required with --carbon.provider=schedule",
                ));
            };
            let offset = parse_offset(&f.schedule_utc_offset)
                .map_err(|e| invalid("carbon.schedule.utc-offset", &f.schedule_utc_offset, e))?;
            ProviderSettings::Schedule(
                Schedule::load(file, offset)
                    .map_err(|e| invalid("carbon.schedule.file", file.display(), e))?,
            )
        }
    })
}

#[cfg(test)]
mod tests;
