//! Live intensity from Electricity Maps and the GB Carbon Intensity API, against mocks that
//! answer with the documented response shapes, and with every failure the real ones can have.

use std::time::Duration;

use crate::carbon_mock::{assert_never_shown, intensity, rfc3339, scrape_until, MockApi, Reply};
use crate::support::{now_unix, Exporter, Scrape};

const TOKEN_ENV: &str = "GPU_CARBON_EXPORTER_CARBON_ELECTRICITYMAPS_TOKEN";
const TOKEN: &str = "em-token-5f3a9c-do-not-log";

/// An Electricity Maps `carbon-intensity/latest` answer for DE, dated `at`.
fn latest(grams: &str, at: f64) -> String {
    format!(
        r#"{{"zone":"DE","carbonIntensity":{grams},"datetime":"{}","updatedAt":"{}","createdAt":"{}","emissionFactorType":"lifecycle","isEstimated":false,"estimationMethod":null}}"#,
        rfc3339(at),
        rfc3339(at + 120.0),
        rfc3339(at - 86_400.0)
    )
}

fn electricitymaps(mock: &MockApi, extra: &[&str]) -> Exporter {
    let url = format!("--carbon.electricitymaps.url={}/v3", mock.url());
    let mut args = vec![
        "--demo",
        "--sample.interval=100ms",
        "--log.level=debug",
        "--carbon.pue=1.5",
        "--carbon.provider=electricitymaps",
        "--carbon.electricitymaps.zone=DE",
        "--carbon.fallback-zone=FR",
        &url,
    ];
    args.extend_from_slice(extra);
    let exporter = Exporter::start(&args, &[(TOKEN_ENV, TOKEN)]);
    exporter.wait_ready();
    exporter
}

fn co2e_per_kwh(a: &Scrape, b: &Scrape, gpu: &str) -> f64 {
    let d = |s: &Scrape, name| s.value(name, &[("gpu", gpu)]);
    (d(b, "gpu_co2e_grams_total") - d(a, "gpu_co2e_grams_total"))
        / (d(b, "gpu_energy_kwh_total") - d(a, "gpu_energy_kwh_total"))
}

#[test]
fn electricitymaps_value_is_applied_with_its_provenance_and_the_token_stays_secret() {
    let dated = (now_unix() - 600.0).floor();
    let mock = MockApi::start(move |req, _| {
        if req.path() != "/v3/carbon-intensity/latest" {
            return Reply::json(404, "{}");
        }
        if req.header("auth-token") != Some(TOKEN) {
            return Reply::json(401, r#"{"message":"unauthorized"}"#);
        }
        Reply::json(200, latest("250", dated))
    });
    let exporter = electricitymaps(&mock, &[]);
    let a = exporter.scrape();
    std::thread::sleep(Duration::from_millis(800));
    let b = exporter.scrape();

    assert_eq!(
        intensity(&b),
        (
            "electricitymaps".into(),
            "DE".into(),
            "average".into(),
            "lifecycle".into(),
            250.0
        )
    );
    let info = &[
        ("provider", "electricitymaps"),
        ("source", "electricitymaps"),
        ("zone", "DE"),
    ];
    assert_eq!(b.value("gpu_carbon_intensity_info", info), 1.0);
    assert_eq!(b.value("gpu_carbon_intensity_fallback", &[]), 0.0);
    assert_eq!(
        b.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "electricitymaps")]
        ),
        0.0
    );
    assert_eq!(
        b.value("gpu_carbon_intensity_last_update_timestamp_seconds", &[]),
        dated
    );
    // Every gram between the scrapes is that energy × PUE × 250.
    for gpu in ["0", "1", "2", "3"] {
        let ratio = co2e_per_kwh(&a, &b, gpu);
        assert!((ratio - 1.5 * 250.0).abs() < 1e-6, "gpu {gpu}: {ratio}");
    }
    let first = &mock.requests()[0];
    assert_eq!(
        first.target,
        "/v3/carbon-intensity/latest?zone=DE&emissionFactorType=lifecycle"
    );
    assert_eq!(first.header("auth-token"), Some(TOKEN));
    crate::support::assert_promtool_clean(&b.text);
    assert_never_shown(&exporter, &b, TOKEN);
}

#[test]
fn electricitymaps_failures_fall_back_as_documented_and_sampling_never_stops() {
    let started = now_unix();
    let mock = MockApi::start(move |_, n| {
        let now = now_unix();
        match n {
            0 => Reply::json(200, latest("300", now)),
            1 => Reply::json(500, r#"{"message":"internal error"}"#),
            2 => Reply::json(401, r#"{"message":"bad token"}"#),
            3 => Reply::Now(429, vec![("Retry-After", "1".into())], "{}".into()),
            4 => Reply::json(200, r#"{"zone":"DE","carbonIntensity":"#),
            5 => Reply::json(200, latest("99999", now)),
            6 => Reply::json(200, latest("-4", now)),
            7 => Reply::json(200, latest("null", now)),
            8 => Reply::SlowBody(latest("310", now), Duration::from_secs(3)),
            9 => Reply::Silence(Duration::from_secs(3)),
            _ => Reply::json(200, latest("320", now)),
        }
    });
    let mut exporter = electricitymaps(
        &mock,
        &[
            "--carbon.refresh-interval=1s",
            "--carbon.http-timeout=1s",
            "--carbon.max-age=3s",
        ],
    );
    let scrapes = scrape_until(&exporter, Duration::from_secs(40), |s| {
        intensity(s).4 == 320.0
    });
    let states: Vec<(String, f64, f64)> = scrapes
        .iter()
        .map(|s| {
            let (provider, _, _, _, value) = intensity(s);
            (
                provider,
                value,
                s.value("gpu_carbon_intensity_fallback", &[]),
            )
        })
        .collect();
    let seen = |want: (&str, f64, f64)| {
        states
            .iter()
            .position(|(p, v, f)| (p.as_str(), *v, *f) == want)
            .unwrap_or_else(|| panic!("never saw {want:?} in {states:?}"))
    };
    // Live, then the last good value flagged as a fallback, then the static fallback zone
    // (FR, 56.039 g/kWh in the table) once 300 is older than 3 s, then live again.
    let live = seen(("electricitymaps", 300.0, 0.0));
    let stale = seen(("electricitymaps", 300.0, 1.0));
    let fallback = seen(("static", 56.039, 1.0));
    let back = seen(("electricitymaps", 320.0, 0.0));
    assert!(
        live < stale && stale < fallback && fallback < back,
        "{states:?}"
    );
    let during = &scrapes[fallback];
    assert_eq!(
        during
            .find("gpu_carbon_intensity_grams_per_kwh", &[("zone", "FR")])
            .len(),
        1
    );
    let errors = |s: &Scrape| {
        s.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "electricitymaps")],
        )
    };
    let last = scrapes.last().expect("scrapes");
    assert_eq!(
        errors(last),
        9.0,
        "500, 401, 429, truncated, 2 out of range, null, slow, silent"
    );
    assert!(errors(&scrapes[0]) <= errors(during));
    // The energy drawn during the static fallback was charged at the fallback's 56 g/kWh.
    if let Some(next) = scrapes[fallback + 1..]
        .iter()
        .find(|s| intensity(s).0 == "static" && intensity(s).4 == 56.039)
    {
        let ratio = co2e_per_kwh(during, next, "0");
        assert!(
            ratio.is_nan() || (ratio - 1.5 * 56.039).abs() < 1e-6,
            "{ratio}"
        );
    }
    assert!(now_unix() - started < 40.0);
    let log = exporter.log();
    for expected in [
        "HTTP 500",
        "HTTP 401",
        "rate limited",
        "out of range",
        "timed out",
        "malformed",
    ] {
        assert!(
            log.contains(expected),
            "log should mention {expected:?}:\n{log}"
        );
    }
    assert_never_shown(&exporter, last, TOKEN);
    assert!(
        exporter.child.try_wait().expect("status").is_none(),
        "exporter exited"
    );
}

#[test]
fn a_value_older_than_max_age_is_not_used() {
    // An hourly value whose hour ended two hours ago.
    let old = (now_unix() - 3.0 * 3_600.0).floor();
    let mock = MockApi::start(move |_, _| Reply::json(200, latest("250", old)));
    let exporter = electricitymaps(&mock, &["--carbon.max-age=1h"]);
    let s = exporter.scrape();
    let page = exporter.get("/").body;
    assert!(
        page.contains("from static, zone FR")
            && page.contains("FALLBACK (configured provider: electricitymaps)"),
        "{page}"
    );
    assert_eq!(intensity(&s).0, "static");
    assert_eq!(intensity(&s).1, "FR");
    assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 1.0);
    assert_eq!(
        s.value("gpu_carbon_intensity_last_update_timestamp_seconds", &[]),
        old
    );
    assert_eq!(
        s.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "electricitymaps")]
        ),
        0.0
    );
}

/// National (measured value not in yet, so the forecast), a region id, and a postcode.
#[test]
fn ukgrid_national_region_and_postcode() {
    let mock = MockApi::start(|req, _| {
        let from = rfc3339((now_unix() / 1800.0).floor() * 1800.0);
        let regional = |id: u32, postcode: &str| {
            format!(
                r#"{{"data":[{{"regionid":{id},"dnoregion":"Scottish and Southern Energy","shortname":"South England",{postcode}"data":[{{"from":"{from}","to":"{from}","intensity":{{"forecast":{},"index":"low"}},"generationmix":[{{"fuel":"gas","perc":30.1}},{{"fuel":"wind","perc":40.2}}]}}]}}]}}"#,
                100 + id
            )
        };
        match req.path() {
            "/intensity" => Reply::json(
                200,
                format!(
                    r#"{{"data":[{{"from":"{from}","to":"{from}","intensity":{{"forecast":180,"actual":null,"index":"moderate"}}}}]}}"#
                ),
            ),
            "/regional/regionid/13" => Reply::json(200, regional(13, "")),
            "/regional/postcode/RG10" => Reply::json(200, regional(12, r#""postcode":"RG10","#)),
            _ => Reply::json(
                400,
                r#"{"error":{"code":"400 Bad Request","message":"bad"}}"#,
            ),
        }
    });
    let url = format!("--carbon.ukgrid.url={}", mock.url());
    let cases: [(&str, &str, f64, &str); 3] = [
        ("--carbon.max-age=2h", "GB", 180.0, "neso-forecast"),
        (
            "--carbon.ukgrid.region=13",
            "GB-13",
            113.0,
            "neso-regional-forecast",
        ),
        (
            "--carbon.ukgrid.postcode=rg10 1aa",
            "GB-12",
            112.0,
            "neso-regional-forecast",
        ),
    ];
    for (arg, zone, value, source) in cases {
        let exporter = Exporter::start(&["--demo", "--carbon.provider=ukgrid", arg, &url], &[]);
        exporter.wait_ready();
        let s = exporter.scrape();
        assert_eq!(
            intensity(&s),
            (
                "ukgrid".into(),
                zone.into(),
                "average".into(),
                "direct".into(),
                value
            ),
            "{arg}"
        );
        let info = &[("provider", "ukgrid"), ("source", source), ("zone", zone)];
        assert_eq!(s.value("gpu_carbon_intensity_info", info), 1.0, "{arg}");
        assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 0.0, "{arg}");
    }
    let paths: Vec<String> = mock.requests().iter().map(|r| r.target.clone()).collect();
    for want in [
        "/intensity",
        "/regional/regionid/13",
        "/regional/postcode/RG10",
    ] {
        assert!(
            paths.iter().any(|p| p == want),
            "{want} not requested: {paths:?}"
        );
    }
}

/// With a hung API, `/-/healthy` answers at once (a liveness probe must not kill the pod while
/// the first fetch waits), `/-/ready` waits, and once the API answers the first sample is
/// charged at the live value.
#[test]
fn health_answers_at_once_while_readiness_waits_for_the_first_fetch() {
    let dated = (now_unix() - 600.0).floor();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let mock = MockApi::start(move |_, n| {
        if n == 0 {
            // Hold the first answer until the test has seen the exporter serve health.
            let _ = released.lock().map(|r| r.recv());
        }
        Reply::json(200, latest("250", dated))
    });
    let url = format!("--carbon.electricitymaps.url={}/v3", mock.url());
    let exporter = Exporter::start(
        &[
            "--demo",
            "--sample.interval=100ms",
            "--carbon.provider=electricitymaps",
            "--carbon.electricitymaps.zone=DE",
            "--carbon.fallback-zone=FR",
            "--carbon.http-timeout=60s",
            &url,
        ],
        &[(TOKEN_ENV, TOKEN)],
    );
    // Listening was logged while the first fetch is still held.
    assert_eq!(exporter.get("/-/healthy").status, 200);
    let ready = exporter.get("/-/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(exporter.get("/").status, 200);
    release.send(()).expect("release the mock");
    exporter.wait_ready();
    let s = exporter.scrape();
    assert_eq!(intensity(&s).0, "electricitymaps", "{}", s.text);
    assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 0.0);
    // The landing page shows the value in force, its source, its age, and that it is live.
    let page = exporter.get("/").body;
    assert!(
        page.contains("250 g CO2e/kWh from electricitymaps, zone DE, source electricitymaps")
            && page.contains("value dated")
            && page.contains("not a fallback"),
        "{page}"
    );
}

/// SIGTERM while the first fetch still hangs stops the exporter cleanly; it does not wait the
/// fetch out (here up to 121 s, beyond the harness's 20 s wait for the exit).
#[test]
fn shutdown_while_the_first_fetch_hangs_is_clean() {
    let mock = MockApi::start(|_, _| Reply::Silence(Duration::from_secs(120)));
    let url = format!("--carbon.electricitymaps.url={}/v3", mock.url());
    let exporter = Exporter::start(
        &[
            "--demo",
            "--carbon.provider=electricitymaps",
            "--carbon.electricitymaps.zone=DE",
            "--carbon.http-timeout=60s",
            &url,
        ],
        &[(TOKEN_ENV, TOKEN)],
    );
    assert_eq!(exporter.get("/-/healthy").status, 200);
    let status = exporter.terminate();
    assert_eq!(status.code(), Some(0));
}

/// Electricity Maps dates an hourly value at the top of its hour; with `--carbon.max-age=15m`
/// a value dated 50 minutes ago covers the hour still running and is in force, not a fallback.
#[test]
fn max_age_counts_from_the_end_of_the_interval_the_value_covers() {
    let dated = (now_unix() - 50.0 * 60.0).floor();
    let mock = MockApi::start(move |_, _| Reply::json(200, latest("250", dated)));
    let exporter = electricitymaps(&mock, &["--carbon.max-age=15m"]);
    let s = exporter.scrape();
    assert_eq!(intensity(&s).0, "electricitymaps", "{}", s.text);
    assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 0.0);
}

/// A token sent over plain http:// to another host crosses the network in clear text: warned
/// about at start-up. Loopback (a local proxy, these mocks) is not.
#[test]
fn credentials_over_plain_http_beyond_loopback_are_warned_about() {
    let warning = "UNENCRYPTED";
    let remote = Exporter::start(
        &[
            "--demo",
            "--carbon.provider=electricitymaps",
            "--carbon.electricitymaps.zone=DE",
            "--carbon.http-timeout=1s",
            // TEST-NET-1 (RFC 5737): never routed, so nothing is ever sent.
            "--carbon.electricitymaps.url=http://192.0.2.1:9/v3",
        ],
        &[(TOKEN_ENV, TOKEN)],
    );
    let log = remote.log();
    assert!(log.contains(warning) && log.contains("level=warn"), "{log}");
    assert_never_shown(&remote, &remote.scrape(), TOKEN);
    drop(remote);
    let mock = MockApi::start(|_, _| Reply::json(200, latest("250", now_unix() - 60.0)));
    let local = electricitymaps(&mock, &[]);
    assert!(!local.log().contains(warning), "{}", local.log());
}

/// A redirect is not followed, so the token can't be carried to another address: the fetch
/// fails and is counted, the fallback applies, and the target of the redirect never hears a
/// request.
#[test]
fn a_redirect_is_not_followed_and_the_token_goes_nowhere_else() {
    let dated = (now_unix() - 600.0).floor();
    let mock = MockApi::start(move |req, _| {
        if req.path() == "/elsewhere/carbon-intensity/latest" {
            return Reply::json(200, latest("250", dated));
        }
        let location = format!("/elsewhere{}", req.target.trim_start_matches("/v3"));
        Reply::Now(302, vec![("Location", location)], String::new())
    });
    let exporter = electricitymaps(
        &mock,
        &["--carbon.refresh-interval=1s", "--carbon.http-timeout=1s"],
    );
    let errors = |s: &Scrape| {
        s.value(
            "gpu_carbon_intensity_fetch_errors_total",
            &[("provider", "electricitymaps")],
        )
    };
    let scrapes = scrape_until(&exporter, Duration::from_secs(20), |s| errors(s) >= 2.0);
    let s = scrapes.last().expect("a scrape");
    assert_eq!(intensity(s).0, "static", "the fallback applies");
    assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 1.0);
    let requests = mock.requests();
    assert!(requests.len() >= 2, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.path() == "/v3/carbon-intensity/latest"),
        "followed a redirect: {requests:?}"
    );
}

/// An intensity API that accepts the connection and never answers holds up the first sample by
/// at most twice `--carbon.http-timeout` plus a second (here 3 s, checked with a margin for a
/// loaded machine, against a mock that would stay silent for a minute): then sampling starts on
/// the static fallback and the failed fetch is counted.
#[test]
fn a_hung_intensity_api_delays_the_first_sample_by_a_bounded_time() {
    let mock = MockApi::start(|_, _| Reply::Silence(Duration::from_secs(60)));
    let started = std::time::Instant::now();
    let exporter = electricitymaps(&mock, &["--carbon.http-timeout=1s"]);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3 + 10),
        "ready after {waited:?}"
    );
    let s = exporter.scrape();
    assert_eq!(intensity(&s).0, "static", "{}", s.text);
    assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 1.0);
    let errors = s.value(
        "gpu_carbon_intensity_fetch_errors_total",
        &[("provider", "electricitymaps")],
    );
    assert!(errors >= 1.0, "{}", s.text);
}
