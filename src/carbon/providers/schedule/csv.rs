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
//!
//! Fields may be quoted as RFC 4180 says (`"2024-05-01T00:00:00Z","210"`, `""` for a quote
//! inside, commas and line breaks inside quotes), as spreadsheets write them; `#` inside quotes
//! is text. Lines may end in CRLF. (A UTF-8 byte order mark is removed before this parser sees
//! the text: see [`super::parse_text`].)

use super::{check_hour, check_value, week_slot, Steps};
use crate::carbon::time::parse_rfc3339;

/// A 1-based line number and what is wrong there.
pub type LineError = (usize, String);

/// Parses the text of a CSV schedule.
pub fn parse(text: &str) -> Result<Steps, LineError> {
    let mut rows = records(text)?.into_iter();
    let (header_line, header) = rows
        .next()
        .ok_or((1, "no header line (expected from,grams_per_kwh; hour,grams_per_kwh; or weekday,hour,grams_per_kwh)".to_string()))?;
    let columns: Vec<String> = header.iter().map(|c| c.to_ascii_lowercase()).collect();
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
            format!("unknown header {:?} (expected from,grams_per_kwh; hour,grams_per_kwh; or weekday,hour,grams_per_kwh)", header.join(",")),
        )),
    }
}

/// A record: the line it starts on and its fields, trimmed.
type Record = (usize, Vec<String>);

/// The records of `text` (RFC 4180: quoted fields may hold commas, quotes as `""`, and line
/// breaks); comments and blank lines left out.
fn records(text: &str) -> Result<Vec<Record>, LineError> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut line, mut start) = (1, 1);
    // Inside quotes; the current field was quoted; the rest of the line is a comment.
    let (mut quoted, mut was_quoted, mut comment) = (false, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '\n' => {
                fields.push(std::mem::take(&mut field).trim().to_string());
                let record = std::mem::take(&mut fields);
                if !(record.len() == 1 && record[0].is_empty()) {
                    out.push((start, record));
                }
                line += 1;
                (start, was_quoted, comment) = (line, false, false);
            }
            _ if comment => {}
            '#' => comment = true,
            '"' if !was_quoted && field.trim().is_empty() => {
                (quoted, was_quoted) = (true, true);
                field.clear();
            }
            '"' => {
                return Err((
                    line,
                    "a quote inside an unquoted field (quote the whole field and double the quote)"
                        .into(),
                ))
            }
            ',' => {
                fields.push(std::mem::take(&mut field).trim().to_string());
                was_quoted = false;
            }
            c if was_quoted && !c.is_whitespace() => {
                return Err((line, format!("{c:?} after a closing quote")))
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed".into()));
    }
    fields.push(field.trim().to_string());
    if !(fields.len() == 1 && fields[0].is_empty()) {
        out.push((start, fields));
    }
    Ok(out)
}

/// Parses every row with `row`, checking the column count and the order of the keys.
fn collect<K: PartialOrd + Copy>(
    rows: impl Iterator<Item = Record>,
    width: usize,
    row: impl Fn(&[&str]) -> Result<(K, f64), String>,
) -> Result<Vec<(K, f64)>, LineError> {
    let mut out: Vec<(K, f64)> = Vec::new();
    let mut last_line = 0;
    for (line, record) in rows {
        let fields: Vec<&str> = record.iter().map(String::as_str).collect();
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

    /// Spreadsheets quote fields (all of them, or those with commas) and end lines in CRLF.
    #[test]
    fn rfc4180_quoted_fields_and_crlf() {
        let t = parse("\"from\",\"grams_per_kwh\"\r\n\"1970-01-01T00:01:40Z\",\"210\"\r\n\"1970-01-01T00:03:20Z\", 145 \r\n")
            .expect("valid");
        assert_eq!(t, Steps::Timestamped(vec![(100.0, 210.0), (200.0, 145.0)]));
        // A quoted header with a comma-free name, a # and a line break inside quotes.
        let h = parse("hour,\"grams_per_kwh\"\n\"0\",\"300\" # night\n\"8\",150\n").expect("valid");
        assert_eq!(h, Steps::Hourly(vec![(0, 300.0), (8, 150.0)]));
        let records = records("a,\"b, \"\"c\"\" # not a comment\nd\",e\nf,g\n").expect("valid");
        assert_eq!(
            records,
            [
                (
                    1,
                    vec![
                        "a".to_string(),
                        "b, \"c\" # not a comment\nd".into(),
                        "e".into()
                    ]
                ),
                (3, vec!["f".to_string(), "g".into()]),
            ]
        );
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
            ("hour,grams_per_kwh\n1,\"100\n", 2, "not closed"),
            (
                "hour,grams_per_kwh\n1,10\"0\n",
                2,
                "quote inside an unquoted",
            ),
            (
                "hour,grams_per_kwh\n1,\"100\"x\n",
                2,
                "after a closing quote",
            ),
        ];
        for (text, line, want) in cases {
            let (got_line, reason) = parse(text).expect_err(text);
            assert_eq!(got_line, line, "{text:?}: {reason}");
            assert!(reason.contains(want), "{text:?}: {reason}");
        }
    }
}
