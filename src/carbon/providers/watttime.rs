//! WattTime API v3 (docs.watttime.org). Authentication: `GET /login` with HTTP basic auth
//! answers `{"token": "…"}`, a bearer token valid for 30 minutes; we log in again after 25
//! minutes, and at once when a data call answers 401.
//!
//! The current rate comes from `GET /v3/forecast?region=R&signal_type=co2_moer`: WattTime's
//! real-time value is the first point of its most recent forecast (the current five-minute
//! interval), and `/v3/forecast` is the documented endpoint that returns it as a rate.
//! `/v3/signal-index` only gives a 0–100 percentile, which can't be turned into grams, and
//! `/v3/historical` needs a start and an end and lags behind. The answer:
//!
//! ```json
//! {"data": [{"point_time": "2024-05-01T12:05:00+00:00", "value": 870.0}, …],
//!  "meta": {"region": "CAISO_NORTH", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
//!           "generated_at": "2024-05-01T12:04:31+00:00", …}}
//! ```
//!
//! We take the point in force at the fetch time (the last one not after it). `co2_moer` is the
//! marginal operating emissions rate, `co2_aoer` the average one; both count combustion only
//! (direct) and are in lb CO2/MWh, converted with [`GramsPerKwh::from_lb_per_mwh`].

use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::carbon::http::{in_range, json, FetchError, Http};
use crate::carbon::refresh::{Fetch, LiveValue};
use crate::carbon::secret::Secret;
use crate::carbon::time::parse_rfc3339;
use crate::carbon::{Scope, Signal};
use crate::units::GramsPerKwh;

/// The public API's base URL.
pub const DEFAULT_URL: &str = "https://api.watttime.org";
/// WattTime publishes a new value every five minutes.
pub const PERIOD: Duration = Duration::from_secs(300);
/// Environment variables holding the credentials (unless given as files).
pub const USERNAME_ENV: &str = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_USERNAME";
/// See [`USERNAME_ENV`].
pub const PASSWORD_ENV: &str = "GPU_CARBON_EXPORTER_CARBON_WATTTIME_PASSWORD";
/// Tokens are valid for 30 minutes; renew them with a margin.
const TOKEN_RENEW_AFTER: Duration = Duration::from_secs(25 * 60);
/// The only unit the v3 API documents for CO2 rates.
const UNITS: &str = "lbs_co2_per_mwh";

/// Which WattTime signal to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalType {
    /// `co2_moer`: marginal operating emissions rate.
    Moer,
    /// `co2_aoer`: average operating emissions rate.
    Aoer,
}

impl SignalType {
    /// The API's `signal_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalType::Moer => "co2_moer",
            SignalType::Aoer => "co2_aoer",
        }
    }

    fn signal(self) -> Signal {
        match self {
            SignalType::Moer => Signal::Marginal,
            SignalType::Aoer => Signal::Average,
        }
    }
}

/// What to ask for, and as whom.
#[derive(Debug, Clone, PartialEq)]
pub struct WattTimeSettings {
    /// Base URL, without a trailing `/`.
    pub url: String,
    /// WattTime region (`CAISO_NORTH`, …).
    pub region: String,
    /// The signal.
    pub signal_type: SignalType,
    /// Account name.
    pub username: Secret,
    /// Account password.
    pub password: Secret,
}

/// The fetcher, holding the current token.
pub struct WattTime {
    http: Http,
    settings: WattTimeSettings,
    token: Option<(Secret, Instant)>,
}

impl WattTime {
    /// A fetcher using `http`.
    pub fn new(http: Http, settings: WattTimeSettings) -> WattTime {
        WattTime {
            http,
            settings,
            token: None,
        }
    }

    fn login(&mut self) -> Result<Secret, FetchError> {
        let s = &self.settings;
        let pair = format!("{}:{}", s.username.expose(), s.password.expose());
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        let body = self
            .http
            .get(&format!("{}/login", s.url), &[("Authorization", &basic)])?;
        let token = parse_login(&body)?;
        self.token = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn forecast(&self, token: &Secret, now_unix: f64) -> Result<LiveValue, FetchError> {
        let s = &self.settings;
        let url = format!(
            "{}/v3/forecast?region={}&signal_type={}",
            s.url,
            s.region,
            s.signal_type.as_str()
        );
        let bearer = format!("Bearer {}", token.expose());
        let body = self.http.get(&url, &[("Authorization", &bearer)])?;
        parse_forecast(&body, &s.region, s.signal_type, now_unix)
    }
}

impl Fetch for WattTime {
    fn fetch(&mut self, now_unix: f64) -> Result<LiveValue, FetchError> {
        let token = match &self.token {
            Some((token, obtained)) if token_fresh(obtained.elapsed()) => token.clone(),
            _ => self.login()?,
        };
        match self.forecast(&token, now_unix) {
            // Expired or revoked early: log in once more and retry once.
            Err(FetchError::Unauthorized(_)) => {
                self.token = None;
                let token = self.login()?;
                self.forecast(&token, now_unix)
            }
            other => other,
        }
    }
}

/// Whether a token obtained `age` ago may still be used.
pub fn token_fresh(age: Duration) -> bool {
    age < TOKEN_RENEW_AFTER
}

#[derive(Deserialize)]
struct Login {
    token: Option<String>,
}

/// Reads the `/login` answer.
pub fn parse_login(body: &str) -> Result<Secret, FetchError> {
    let login: Login = json(body)?;
    login
        .token
        .as_deref()
        .and_then(Secret::new)
        .ok_or(FetchError::Malformed("login answered no token".into()))
}

#[derive(Deserialize)]
struct Forecast {
    data: Vec<Point>,
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Point {
    point_time: String,
    value: Option<f64>,
}

#[derive(Deserialize)]
struct Meta {
    units: Option<String>,
    signal_type: Option<String>,
}

/// WattTime's forecast points are five minutes apart.
const POINT_SECONDS: f64 = 300.0;

/// Reads a `/v3/forecast` answer: the point in force at `now_unix`, converted to g/kWh.
pub fn parse_forecast(
    body: &str,
    region: &str,
    signal_type: SignalType,
    now_unix: f64,
) -> Result<LiveValue, FetchError> {
    let forecast: Forecast = json(body)?;
    if let Some(meta) = &forecast.meta {
        if let Some(units) = meta.units.as_deref().filter(|u| *u != UNITS) {
            return Err(FetchError::Malformed(format!(
                "units {units:?}, expected {UNITS}"
            )));
        }
        if let Some(t) = meta
            .signal_type
            .as_deref()
            .filter(|t| *t != signal_type.as_str())
        {
            return Err(FetchError::Malformed(format!(
                "signal_type {t:?}, expected {}",
                signal_type.as_str()
            )));
        }
    }
    let mut chosen: Option<(f64, Option<f64>)> = None;
    // The point after the chosen one ends its interval.
    let mut next: Option<f64> = None;
    for point in &forecast.data {
        let at =
            parse_rfc3339(&point.point_time).map_err(|e| FetchError::Malformed(e.to_string()))?;
        if chosen.is_none() || at <= now_unix {
            chosen = Some((at, point.value));
        }
        if at > now_unix {
            next = Some(at);
            break;
        }
    }
    let (at_unix, value) = chosen.ok_or(FetchError::NoData("forecast has no points"))?;
    let until_unix = next
        .filter(|n| *n > at_unix)
        .unwrap_or(at_unix + POINT_SECONDS);
    let lb_per_mwh = value.ok_or(FetchError::NoData("value is null"))?;
    let grams = GramsPerKwh::from_lb_per_mwh(lb_per_mwh).0;
    Ok(LiveValue {
        grams_per_kwh: in_range(grams)?,
        zone: region.to_string(),
        signal: signal_type.signal(),
        scope: Scope::Direct,
        source: format!("watttime-{}", signal_type.as_str()),
        at_unix,
        until_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORECAST: &str = r#"{"data":[
        {"point_time":"2024-05-01T12:05:00+00:00","value":1000.0,"version":"3.2"},
        {"point_time":"2024-05-01T12:10:00+00:00","value":800.0,"version":"3.2"},
        {"point_time":"2024-05-01T12:15:00+00:00","value":600.0,"version":"3.2"}],
        "meta":{"data_point_period_seconds":300,"region":"CAISO_NORTH","signal_type":"co2_moer",
        "model":{"date":"2023-03-01"},"units":"lbs_co2_per_mwh","warnings":[],
        "generated_at_period_seconds":300,"generated_at":"2024-05-01T12:04:31+00:00"}}"#;

    fn at(text: &str) -> f64 {
        parse_rfc3339(text).expect("valid")
    }

    #[test]
    fn converts_the_point_in_force_to_grams_per_kwh() {
        let now = at("2024-05-01T12:11:00Z");
        let v = parse_forecast(FORECAST, "CAISO_NORTH", SignalType::Moer, now).expect("valid");
        // 800 lb/MWh × 453.59237 g/lb ÷ 1000 kWh/MWh.
        assert!(
            (v.grams_per_kwh - 362.873_896).abs() < 1e-6,
            "{}",
            v.grams_per_kwh
        );
        assert_eq!(v.at_unix, at("2024-05-01T12:10:00Z"));
        assert_eq!((v.signal, v.scope), (Signal::Marginal, Scope::Direct));
        assert_eq!(
            (v.zone.as_str(), v.source.as_str()),
            ("CAISO_NORTH", "watttime-co2_moer")
        );
        // Before the first point (generated just ahead of its interval): the first point.
        let early = parse_forecast(
            FORECAST,
            "CAISO_NORTH",
            SignalType::Moer,
            at("2024-05-01T12:04:40Z"),
        )
        .expect("valid");
        assert!((early.grams_per_kwh - 453.592_37).abs() < 1e-9);
    }

    #[test]
    fn login_token_and_freshness() {
        assert_eq!(
            parse_login(r#"{"token":"abc.def"}"#).expect("ok").expose(),
            "abc.def"
        );
        assert!(parse_login(r#"{"token":""}"#).is_err());
        assert!(parse_login(r#"{"error":"x"}"#).is_err());
        assert!(token_fresh(Duration::from_secs(24 * 60)));
        assert!(!token_fresh(Duration::from_secs(25 * 60)));
    }

    #[test]
    fn rejects_other_units_signals_and_bad_points() {
        let now = at("2024-05-01T12:11:00Z");
        let cases = [
            (
                FORECAST.replace("lbs_co2_per_mwh", "kg_co2_per_mwh"),
                "units",
            ),
            (
                FORECAST.replace("\"co2_moer\"", "\"health_damage\""),
                "signal_type",
            ),
            (FORECAST.replace("800.0", "null"), "null"),
            (FORECAST.replace("800.0", "-1.0"), "out of range"),
            (FORECAST.replace("800.0", "9000.0"), "out of range"),
            (
                FORECAST.replace("2024-05-01T12:10:00+00:00", "soon"),
                "malformed",
            ),
            (r#"{"data":[],"meta":{}}"#.to_string(), "no points"),
            (r#"{"meta":{}}"#.to_string(), "malformed"),
        ];
        for (body, want) in cases {
            let err = parse_forecast(&body, "CAISO_NORTH", SignalType::Moer, now).expect_err(want);
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
    }
}
