//! The blocking HTTP client the live providers use, on their own refresh threads (never on the
//! sampler or the async workers): `ureq` with rustls and the webpki root certificates, one
//! overall deadline per request (connect, headers and body together, so a server that trickles
//! its body can't hold a refresh), a cap on the body size, no redirects (a redirect could carry
//! a credential header to another host), and typed errors that never contain a credential.

use std::time::Duration;

use super::MAX_GRAMS_PER_KWH;

/// Largest response body read, in bytes; the APIs' answers are a few kB.
const MAX_BODY: u64 = 1 << 20;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// Why a fetch failed. None of the messages contains a credential or a response body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// 401 or 403: the credentials were rejected (or a token expired).
    #[error("HTTP {0}: credentials rejected")]
    Unauthorized(u16),
    /// 429: too many requests.
    #[error("HTTP 429: rate limited{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// What the server asked for in `Retry-After` (seconds form), capped at one hour.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The request did not complete within `--carbon.http-timeout`.
    #[error("timed out")]
    Timeout,
    /// Connection, TLS or protocol failure.
    #[error("request failed: {0}")]
    Transport(String),
    /// The body is not what the API documents.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The value is negative, above [`MAX_GRAMS_PER_KWH`] g/kWh, or not a number.
    #[error("value out of range: {0}")]
    OutOfRange(f64),
    /// The response holds no value for now.
    #[error("no value in the response: {0}")]
    NoData(&'static str),
}

impl FetchError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// A client with one deadline per request.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("gpu-carbon-exporter/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: config.into(),
        }
    }

    /// GETs `url` with `headers`, returning the body of a 2xx answer.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<String, FetchError> {
        let mut request = self.agent.get(url).header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.call().map_err(transport)?;
        let status = response.status().as_u16();
        match status {
            200..=299 => response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_string()
                .map_err(transport),
            401 | 403 => Err(FetchError::Unauthorized(status)),
            429 => Err(FetchError::RateLimited {
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            }),
            _ => Err(FetchError::Status(status)),
        }
    }
}

fn transport(err: ureq::Error) -> FetchError {
    match err {
        ureq::Error::Timeout(_) => FetchError::Timeout,
        ureq::Error::BodyExceedsLimit(_) => {
            FetchError::Malformed(format!("body larger than {MAX_BODY} bytes"))
        }
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => FetchError::Timeout,
        other => FetchError::Transport(other.to_string()),
    }
}

/// `Retry-After` in its delay-seconds form; the HTTP-date form is ignored (backoff applies).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Checks that a provider's value is a usable intensity, in g/kWh.
pub fn in_range(grams_per_kwh: f64) -> Result<f64, FetchError> {
    if grams_per_kwh.is_finite() && (0.0..=MAX_GRAMS_PER_KWH).contains(&grams_per_kwh) {
        Ok(grams_per_kwh)
    } else {
        Err(FetchError::OutOfRange(grams_per_kwh))
    }
}

/// Parses a JSON body into `T`, as a [`FetchError::Malformed`] on failure.
pub fn json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, FetchError> {
    serde_json::from_str(body).map_err(|e| FetchError::Malformed(e.to_string()))
}

/// Keeps only the characters an API identifier (zone, region, postcode) may hold, so that no
/// user input can change a URL's path or query.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True when credentials sent to `url` would cross the network unencrypted: plain `http://`
/// to a host other than this machine (`localhost`, `127.0.0.0/8`, `::1`). A local proxy or a
/// test double on loopback is fine.
pub fn exposes_credentials(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_credentials_only_beyond_loopback() {
        for url in [
            "http://api.electricitymap.org/v3",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]:80/v3",
            "http://user@proxy.example",
        ] {
            assert!(exposes_credentials(url), "{url}");
        }
        for url in [
            "https://api.electricitymap.org/v3",
            "http://127.0.0.1:3456/v3",
            "http://127.5.0.1",
            "http://localhost:8080",
            "http://[::1]:9/v3",
        ] {
            assert!(!exposes_credentials(url), "{url}");
        }
    }

    #[test]
    fn retry_after_seconds_only_and_capped() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(" 7200 "), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn range_and_identifiers() {
        assert_eq!(in_range(0.0), Ok(0.0));
        assert_eq!(in_range(MAX_GRAMS_PER_KWH), Ok(MAX_GRAMS_PER_KWH));
        for bad in [-0.5, MAX_GRAMS_PER_KWH + 0.5, f64::NAN, f64::INFINITY] {
            assert!(in_range(bad).is_err(), "{bad}");
        }
        assert!(is_identifier("US-CAL-CISO") && is_identifier("CAISO_NORTH"));
        for bad in ["", "DE&x=1", "a/b", "a b", "é"] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    /// The rustls client (ring provider, webpki roots) builds and fails cleanly on a server
    /// that doesn't speak TLS; a deadline cuts a server that never answers.
    #[test]
    fn tls_and_timeouts_fail_as_errors_not_panics() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let Ok(mut stream) = stream else { continue };
                if i == 0 {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
                } else {
                    std::thread::sleep(Duration::from_millis(800));
                }
            }
        });
        let http = Http::new(Duration::from_millis(300));
        let tls = http.get(&format!("https://{addr}/"), &[]);
        assert!(matches!(tls, Err(FetchError::Transport(_))), "{tls:?}");
        let silent = http.get(&format!("http://{addr}/"), &[]);
        assert_eq!(silent, Err(FetchError::Timeout));
    }

    #[test]
    fn errors_say_what_happened() {
        let e = FetchError::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(e.to_string(), "HTTP 429: rate limited, retry after 5s");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(FetchError::Status(500).retry_after(), None);
    }
}
