//! Timestamps as the carbon APIs and schedule files write them (RFC 3339 and the shorter
//! ISO 8601 forms they use, e.g. `2018-01-20T12:00Z`), turned into Unix seconds; and the
//! calendar facts schedule profiles need. Pure functions: no clock, no time-zone database.

/// Seconds in an hour and a day.
pub const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// A timestamp that is not in the accepted form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid timestamp {text:?}: {reason} (expected RFC 3339, e.g. 2024-05-01T12:00:00Z)")]
pub struct TimeError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses `YYYY-MM-DD(T| )HH:MM[:SS[.fraction]](Z|±HH:MM|±HHMM)` into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<f64, TimeError> {
    let fail = |reason| TimeError {
        text: text.to_string(),
        reason,
    };
    let b = text.trim().as_bytes();
    if b.len() < 16 {
        return Err(fail("too short"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, TimeError> {
        let part = b.get(range).ok_or_else(|| fail("too short"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(fail("expected digits"));
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return Err(fail("expected YYYY-MM-DDTHH:MM"));
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let mut rest = &b[16..];
    let mut second = 0.0;
    if let Some(after) = rest.strip_prefix(b":") {
        let end = after
            .iter()
            .position(|c| !(c.is_ascii_digit() || *c == b'.'))
            .unwrap_or(after.len());
        let s = std::str::from_utf8(&after[..end]).map_err(|_| fail("bad seconds"))?;
        if s.len() < 2 || !s.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
            return Err(fail("bad seconds"));
        }
        second = s.parse::<f64>().map_err(|_| fail("bad seconds"))?;
        rest = &after[end..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(fail("bad UTC offset"));
            }
            let d = |i: usize| i64::from(digits[i] - b'0');
            let minutes = (d(0) * 10 + d(1)) * 60 + d(2) * 10 + d(3);
            if minutes >= 24 * 60 {
                return Err(fail("bad UTC offset"));
            }
            if *sign == b'-' {
                -minutes * 60
            } else {
                minutes * 60
            }
        }
        [] => return Err(fail("missing UTC offset (add Z for UTC)")),
        _ => return Err(fail("bad UTC offset")),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(fail("no such date"));
    }
    if hour > 23 || minute > 59 || !(0.0..61.0).contains(&second) {
        return Err(fail("no such time"));
    }
    let days = days_from_civil(year, month, day);
    Ok((days * DAY + hour * HOUR + minute * 60 - offset) as f64 + second)
}

/// Parses a UTC offset `±HH:MM` (or `Z`) into seconds east of UTC.
pub fn parse_offset(text: &str) -> Result<i64, TimeError> {
    parse_rfc3339(&format!("1970-01-01T00:00:00{}", text.trim())).map(|t| -(t as i64))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Hours since the Unix epoch, on a clock `offset` seconds east of UTC (floor).
pub fn hours_since_epoch(unix: f64, offset: i64) -> i64 {
    ((unix + offset as f64) / HOUR as f64).floor() as i64
}

/// Hour of the week (0 = Monday 00:00–01:00 … 167 = Sunday 23:00) of an hour since the epoch.
/// 1970-01-01 was a Thursday, 72 hours into its week.
pub fn hour_of_week(hours_since_epoch: i64) -> i64 {
    (hours_since_epoch + 72).rem_euclid(168)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_the_apis_use() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0.0));
        // Electricity Maps, with milliseconds.
        assert_eq!(
            parse_rfc3339("2019-05-21T00:00:00.000Z"),
            Ok(1_558_396_800.0)
        );
        // UK Carbon Intensity API: no seconds.
        assert_eq!(parse_rfc3339("2018-01-20T12:00Z"), Ok(1_516_449_600.0));
        // WattTime: numeric offset.
        assert_eq!(
            parse_rfc3339("2024-02-29T23:30:00+00:00"),
            Ok(1_709_249_400.0)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T01:30:00+02:00"),
            Ok(1_709_249_400.0)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29 21:30:00-0200"),
            Ok(1_709_249_400.0)
        );
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.5Z"), Ok(1_704_067_200.5));
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01T00:00",
            "2024-13-01T00:00Z",
            "2023-02-29T00:00Z",
            "2024-01-01T24:00Z",
            "2024-01-01T00:00:0Z",
            "2024-01-01T00:00:00+2400",
            "2024-01-01T00:00:00 UTC",
            "２０24-01-01T00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offsets_and_calendar() {
        assert_eq!(parse_offset("+01:00"), Ok(3_600));
        assert_eq!(parse_offset("-05:30"), Ok(-19_800));
        assert_eq!(parse_offset("Z"), Ok(0));
        assert!(parse_offset("1").is_err());
        // 2024-01-01 was a Monday.
        let monday = parse_rfc3339("2024-01-01T00:00:00Z").expect("valid");
        assert_eq!(hour_of_week(hours_since_epoch(monday, 0)), 0);
        assert_eq!(hour_of_week(hours_since_epoch(monday - 1.0, 0)), 167);
        assert_eq!(hour_of_week(hours_since_epoch(monday, 3_600)), 1);
        assert_eq!(hours_since_epoch(-1.0, 0), -1);
    }
}
