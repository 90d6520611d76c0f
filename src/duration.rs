//! Prometheus duration syntax (`200ms`, `1s`, `1m30s`, `1h`), as flags in the ecosystem take it.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing given.
    #[error("empty duration")]
    Empty,
    /// A term without a number.
    #[error("not a duration: {0:?} (e.g. 200ms, 1s, 1m30s)")]
    NotADuration(String),
    /// A unit that is unknown, repeated or out of order.
    #[error("bad or out-of-order unit {unit:?} in {text:?}")]
    Unit {
        /// The unit.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// More than fits in 64-bit milliseconds.
    #[error("duration too large: {0:?}")]
    TooLarge(String),
}

/// Parses a Prometheus-style duration: one or more `<integer><unit>` terms, units `ms`, `s`,
/// `m`, `h`, `d`, `w`, `y`, largest first, each at most once. `0` alone is zero.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NotADuration(text.to_string()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::TooLarge(text.to_string()))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let pos = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| DurationError::Unit {
                unit: unit.to_string(),
                text: text.to_string(),
            })?;
        let (_, ms) = UNITS[next_unit + pos];
        next_unit += pos + 1;
        total_ms = number
            .checked_mul(ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| DurationError::TooLarge(text.to_string()))?;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prometheus_forms() {
        assert_eq!(parse("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "1", "s", "1.5s", "1x", "1s1m", "1s1s", "-1s", "1 s"] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
