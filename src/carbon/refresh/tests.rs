//! Tests of the parent module.

use super::*;
use crate::clock::ManualClock;
use std::collections::VecDeque;

fn value(g: f64, at: f64) -> LiveValue {
    LiveValue {
        grams_per_kwh: g,
        zone: "DE".into(),
        signal: Signal::Average,
        scope: Scope::Lifecycle,
        source: "test".into(),
        at_unix: at,
        until_unix: at,
    }
}

#[test]
fn backoff_doubles_up_to_the_period_and_honours_retry_after() {
    let c = Cadence {
        period: Duration::from_secs(600),
        first_retry: Duration::from_secs(1),
    };
    let delays: Vec<u64> = (1..=12)
        .map(|n| retry_delay(n, &c, None).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    assert_eq!(retry_delay(u32::MAX, &c, None), c.period);
    let asked = Some(Duration::from_secs(90));
    assert_eq!(retry_delay(1, &c, asked), Duration::from_secs(90));
    assert_eq!(retry_delay(10, &c, asked), Duration::from_secs(512));
}

#[test]
fn a_value_is_in_force_until_it_is_older_than_max_age() {
    let v = value(300.0, 1_000.0);
    let max = Duration::from_secs(60);
    assert!(in_force(Some(&v), 1_000.0, max).is_some());
    assert!(in_force(Some(&v), 1_060.0, max).is_some());
    assert!(in_force(Some(&v), 1_060.5, max).is_none());
    assert!(in_force(None, 1_000.0, max).is_none());
}

/// Electricity Maps dates an hourly value at the top of its hour: with a max-age under an hour
/// it must not fall back for part of every hour while the API is healthy. The age counts from
/// the end of the interval, or from the fetch while the interval lasts.
#[test]
fn age_counts_from_the_end_of_the_interval_or_the_fetch() {
    let top = 7_200.0;
    let clock = Arc::new(ManualClock::new(top + 3_000.0)); // 50 min into the hour
    let mut hourly = value(300.0, top);
    hourly.until_unix = top + 3_600.0;
    let mut r = refresher(vec![Ok(hourly)], Arc::clone(&clock));
    r.max_age = Duration::from_secs(900);
    let mut failures = 0;
    r.attempt(&mut failures);
    let state = r.state.lock().expect("lock");
    let latest = state.latest.as_ref().expect("fetched");
    assert_eq!(
        latest.until_unix,
        top + 3_000.0,
        "the fetch, within the hour"
    );
    let max = Duration::from_secs(900);
    assert!(in_force(Some(latest), top + 3_000.0, max).is_some());
    assert!(in_force(Some(latest), top + 3_900.0, max).is_some());
    assert!(in_force(Some(latest), top + 3_900.5, max).is_none());
    // A value whose hour is over ages from the end of the hour, not from its start.
    let mut done = value(300.0, top);
    done.until_unix = top + 3_600.0;
    assert!(in_force(Some(&done), top + 3_600.0 + 899.0, max).is_some());
    assert!(in_force(Some(&done), top + 3_600.0 + 901.0, max).is_none());
}

/// Answers from a script, one per fetch.
struct Script(Arc<Mutex<VecDeque<Result<LiveValue, FetchError>>>>);

impl Fetch for Script {
    fn fetch(&mut self, _now: f64) -> Result<LiveValue, FetchError> {
        self.0
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Err(FetchError::Status(500)))
    }
}

fn refresher(answers: Vec<Result<LiveValue, FetchError>>, clock: Arc<ManualClock>) -> Refresher {
    Refresher {
        name: "test",
        fetcher: Box::new(Script(Arc::new(Mutex::new(answers.into())))),
        state: Arc::new(Mutex::new(State::default())),
        cadence: Cadence {
            period: Duration::from_secs(300),
            first_retry: Duration::from_secs(1),
        },
        max_age: Duration::from_secs(3_600),
        clock,
    }
}

#[test]
fn live_then_last_good_then_static() {
    let clock = Arc::new(ManualClock::new(10_000.0));
    let mut r = refresher(
        vec![
            Ok(value(250.0, 9_990.0)),
            Err(FetchError::Status(500)),
            Err(FetchError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            }),
        ],
        Arc::clone(&clock),
    );
    let (stop, _) = mpsc::channel();
    let mut p = LiveProvider {
        name: "test",
        state: Arc::clone(&r.state),
        fallback: FixedIntensity::custom(480.0),
        max_age: r.max_age,
        mode: Mode::Starting,
        status: ProviderStatus {
            provider: "test",
            fetch_errors: 0,
            last_update_unix: None,
        },
        _stop: stop,
    };
    let before = p.intensity_at(10_000.0);
    assert_eq!((before.provider, before.fallback), ("static", true));
    assert_eq!(p.status().last_update_unix, None);

    let mut failures = 0;
    assert_eq!(r.attempt(&mut failures), Duration::from_secs(300));
    let live = p.intensity_at(10_000.0);
    assert_eq!(
        (live.provider, live.value.0, live.fallback),
        ("test", 250.0, false)
    );
    assert_eq!(p.status().last_update_unix, Some(9_990.0));

    assert_eq!(r.attempt(&mut failures), Duration::from_secs(1));
    assert_eq!(r.attempt(&mut failures), Duration::from_secs(30));
    let stale = p.intensity_at(10_100.0);
    assert_eq!(
        (stale.provider, stale.value.0, stale.fallback),
        ("test", 250.0, true)
    );
    assert_eq!(p.status().fetch_errors, 2);

    let old = p.intensity_at(9_990.0 + 3_601.0);
    assert_eq!(
        (old.provider, old.value.0, old.fallback),
        ("static", 480.0, true)
    );
    assert_eq!(old.zone, "custom");
    assert_eq!(p.status().last_update_unix, Some(9_990.0));
}

#[test]
fn future_dates_are_clamped_to_the_fetch_time() {
    let clock = Arc::new(ManualClock::new(5_000.0));
    let mut r = refresher(vec![Ok(value(100.0, 9_999.0))], clock);
    let mut failures = 0;
    r.attempt(&mut failures);
    let state = r.state.lock().expect("lock");
    assert_eq!(state.latest.as_ref().map(|v| v.at_unix), Some(5_000.0));
}

#[test]
fn the_thread_publishes_and_stops_when_the_provider_is_dropped() {
    let clock = Arc::new(ManualClock::new(1_000.0));
    let answers = Arc::new(Mutex::new(VecDeque::from([Ok(value(42.0, 1_000.0))])));
    let (mut p, first) = LiveProvider::spawn(
        "test",
        Box::new(Script(Arc::clone(&answers))),
        Cadence {
            period: Duration::from_millis(10),
            first_retry: Duration::from_millis(10),
        },
        Duration::from_secs(60),
        FixedIntensity::custom(1.0),
        clock,
    )
    .expect("spawn");
    first
        .recv_timeout(Duration::from_secs(5))
        .expect("first attempt");
    assert_eq!(p.intensity_at(1_000.0).value.0, 42.0);
    drop(p);
    // The thread owns the fetcher: once it has returned, only our handle is left.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&answers) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "refresh thread kept running"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
