//! The CSV form of a schedule. `#` starts a comment; blank lines are ignored; the first other
//! line is the header, which says which kind of schedule follows:
//!
//! ```text
//! from,grams_per_kwh            # timestamped: RFC 3339 time, value in force from then
//! 2024-05-01T00:00:00Z,210
//! 2024-05-01T06:00:00+02:00,145
//!
//! hour,grams_per_kwh            # daily profile: hour 0–23
//! 0,300
//! 8,150
//!
//! weekday,hour,grams_per_kwh    # weekly profile: mon … sun, hour 0–23
//! mon,0,320
//! sat,0,180
//! ```
//!
//! Rows must be in increasing order of time (of day or of week), without repeats.

use super::{check_hour, check_value, week_slot, Steps};
use crate::carbon::time::parse_rfc3339;

/// A 1-based line number and what is wrong there.
pub type LineError = (usize, String);

/// Parses the text of a CSV schedule.
pub fn parse(text: &str) -> Result<Steps, LineError> {
    let mut rows = text.lines().enumerate().filter_map(|(i, line)| {
        let content = line.split('#').next().unwrap_or("").trim();
        (!content.is_empty()).then_some((i + 1, content))
    });
    let (header_line, header) = rows
        .next()
        .ok_or((1, "no header line (expected from,grams_per_kwh; hour,grams_per_kwh; or weekday,hour,grams_per_kwh)".to_string()))?;
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    match columns.as_slice() {
        ["from", "grams_per_kwh"] => {
            let steps = collect(rows, 2, |f| Ok((parse_rfc3339(f[0]).map_err(|e| e.to_string())?, value(f[1])?)))?;
            Ok(Steps::Timestamped(steps))
        }
        ["hour", "grams_per_kwh"] => {
            let steps = collect(rows, 2, |f| Ok((check_hour(int(f[0])?)?, value(f[1])?)))?;
            Ok(Steps::Hourly(steps))
        }
        ["weekday", "hour", "grams_per_kwh"] => {
            let steps = collect(rows, 3, |f| Ok((week_slot(f[0], int(f[1])?)?, value(f[2])?)))?;
            Ok(Steps::Weekly(steps))
        }
        _ => Err((
            header_line,
            format!("unknown header {header:?} (expected from,grams_per_kwh; hour,grams_per_kwh; or weekday,hour,grams_per_kwh)"),
        )),
    }
}

/// Parses every row with `row`, checking the column count and the order of the keys.
fn collect<'a, K: PartialOrd + Copy>(
    rows: impl Iterator<Item = (usize, &'a str)>,
    width: usize,
    row: impl Fn(&[&str]) -> Result<(K, f64), String>,
) -> Result<Vec<(K, f64)>, LineError> {
    let mut out: Vec<(K, f64)> = Vec::new();
    let mut last_line = 0;
    for (line, text) in rows {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != width {
            return Err((
                line,
                format!("expected {width} columns, found {}", fields.len()),
            ));
        }
        let (key, value) = row(&fields).map_err(|e| (line, e))?;
        if let Some((previous, _)) = out.last() {
            if key <= *previous {
                return Err((
                    line,
                    format!("rows must be in increasing order of time without repeats (line {last_line} is not earlier)"),
                ));
            }
        }
        out.push((key, value));
        last_line = line;
    }
    if out.is_empty() {
        return Err((last_line.max(1), "no rows after the header".to_string()));
    }
    Ok(out)
}

fn value(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .parse()
        .map_err(|_| format!("grams_per_kwh {text:?} is not a number"))?;
    check_value(v)
}

fn int(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("hour {text:?} is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds() {
        let t = parse("# supplier data\nfrom,grams_per_kwh\n1970-01-01T00:01:40Z,210 # night\n\n1970-01-01T00:03:20Z,145\n")
            .expect("valid");
        assert_eq!(t, Steps::Timestamped(vec![(100.0, 210.0), (200.0, 145.0)]));
        let h = parse("Hour, grams_per_kwh\n0,300\n8,150.5\n").expect("valid");
        assert_eq!(h, Steps::Hourly(vec![(0, 300.0), (8, 150.5)]));
        let w = parse("weekday,hour,grams_per_kwh\nmon,0,320\nsat,6,180\n").expect("valid");
        assert_eq!(w, Steps::Weekly(vec![(0, 320.0), (126, 180.0)]));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("", 1, "no header"),
            ("when,value\n", 1, "unknown header"),
            ("hour,grams_per_kwh\n", 1, "no rows"),
            (
                "hour,grams_per_kwh\n0,100\n\n0,200\n",
                4,
                "increasing order",
            ),
            ("hour,grams_per_kwh\n3,100\n1,200\n", 3, "increasing order"),
            ("hour,grams_per_kwh\n24,100\n", 2, "outside 0 to 23"),
            ("hour,grams_per_kwh\n1.5,100\n", 2, "whole number"),
            ("hour,grams_per_kwh\n1,abc\n", 2, "not a number"),
            ("hour,grams_per_kwh\n1,-1\n", 2, "outside 0 to 2000"),
            ("hour,grams_per_kwh\n1,100,3\n", 2, "expected 2 columns"),
            (
                "from,grams_per_kwh\n# c\n2024-01-01,100\n",
                3,
                "invalid timestamp",
            ),
            (
                "weekday,hour,grams_per_kwh\nfunday,0,100\n",
                2,
                "unknown weekday",
            ),
        ];
        for (text, line, want) in cases {
            let (got_line, reason) = parse(text).expect_err(text);
            assert_eq!(got_line, line, "{text:?}: {reason}");
            assert!(reason.contains(want), "{text:?}: {reason}");
        }
    }
}
