//! Pointing errors at the right line of a web configuration file: the YAML parser's own
//! positions, and for rule violations the line of the offending key, counted the way YAML
//! counts lines.

use std::path::Path;

use super::WebConfigError;

/// Builds errors that point into the file.
pub(super) struct Locator<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
}

impl Locator<'_> {
    pub(super) fn error(&self, line: Option<usize>, reason: impl Into<String>) -> WebConfigError {
        WebConfigError {
            file: self.file.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }

    /// An error on the first line that holds `key` as a mapping key. The YAML parser gives
    /// positions only for syntax and type errors; this finds the line for rule violations.
    pub(super) fn error_at(&self, key: &str, reason: impl Into<String>) -> WebConfigError {
        self.error_at_first(&[key], reason)
    }

    /// An error on the line of the first of `keys` found.
    pub(super) fn error_at_first(
        &self,
        keys: &[&str],
        reason: impl Into<String>,
    ) -> WebConfigError {
        let line = keys.iter().find_map(|k| line_of_key(self.text, k));
        self.error(line, reason)
    }
}

/// 1-based line of the first `key:` (bare or quoted) in `text`.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    lines_of_key(text, key).next()
}

/// 1-based lines of every `key:` (bare or quoted) in `text`.
fn lines_of_key<'a>(text: &'a str, key: &str) -> impl Iterator<Item = usize> + 'a {
    let forms = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ];
    yaml_lines(text)
        .enumerate()
        .filter(move |(_, l)| {
            let l = l.trim_start().trim_start_matches("- ");
            forms.iter().any(|f| l.starts_with(f.as_str()))
        })
        .map(|(i, _)| i + 1)
}

/// For serde's "duplicate field `k`" and our "duplicate key \"k\"", the line of the second
/// `k:`, the one to delete; the parser itself points at the start of the enclosing mapping.
pub(super) fn line_of_duplicate(text: &str, message: &str) -> Option<usize> {
    let after = |marker: &str| message.find(marker).map(|i| &message[i + marker.len()..]);
    let key = after("duplicate field `")
        .and_then(|m| m.split_once('`'))
        .or_else(|| after("duplicate key \"").and_then(|m| m.split_once('"')))?
        .0;
    lines_of_key(text, key).nth(1)
}

/// The lines of `text` as YAML (and so the parser's line numbers) count them: a line ends at
/// LF, CR LF, a lone CR, NEL, LS or PS. `str::lines` knows only LF and CR LF, which put lines of
/// old Mac-style files out of step with the parser's (found by fuzzing).
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            None => {
                rest = None;
                (!current.is_empty()).then_some(current)
            }
            Some(i) => {
                let line = &current[..i];
                let tail = &current[i..];
                let skip = if tail.starts_with("\r\n") {
                    2
                } else {
                    tail.chars().next().map_or(1, char::len_utf8)
                };
                rest = Some(&tail[skip..]);
                Some(line)
            }
        }
    })
}

/// serde_yaml_ng appends " at line L column C" to its messages; the line is reported apart.
pub(super) fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
