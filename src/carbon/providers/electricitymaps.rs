//! Electricity Maps API v3, `GET /v3/carbon-intensity/latest?zone=Z&emissionFactorType=T`
//! with the `auth-token` header (docs.electricitymaps.com, "Carbon intensity › Latest"). The
//! answer is the zone's hourly, flow-traced (consumption-based) average intensity:
//!
//! ```json
//! {"zone": "DE", "carbonIntensity": 302, "datetime": "2019-05-21T00:00:00.000Z",
//!  "updatedAt": "2019-05-21T00:53:11.563Z", "emissionFactorType": "lifecycle",
//!  "isEstimated": false, "estimationMethod": null}
//! ```
//!
//! `datetime` is the start of the hour the value covers; `emissionFactorType` is `lifecycle`
//! (the default) or `direct`; `isEstimated` marks values modelled before measured data arrived.

use std::time::Duration;

use serde::Deserialize;

use crate::carbon::http::{in_range, json, FetchError, Http};
use crate::carbon::refresh::{Fetch, LiveValue};
use crate::carbon::secret::Secret;
use crate::carbon::time::parse_rfc3339;
use crate::carbon::{Scope, Signal};

/// The public API's base URL.
pub const DEFAULT_URL: &str = "https://api.electricitymaps.com/v3";
/// Values are hourly and updated within the hour: fetching every 10 minutes picks a new one
/// up soon enough and stays far below any plan's rate limit.
pub const PERIOD: Duration = Duration::from_secs(600);
/// Environment variable holding the API token (unless `--carbon.electricitymaps.token-file`).
pub const TOKEN_ENV: &str = "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN";

/// What to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectricityMapsSettings {
    /// Base URL, without a trailing `/`.
    pub url: String,
    /// Electricity Maps zone key (`DE`, `US-CAL-CISO`, …).
    pub zone: String,
    /// The API token.
    pub token: Secret,
    /// `emissionFactorType` to request.
    pub scope: Scope,
}

/// The fetcher.
pub struct ElectricityMaps {
    http: Http,
    settings: ElectricityMapsSettings,
}

impl ElectricityMaps {
    /// A fetcher using `http`.
    pub fn new(http: Http, settings: ElectricityMapsSettings) -> ElectricityMaps {
        ElectricityMaps { http, settings }
    }
}

impl Fetch for ElectricityMaps {
    fn fetch(&mut self, _now_unix: f64) -> Result<LiveValue, FetchError> {
        let s = &self.settings;
        let url = format!(
            "{}/carbon-intensity/latest?zone={}&emissionFactorType={}",
            s.url,
            s.zone,
            s.scope.as_str()
        );
        let body = self.http.get(&url, &[("auth-token", s.token.expose())])?;
        parse_latest(&body, &s.zone, s.scope)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Latest {
    zone: Option<String>,
    carbon_intensity: Option<f64>,
    datetime: Option<String>,
    emission_factor_type: Option<String>,
    is_estimated: Option<bool>,
}

/// Reads a `carbon-intensity/latest` answer for `zone`, requested with `scope`.
pub fn parse_latest(body: &str, zone: &str, scope: Scope) -> Result<LiveValue, FetchError> {
    let latest: Latest = json(body)?;
    let grams = latest
        .carbon_intensity
        .ok_or(FetchError::NoData("carbonIntensity is null or missing"))?;
    let datetime = latest
        .datetime
        .ok_or(FetchError::NoData("datetime is missing"))?;
    let at_unix = parse_rfc3339(&datetime).map_err(|e| FetchError::Malformed(e.to_string()))?;
    let scope = match latest.emission_factor_type.as_deref() {
        None => scope,
        Some("lifecycle") => Scope::Lifecycle,
        Some("direct") => Scope::Direct,
        Some(other) => {
            return Err(FetchError::Malformed(format!(
                "unknown emissionFactorType {other:?}"
            )))
        }
    };
    if let Some(answered) = latest.zone.as_deref() {
        if !answered.eq_ignore_ascii_case(zone) {
            return Err(FetchError::Malformed(format!(
                "asked for zone {zone}, got {answered}"
            )));
        }
    }
    Ok(LiveValue {
        grams_per_kwh: in_range(grams)?,
        zone: zone.to_string(),
        signal: Signal::Average,
        scope,
        source: if latest.is_estimated == Some(true) {
            "electricitymaps-estimated".into()
        } else {
            "electricitymaps".into()
        },
        at_unix,
        // Values are hourly, dated at the top of their hour.
        until_unix: at_unix + HOUR,
    })
}

/// The interval an Electricity Maps `latest` value covers.
const HOUR: f64 = 3_600.0;

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_EXAMPLE: &str = r#"{"zone":"DE","carbonIntensity":302,"datetime":"2019-05-21T00:00:00.000Z","updatedAt":"2019-05-21T00:53:11.563Z","createdAt":"2019-05-18T00:55:56.893Z","emissionFactorType":"lifecycle","isEstimated":false,"estimationMethod":null}"#;

    #[test]
    fn reads_the_documented_answer() {
        let v = parse_latest(DOCS_EXAMPLE, "DE", Scope::Lifecycle).expect("valid");
        assert_eq!(v.grams_per_kwh, 302.0);
        assert_eq!(v.zone, "DE");
        assert_eq!((v.signal, v.scope), (Signal::Average, Scope::Lifecycle));
        assert_eq!(v.source, "electricitymaps");
        assert_eq!(v.at_unix, 1_558_396_800.0);
    }

    #[test]
    fn labels_direct_and_estimated_values() {
        let body = r#"{"zone":"FR","carbonIntensity":25.5,"datetime":"2024-01-01T10:00:00.000Z","emissionFactorType":"direct","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE"}"#;
        let v = parse_latest(body, "FR", Scope::Lifecycle).expect("valid");
        assert_eq!(
            (v.scope, v.source.as_str()),
            (Scope::Direct, "electricitymaps-estimated")
        );
        // Minimal answer: the requested scope stands.
        let body = r#"{"carbonIntensity":100,"datetime":"2024-01-01T10:00:00Z"}"#;
        assert_eq!(
            parse_latest(body, "FR", Scope::Direct)
                .expect("valid")
                .scope,
            Scope::Direct
        );
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        let cases = [
            ("not json", "malformed"),
            (
                r#"{"zone":"DE","carbonIntensity":null,"datetime":"2024-01-01T00:00Z"}"#,
                "no value",
            ),
            (
                r#"{"zone":"DE","carbonIntensity":"302","datetime":"2024-01-01T00:00Z"}"#,
                "malformed",
            ),
            (
                r#"{"zone":"DE","carbonIntensity":-3,"datetime":"2024-01-01T00:00Z"}"#,
                "out of range",
            ),
            (
                r#"{"zone":"DE","carbonIntensity":99999,"datetime":"2024-01-01T00:00Z"}"#,
                "out of range",
            ),
            (r#"{"zone":"DE","carbonIntensity":300}"#, "no value"),
            (
                r#"{"zone":"DE","carbonIntensity":300,"datetime":"yesterday"}"#,
                "malformed",
            ),
            (
                r#"{"zone":"FR","carbonIntensity":300,"datetime":"2024-01-01T00:00Z"}"#,
                "malformed",
            ),
            (
                r#"{"zone":"DE","carbonIntensity":300,"datetime":"2024-01-01T00:00Z","emissionFactorType":"x"}"#,
                "malformed",
            ),
        ];
        for (body, want) in cases {
            let err = parse_latest(body, "DE", Scope::Lifecycle).expect_err(body);
            assert!(err.to_string().contains(want), "{body}: {err}");
        }
    }
}
