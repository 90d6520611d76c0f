//! Content negotiation for the telemetry path, as Prometheus' own client libraries do it:
//! OpenMetrics 1.0.0 when the client prefers it (Prometheus does by default), the classic text
//! format otherwise; gzip when the client accepts it.

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The classic text format, 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 (with `# UNIT`, `_created` and `# EOF`).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The format.
    pub format: Format,
    /// Whether to gzip the body.
    pub gzip: bool,
}

/// One media range of an `Accept` header with its quality.
struct Range<'a> {
    media: &'a str,
    version: Option<&'a str>,
    q: f32,
}

fn ranges(header: &str) -> impl Iterator<Item = Range<'_>> {
    header.split(',').filter_map(|part| {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().filter(|m| !m.is_empty())?;
        let mut range = Range {
            media,
            version: None,
            q: 1.0,
        };
        for p in params {
            let (k, v) = p.split_once('=')?;
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => range.q = v.parse().ok().filter(|q: &f32| (0.0..=1.0).contains(q))?,
                "version" => range.version = Some(v),
                _ => {}
            }
        }
        Some(range)
    })
}

/// The answer to a request's `Accept` and `Accept-Encoding` headers. OpenMetrics is chosen
/// only when the client names it (version 1.0.0, 0.0.1 or none) with a quality above zero and
/// at least that of the text format (`text/plain`, `text/*` or `*/*`); a bare `*/*` gets text.
pub fn negotiate(accept: Option<&str>, accept_encoding: Option<&str>) -> Negotiated {
    let mut om = 0.0f32;
    let mut text = 0.0f32;
    for r in accept.into_iter().flat_map(ranges) {
        let media = r.media.to_ascii_lowercase();
        match media.as_str() {
            "application/openmetrics-text"
                if matches!(r.version, None | Some("1.0.0") | Some("0.0.1")) =>
            {
                om = om.max(r.q)
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(r.q),
            _ => {}
        }
    }
    let format = if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    let gzip = accept_encoding
        .into_iter()
        .flat_map(ranges)
        .any(|r| r.media.eq_ignore_ascii_case("gzip") && r.q > 0.0);
    Negotiated { format, gzip }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2.x sends by default.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn prometheus_gets_openmetrics_and_curl_gets_text() {
        assert_eq!(
            negotiate(Some(PROMETHEUS), Some("gzip")),
            Negotiated {
                format: Format::OpenMetrics,
                gzip: true
            }
        );
        assert_eq!(negotiate(Some("*/*"), None).format, Format::Text);
        assert_eq!(negotiate(None, None).format, Format::Text);
        assert_eq!(
            negotiate(Some("text/plain;version=0.0.4"), None).format,
            Format::Text
        );
    }

    #[test]
    fn qualities_and_versions_decide() {
        let om = |a| negotiate(Some(a), None).format == Format::OpenMetrics;
        assert!(om("application/openmetrics-text"));
        assert!(!om("application/openmetrics-text;q=0"));
        assert!(!om("application/openmetrics-text;q=0.4, text/plain;q=0.5"));
        assert!(!om("application/openmetrics-text;version=2.0.0"));
        assert!(om(
            "Application/OpenMetrics-Text; version=\"1.0.0\"; q=0.9, */*;q=0.1"
        ));
        assert!(
            !om("application/openmetrics-text;q=banana"),
            "a bad q drops the range"
        );
    }

    #[test]
    fn gzip_only_when_accepted() {
        let gz = |e| negotiate(None, Some(e)).gzip;
        assert!(gz("gzip"));
        assert!(gz("deflate, gzip;q=0.8, br"));
        assert!(gz("GZIP"));
        assert!(!gz("gzip;q=0"));
        assert!(!gz("identity"));
        assert!(!gz("br"));
    }
}
