//! The JSON form of a schedule: an object with exactly one of these lists, in increasing order
//! of time without repeats.
//!
//! ```json
//! {"timestamped": [{"from": "2024-05-01T00:00:00Z", "grams_per_kwh": 210}]}
//! {"hourly": [{"hour": 0, "grams_per_kwh": 300}, {"hour": 8, "grams_per_kwh": 150}]}
//! {"weekly": [{"weekday": "mon", "hour": 0, "grams_per_kwh": 320}]}
//! ```
//!
//! Syntax and type errors carry serde_json's line; an entry that parses but can't be used is
//! reported at the line where that entry begins.

use serde::Deserialize;

use super::csv::LineError;
use super::{check_hour, check_value, week_slot, Steps};
use crate::carbon::time::parse_rfc3339;

/// Parses the text of a JSON schedule.
pub fn parse(text: &str) -> Result<Steps, LineError> {
    let file: File = serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let reason = message
            .strip_suffix(&suffix)
            .unwrap_or(&message)
            .to_string();
        (e.line().max(1), reason)
    })?;
    let at = |i: usize| entry_line(text, i);
    match (file.timestamped, file.hourly, file.weekly) {
        (Some(t), None, None) => ordered(&t, at, |e| {
            let time = parse_rfc3339(&e.from).map_err(|e| e.to_string())?;
            Ok((time, check_value(e.grams_per_kwh)?))
        })
        .map(Steps::Timestamped),
        (None, Some(h), None) => ordered(&h, at, |e| {
            Ok((check_hour(e.hour)?, check_value(e.grams_per_kwh)?))
        })
        .map(Steps::Hourly),
        (None, None, Some(w)) => ordered(&w, at, |e| {
            Ok((
                week_slot(&e.weekday, e.hour)?,
                check_value(e.grams_per_kwh)?,
            ))
        })
        .map(Steps::Weekly),
        _ => Err((
            1,
            "expected exactly one of \"timestamped\", \"hourly\" or \"weekly\"".to_string(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    timestamped: Option<Vec<Timestamped>>,
    hourly: Option<Vec<Hourly>>,
    weekly: Option<Vec<Weekly>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Timestamped {
    from: String,
    grams_per_kwh: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hourly {
    hour: i64,
    grams_per_kwh: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Weekly {
    weekday: String,
    hour: i64,
    grams_per_kwh: f64,
}

/// Checks every entry with `check` and that their keys increase; `line` locates entry `i`.
fn ordered<E, K: PartialOrd + Copy>(
    entries: &[E],
    line: impl Fn(usize) -> usize,
    check: impl Fn(&E) -> Result<(K, f64), String>,
) -> Result<Vec<(K, f64)>, LineError> {
    let mut out: Vec<(K, f64)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (key, value) = check(entry).map_err(|e| (line(i), e))?;
        if out.last().is_some_and(|(previous, _)| key <= *previous) {
            return Err((
                line(i),
                "entries must be in increasing order of time without repeats".to_string(),
            ));
        }
        out.push((key, value));
    }
    if out.is_empty() {
        return Err((line(0), "the list is empty".to_string()));
    }
    Ok(out)
}

/// Line (1-based) where the `index`-th entry object of the file's list begins: the
/// `index`-th `{` opened at nesting depth 2 (root object, then the list), outside strings.
fn entry_line(text: &str, index: usize) -> usize {
    let (mut depth, mut seen, mut line) = (0usize, 0usize, 1usize);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            '\n' => line += 1,
            _ if in_string => match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            },
            '"' => in_string = true,
            '{' | '[' => {
                if c == '{' && depth == 2 {
                    if seen == index {
                        return line;
                    }
                    seen += 1;
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds() {
        let t =
            parse(r#"{"timestamped": [{"from": "1970-01-01T00:01:40Z", "grams_per_kwh": 210}]}"#);
        assert_eq!(t, Ok(Steps::Timestamped(vec![(100.0, 210.0)])));
        let h = parse(
            r#"{"hourly": [{"hour": 0, "grams_per_kwh": 300}, {"hour": 8, "grams_per_kwh": 150}]}"#,
        );
        assert_eq!(h, Ok(Steps::Hourly(vec![(0, 300.0), (8, 150.0)])));
        let w = parse(r#"{"weekly": [{"weekday": "sun", "hour": 23, "grams_per_kwh": 1}]}"#);
        assert_eq!(w, Ok(Steps::Weekly(vec![(167, 1.0)])));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("{\n\"hourly\": [\n{\"hour\": 1, \"grams_per_kwh\": 100},\n{\"hour\": 1, \"grams_per_kwh\": 200}\n]}", 4, "increasing order"),
            ("{\"hourly\": [\n{\"hour\": 1,\n\"grams_per_kwh\": 9000}]}", 2, "outside 0 to 2000"),
            ("{\"timestamped\": [\n{\"from\": \"today\", \"grams_per_kwh\": 1}]}", 2, "invalid timestamp"),
            ("{\"hourly\": []}", 1, "empty"),
            ("{\"hourly\": [{\"hour\": 1, \"grams_per_kwh\": 1}],\n\"weekly\": [{\"weekday\": \"mon\", \"hour\": 1, \"grams_per_kwh\": 1}]}", 1, "exactly one"),
            ("{}", 1, "exactly one"),
            ("{\"daily\": []}", 1, "unknown field"),
            ("{\"hourly\": [{\"hour\": 1, \"grams_per_kwh\": \"x\"}]}", 1, "invalid type"),
            ("{\n\n\"hourly\": [", 3, "EOF"),
        ];
        for (text, line, want) in cases {
            let (got_line, reason) = parse(text).expect_err(text);
            assert_eq!(got_line, line, "{text:?}: {reason}");
            assert!(reason.contains(want), "{text:?}: {reason}");
            assert!(!reason.contains(" at line "), "{reason}");
        }
    }
}
