//! A local schedule of intensities, for sites with their own supplier data or a contract
//! (market-based accounting): either timestamped values with step semantics (each value is in
//! force from its time until the next one; the last stays in force), or a profile repeated
//! every day (`hour`) or every week (`weekday`, `hour`), each entry in force from its hour
//! until the next listed one, wrapping around. Profiles are in UTC unless
//! `--carbon.schedule.utc-offset` says otherwise (a fixed offset: no daylight saving).
//!
//! The file is CSV ([`csv`]) or JSON ([`json`]), read once at start-up; errors name the file
//! and the line, and stop the exporter with exit code 2.

pub mod csv;
pub mod json;

use std::path::Path;

use crate::carbon::time::{hour_of_week, hours_since_epoch, HOUR};
use crate::carbon::{
    FixedIntensity, Intensity, IntensityProvider, ProviderStatus, Scope, Signal, MAX_GRAMS_PER_KWH,
};
use crate::units::GramsPerKwh;

/// The entries of a schedule, in strictly increasing order of their key.
#[derive(Debug, Clone, PartialEq)]
pub enum Steps {
    /// `(unix seconds, g/kWh)`.
    Timestamped(Vec<(f64, f64)>),
    /// `(hour of the day 0–23, g/kWh)`.
    Hourly(Vec<(i64, f64)>),
    /// `(hour of the week 0–167, Monday 00:00 = 0, g/kWh)`.
    Weekly(Vec<(i64, f64)>),
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The entries.
    pub steps: Steps,
    /// Seconds east of UTC of the clock profiles are written in.
    pub utc_offset: i64,
    /// The file's name, for `gpu_carbon_intensity_info{source}`.
    pub name: String,
}

/// Why a schedule file can't be used.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The content is wrong at `line`.
    #[error("{file} line {line}: {reason}")]
    Parse {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The steps of a schedule file's text: JSON if its first non-blank character is `{`, else
/// CSV. A UTF-8 byte order mark (Excel's "CSV UTF-8", some JSON editors) is not content.
pub fn parse_text(text: &str) -> Result<Steps, csv::LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        json::parse(text)
    } else {
        csv::parse(text)
    }
}

impl Schedule {
    /// Reads and checks `path` (see [`parse_text`]).
    pub fn load(path: &Path, utc_offset: i64) -> Result<Schedule, ScheduleError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Read {
            file: file.clone(),
            source,
        })?;
        let steps = parse_text(&text).map_err(|(line, reason)| ScheduleError::Parse {
            file: file.clone(),
            line,
            reason,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(file);
        Ok(Schedule {
            steps,
            utc_offset,
            name,
        })
    }

    /// The value in force at `unix` and the time its step began; `None` before the first
    /// timestamp.
    pub fn value_at(&self, unix: f64) -> Option<(f64, f64)> {
        let profile = |steps: &[(i64, f64)], slot: i64, slots: i64, hour: i64| {
            let i = steps.partition_point(|(k, _)| *k <= slot);
            let (key, value) = if i == 0 {
                steps.last()
            } else {
                steps.get(i - 1)
            }
            .copied()?;
            let back = (slot - key).rem_euclid(slots);
            Some((value, ((hour - back) * HOUR - self.utc_offset) as f64))
        };
        match &self.steps {
            Steps::Timestamped(steps) => {
                let i = steps.partition_point(|(t, _)| *t <= unix);
                i.checked_sub(1)
                    .and_then(|i| steps.get(i))
                    .map(|(t, v)| (*v, *t))
            }
            Steps::Hourly(steps) => {
                let hour = hours_since_epoch(unix, self.utc_offset);
                profile(steps, hour.rem_euclid(24), 24, hour)
            }
            Steps::Weekly(steps) => {
                let hour = hours_since_epoch(unix, self.utc_offset);
                profile(steps, hour_of_week(hour), 168, hour)
            }
        }
    }
}

/// Checks one value; the error text is shared by both formats.
pub(crate) fn check_value(grams_per_kwh: f64) -> Result<f64, String> {
    if grams_per_kwh.is_finite() && (0.0..=MAX_GRAMS_PER_KWH).contains(&grams_per_kwh) {
        Ok(grams_per_kwh)
    } else {
        Err(format!(
            "grams_per_kwh {grams_per_kwh} is outside 0 to {MAX_GRAMS_PER_KWH}"
        ))
    }
}

/// Hour of the week of a weekday name (`mon`, `Monday`, …) and an hour.
pub(crate) fn week_slot(weekday: &str, hour: i64) -> Result<i64, String> {
    const DAYS: [(&str, &str); 7] = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    let lower = weekday.trim().to_ascii_lowercase();
    let day = DAYS
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| format!("unknown weekday {weekday:?} (use mon, tue, … sun)"))?;
    Ok(day as i64 * 24 + check_hour(hour)?)
}

/// Checks an hour of the day.
pub(crate) fn check_hour(hour: i64) -> Result<i64, String> {
    if (0..24).contains(&hour) {
        Ok(hour)
    } else {
        Err(format!("hour {hour} is outside 0 to 23"))
    }
}

/// The intensity provider over a schedule.
pub struct ScheduleProvider {
    schedule: Schedule,
    fallback: FixedIntensity,
    signal: Signal,
    scope: Scope,
    last_update: Option<f64>,
}

impl ScheduleProvider {
    /// Values from `schedule`, labelled `signal`/`scope`; `fallback` before its first entry.
    pub fn new(
        schedule: Schedule,
        fallback: FixedIntensity,
        signal: Signal,
        scope: Scope,
    ) -> ScheduleProvider {
        ScheduleProvider {
            schedule,
            fallback,
            signal,
            scope,
            last_update: None,
        }
    }
}

impl IntensityProvider for ScheduleProvider {
    fn intensity_at(&mut self, unix: f64) -> Intensity {
        match self.schedule.value_at(unix) {
            Some((value, since)) => {
                self.last_update = Some(since);
                Intensity {
                    value: GramsPerKwh(value),
                    zone: "custom".into(),
                    provider: "schedule",
                    signal: self.signal,
                    scope: self.scope,
                    source: self.schedule.name.clone(),
                    fallback: false,
                }
            }
            None => {
                let mut i = self.fallback.intensity_at(unix);
                i.fallback = true;
                i
            }
        }
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            provider: "schedule",
            fetch_errors: 0,
            last_update_unix: self.last_update,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::time::parse_rfc3339;

    fn at(text: &str) -> f64 {
        parse_rfc3339(text).expect("valid")
    }

    fn schedule(steps: Steps, utc_offset: i64) -> Schedule {
        Schedule {
            steps,
            utc_offset,
            name: "s.csv".into(),
        }
    }

    /// Excel's "CSV UTF-8" starts with a byte order mark; so do files from some JSON editors.
    #[test]
    fn a_byte_order_mark_is_not_content() {
        let csv = parse_text("\u{feff}hour,grams_per_kwh\r\n0,300\r\n").expect("CSV");
        assert_eq!(csv, Steps::Hourly(vec![(0, 300.0)]));
        let json = parse_text("\u{feff}{\"hourly\": [{\"hour\": 0, \"grams_per_kwh\": 300}]}")
            .expect("JSON");
        assert_eq!(json, Steps::Hourly(vec![(0, 300.0)]));
    }

    #[test]
    fn timestamped_steps() {
        let s = schedule(Steps::Timestamped(vec![(100.0, 1.0), (200.0, 2.0)]), 0);
        assert_eq!(s.value_at(99.9), None);
        assert_eq!(s.value_at(100.0), Some((1.0, 100.0)));
        assert_eq!(s.value_at(199.9), Some((1.0, 100.0)));
        assert_eq!(s.value_at(200.0), Some((2.0, 200.0)));
        assert_eq!(s.value_at(1e12), Some((2.0, 200.0)));
    }

    #[test]
    fn hourly_profile_wraps_around_midnight() {
        let s = schedule(Steps::Hourly(vec![(6, 100.0), (18, 300.0)]), 0);
        let day = at("2024-01-01T00:00:00Z");
        assert_eq!(
            s.value_at(day + 5.0 * 3600.0),
            Some((300.0, day - 6.0 * 3600.0))
        );
        assert_eq!(
            s.value_at(day + 6.0 * 3600.0),
            Some((100.0, day + 6.0 * 3600.0))
        );
        assert_eq!(
            s.value_at(day + 23.5 * 3600.0),
            Some((300.0, day + 18.0 * 3600.0))
        );
        // At UTC+1, 06:00 local is 05:00 UTC.
        let plus_one = schedule(Steps::Hourly(vec![(6, 100.0), (18, 300.0)]), 3_600);
        assert_eq!(
            plus_one.value_at(day + 5.0 * 3600.0),
            Some((100.0, day + 5.0 * 3600.0))
        );
    }

    #[test]
    fn weekly_profile() {
        let weekend = week_slot("sat", 0).expect("valid");
        let s = schedule(Steps::Weekly(vec![(0, 400.0), (weekend, 150.0)]), 0);
        let monday = at("2024-01-01T00:00:00Z");
        assert_eq!(s.value_at(monday + 3_600.0), Some((400.0, monday)));
        let saturday = monday + 5.0 * 86_400.0;
        assert_eq!(s.value_at(saturday + 10.0), Some((150.0, saturday)));
        assert_eq!(
            s.value_at(monday - 1.0),
            Some((150.0, saturday - 7.0 * 86_400.0))
        );
    }

    #[test]
    fn weekdays_and_hours() {
        assert_eq!(week_slot("Mon", 0), Ok(0));
        assert_eq!(week_slot("sunday", 23), Ok(167));
        assert_eq!(week_slot("TUE", 1), Ok(25));
        assert!(week_slot("mo", 0).is_err());
        assert!(week_slot("mondays", 0).is_err());
        assert!(week_slot("mon", 24).is_err());
        assert!(check_value(-1.0).is_err() && check_value(f64::NAN).is_err());
    }

    #[test]
    fn provider_falls_back_before_the_first_entry() {
        let s = schedule(Steps::Timestamped(vec![(100.0, 250.0)]), 0);
        let mut p = ScheduleProvider::new(
            s,
            FixedIntensity::custom(480.0),
            Signal::Average,
            Scope::Lifecycle,
        );
        let before = p.intensity_at(50.0);
        assert_eq!(
            (before.provider, before.value.0, before.fallback),
            ("static", 480.0, true)
        );
        let after = p.intensity_at(150.0);
        assert_eq!(
            (after.provider, after.value.0, after.fallback),
            ("schedule", 250.0, false)
        );
        assert_eq!(after.source, "s.csv");
        assert_eq!(p.status().last_update_unix, Some(100.0));
    }
}
