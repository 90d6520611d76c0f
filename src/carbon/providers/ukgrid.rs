//! The Carbon Intensity API for Great Britain (api.carbonintensity.org.uk, run by NESO, the
//! National Energy System Operator, with the University of Oxford; no key). Endpoints:
//!
//! - national: `GET /intensity` →
//!   `{"data": [{"from": "2018-01-20T12:00Z", "to": "2018-01-20T12:30Z",
//!   "intensity": {"forecast": 266, "actual": 263, "index": "moderate"}}]}`;
//!   `actual` is null until the half hour is measured, then we use it instead of `forecast`;
//! - a region: `GET /regional/regionid/{1–17}`, or the region of an outward postcode:
//!   `GET /regional/postcode/{RG10}` →
//!   `{"data": [{"regionid": 12, "dnoregion": "…", "shortname": "South England",
//!   "postcode": "RG10", "data": [{"from": …, "to": …, "intensity": {"forecast": 120,
//!   "index": "low"}, "generationmix": […]}]}]}` (regional values are forecasts only).
//!
//! Values are half-hourly averages of generation in g CO2/kWh, counting combustion at power
//! stations and imports (direct emissions, CO2 only; NESO's methodology).

use std::time::Duration;

use serde::Deserialize;

use crate::carbon::http::{in_range, json, FetchError, Http};
use crate::carbon::refresh::{Fetch, LiveValue};
use crate::carbon::time::parse_rfc3339;
use crate::carbon::{Scope, Signal};

/// The public API's base URL.
pub const DEFAULT_URL: &str = "https://api.carbonintensity.org.uk";
/// Values are per half hour; fetching every 15 minutes picks a new one up within 15 minutes.
pub const PERIOD: Duration = Duration::from_secs(900);

/// Which intensity to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Great Britain as a whole.
    National,
    /// A region id, 1–17 (1–14 the DNO regions, 15 England, 16 Scotland, 17 Wales).
    Region(u8),
    /// The region of an outward postcode (`RG10`, `SW1A`).
    Postcode(String),
}

/// The fetcher.
pub struct UkGrid {
    http: Http,
    url: String,
    target: Target,
}

impl UkGrid {
    /// A fetcher of `target` from the API at `url` (no trailing `/`).
    pub fn new(http: Http, url: String, target: Target) -> UkGrid {
        UkGrid { http, url, target }
    }
}

impl Fetch for UkGrid {
    fn fetch(&mut self, _now_unix: f64) -> Result<LiveValue, FetchError> {
        let path = match &self.target {
            Target::National => "/intensity".to_string(),
            Target::Region(id) => format!("/regional/regionid/{id}"),
            Target::Postcode(code) => format!("/regional/postcode/{code}"),
        };
        let body = self.http.get(&format!("{}{path}", self.url), &[])?;
        match self.target {
            Target::National => parse_national(&body),
            _ => parse_regional(&body),
        }
    }
}

#[derive(Deserialize)]
struct Period {
    from: String,
    /// End of the half hour; absent in some answers.
    #[serde(default)]
    to: Option<String>,
    intensity: Reading,
}

#[derive(Deserialize)]
struct Reading {
    forecast: Option<f64>,
    actual: Option<f64>,
}

#[derive(Deserialize)]
struct Answer<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
struct Region {
    regionid: u32,
    data: Vec<Period>,
}

/// Reads a `/intensity` answer.
pub fn parse_national(body: &str) -> Result<LiveValue, FetchError> {
    let answer: Answer<Period> = json(body)?;
    let period = answer
        .data
        .into_iter()
        .next()
        .ok_or(FetchError::NoData("data is empty"))?;
    let (value, source) = match (period.intensity.actual, period.intensity.forecast) {
        (Some(actual), _) => (actual, "neso-actual"),
        (None, Some(forecast)) => (forecast, "neso-forecast"),
        (None, None) => return Err(FetchError::NoData("forecast and actual are null")),
    };
    live(value, "GB".into(), source, &period)
}

/// Reads a `/regional/regionid/{id}` or `/regional/postcode/{code}` answer.
pub fn parse_regional(body: &str) -> Result<LiveValue, FetchError> {
    let answer: Answer<Region> = json(body)?;
    let region = answer
        .data
        .into_iter()
        .next()
        .ok_or(FetchError::NoData("data is empty"))?;
    let period = region
        .data
        .into_iter()
        .next()
        .ok_or(FetchError::NoData("the region's data is empty"))?;
    let value = period
        .intensity
        .forecast
        .ok_or(FetchError::NoData("forecast is null"))?;
    live(
        value,
        format!("GB-{}", region.regionid),
        "neso-regional-forecast",
        &period,
    )
}

/// Values are half-hourly.
const HALF_HOUR: f64 = 1_800.0;

fn live(value: f64, zone: String, source: &str, period: &Period) -> Result<LiveValue, FetchError> {
    let time = |t: &str| parse_rfc3339(t).map_err(|e| FetchError::Malformed(e.to_string()));
    let at_unix = time(&period.from)?;
    let until_unix = match &period.to {
        Some(to) => time(to)?,
        None => at_unix + HALF_HOUR,
    };
    Ok(LiveValue {
        grams_per_kwh: in_range(value)?,
        zone,
        signal: Signal::Average,
        scope: Scope::Direct,
        source: source.into(),
        at_unix,
        until_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_prefers_the_measured_value() {
        let body = r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":266,"actual":263,"index":"moderate"}}]}"#;
        let v = parse_national(body).expect("valid");
        assert_eq!(
            (v.grams_per_kwh, v.source.as_str(), v.zone.as_str()),
            (263.0, "neso-actual", "GB")
        );
        assert_eq!(v.at_unix, 1_516_449_600.0);
        assert_eq!(v.until_unix, 1_516_449_600.0 + 1_800.0);
        assert_eq!((v.signal, v.scope), (Signal::Average, Scope::Direct));
        let body = body.replace("263", "null");
        let v = parse_national(&body).expect("valid");
        assert_eq!(
            (v.grams_per_kwh, v.source.as_str()),
            (266.0, "neso-forecast")
        );
    }

    #[test]
    fn regional_and_postcode_answers() {
        let body = r#"{"data":[{"regionid":12,"dnoregion":"Scottish and Southern Energy","shortname":"South England","postcode":"RG10","data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":120,"index":"low"},"generationmix":[{"fuel":"gas","perc":30.1},{"fuel":"wind","perc":40.2}]}]}]}"#;
        let v = parse_regional(body).expect("valid");
        assert_eq!((v.grams_per_kwh, v.zone.as_str()), (120.0, "GB-12"));
        assert_eq!(v.source, "neso-regional-forecast");
    }

    #[test]
    fn rejects_empty_null_and_out_of_range() {
        for body in [
            r#"{"data":[]}"#,
            r#"{"data":[{"from":"2018-01-20T12:00Z","intensity":{"forecast":null,"actual":null}}]}"#,
            r#"{"data":[{"from":"2018-01-20T12:00Z","intensity":{"forecast":-1,"actual":null}}]}"#,
            r#"{"data":[{"from":"noon","intensity":{"forecast":100}}]}"#,
            r#"{"error":{"code":"400 Bad Request"}}"#,
            "<html>",
        ] {
            assert!(parse_national(body).is_err(), "{body}");
        }
        assert!(parse_regional(r#"{"data":[{"regionid":1,"data":[]}]}"#).is_err());
        assert!(parse_regional(r#"{"data":[{"regionid":1,"data":[{"from":"2018-01-20T12:00Z","intensity":{"forecast":5000}}]}]}"#).is_err());
    }
}
