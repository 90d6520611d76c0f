//! WattTime: basic-auth login for a bearer token, the token expiring (the mock answers 401
//! until the exporter logs in again), the MOER in lb/MWh converted to g/kWh and labelled
//! marginal, and credentials that never show.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;

use crate::carbon_mock::{assert_never_shown, intensity, rfc3339, scrape_until, MockApi, Reply};
use crate::support::{now_unix, temp_file, Exporter};

const USER: &str = "alice";
const PASSWORD: &str = "wt-password-77c1-do-not-log";

/// The mock's account state: how many logins, the valid token, and its remaining uses.
#[derive(Default)]
struct Account {
    logins: u32,
    token: Option<String>,
    uses_left: u32,
}

fn forecast(now: f64) -> String {
    let interval = (now / 300.0).floor() * 300.0;
    format!(
        r#"{{"data":[{{"point_time":"{}","value":1000.0,"version":"3.2"}},{{"point_time":"{}","value":500.0,"version":"3.2"}}],"meta":{{"data_point_period_seconds":300,"region":"CAISO_NORTH","signal_type":"co2_moer","model":{{"date":"2023-03-01"}},"units":"lbs_co2_per_mwh","warnings":[],"generated_at_period_seconds":300,"generated_at":"{}"}}}}"#,
        rfc3339(interval),
        rfc3339(interval + 300.0),
        rfc3339(interval)
    )
}

fn mock(account: Arc<Mutex<Account>>) -> MockApi {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    MockApi::start(move |req, _| {
        let mut a = account.lock().expect("account");
        match req.path() {
            "/login" if req.header("authorization") == Some(basic.as_str()) => {
                a.logins += 1;
                let token = format!("wt-token-{}-secret", a.logins);
                a.token = Some(token.clone());
                a.uses_left = 2;
                Reply::json(200, format!(r#"{{"token":"{token}"}}"#))
            }
            "/login" => Reply::json(401, r#"{"error":"invalid credentials"}"#),
            "/v3/forecast" => {
                let bearer = a.token.as_ref().map(|t| format!("Bearer {t}"));
                if a.uses_left == 0 || req.header("authorization") != bearer.as_deref() {
                    return Reply::json(401, r#"{"error":"token expired"}"#);
                }
                a.uses_left -= 1;
                Reply::json(200, forecast(now_unix()))
            }
            _ => Reply::json(404, "{}"),
        }
    })
}

fn start(mock: &MockApi, password: &str) -> Exporter {
    let password_file = temp_file("watttime-password", &format!("{password}\n"));
    let exporter = Exporter::start(
        &[
            "--demo",
            "--sample.interval=100ms",
            "--log.level=debug",
            "--carbon.provider=watttime",
            "--carbon.watttime.region=CAISO_NORTH",
            "--carbon.refresh-interval=1s",
            &format!("--carbon.watttime.url={}", mock.url()),
            &format!(
                "--carbon.watttime.password-file={}",
                password_file.display()
            ),
        ],
        &[("GPU_CARBON_EXPORTER_CARBON_WATTTIME_USERNAME", USER)],
    );
    exporter.wait_ready();
    exporter
}

#[test]
fn watttime_logs_in_again_when_the_token_expires_and_converts_the_moer() {
    let account = Arc::new(Mutex::new(Account::default()));
    let mock = mock(Arc::clone(&account));
    let exporter = start(&mock, PASSWORD);
    let scrapes = scrape_until(&exporter, Duration::from_secs(20), |_| {
        account.lock().expect("account").logins >= 3
    });
    let last = scrapes.last().expect("scrape");
    for s in &scrapes {
        // 1000 lb/MWh × 453.59237 g/lb ÷ 1000 kWh/MWh; never a fallback: expiry is routine.
        let (provider, zone, signal, scope, value) = intensity(s);
        assert_eq!(
            (provider.as_str(), zone.as_str()),
            ("watttime", "CAISO_NORTH")
        );
        assert_eq!((signal.as_str(), scope.as_str()), ("marginal", "direct"));
        assert!((value - 453.592_37).abs() < 1e-9, "{value}");
        assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 0.0);
    }
    assert_eq!(
        last.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "watttime")]
        ),
        0.0
    );
    let info = &[
        ("provider", "watttime"),
        ("source", "watttime-co2_moer"),
        ("zone", "CAISO_NORTH"),
    ];
    assert_eq!(last.value("gpu_carbon_intensity_info", info), 1.0);
    let requests = mock.requests();
    let forecasts = requests
        .iter()
        .filter(|r| r.path() == "/v3/forecast")
        .count();
    assert!(forecasts >= 5, "forecast calls: {forecasts}");
    assert!(requests
        .iter()
        .any(|r| r.target == "/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer"));
    for secret in [PASSWORD, "wt-token-1-secret", "wt-token-2-secret"] {
        assert_never_shown(&exporter, last, secret);
    }
}

#[test]
fn rejected_credentials_are_counted_and_the_static_value_applies() {
    let account = Arc::new(Mutex::new(Account::default()));
    let mock = mock(Arc::clone(&account));
    let exporter = start(&mock, "wrong-password-3b1e");
    let scrapes = scrape_until(&exporter, Duration::from_secs(20), |s| {
        s.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "watttime")],
        ) >= 2.0
    });
    let last = scrapes.last().expect("scrape");
    let (provider, zone, _, _, value) = intensity(last);
    assert_eq!(
        (provider.as_str(), zone.as_str(), value),
        ("static", "WORLD", 480.0)
    );
    assert_eq!(last.value("gpu_carbon_intensity_fallback", &[]), 1.0);
    assert!(last
        .find("gpu_carbon_intensity_last_update_timestamp_seconds", &[])
        .is_empty());
    assert!(exporter.log().contains("credentials rejected"));
    assert_never_shown(&exporter, last, "wrong-password-3b1e");
    assert_eq!(account.lock().expect("account").logins, 0);
}
