//! `--web.config.file`: the Prometheus exporter-toolkit web configuration format (TLS, basic
//! auth, extra response headers, rate limit), parsed strictly — an unknown key is an error, as
//! with the toolkit's `yaml.UnmarshalStrict` — and checked by the toolkit's rules. Parsing does
//! no I/O, so it can be unit-tested and fuzzed; [`crate::webconfig::Security`] reads the files it
//! names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};

use raw::{RawFile, RawRateLimit, RawTls};

/// A web configuration file that can't be used: which file, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WebConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line the problem is on, where known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl WebConfigError {
    /// An error about the setting under the first of `keys` found in `text`, the content of
    /// `file` (for problems found after parsing, such as a certificate that won't load).
    pub fn at_keys(text: &str, file: &Path, keys: &[&str], reason: impl Into<String>) -> Self {
        Locator { text, file }.error_at_first(keys, reason)
    }
}

/// What the file asks for, checked; file names are resolved against the file's directory.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebConfig {
    /// TLS, if any TLS key is set.
    pub tls: Option<TlsSettings>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response (blank values left out).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Token bucket: one request per `interval`, bursts of `burst`.
    pub rate_limit: Option<RateLimit>,
}

impl fmt::Debug for WebConfig {
    // Hashes and inline keys stay out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// `tls_server_config`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Server certificate chain (PEM).
    pub cert: Pem,
    /// Its private key (PEM).
    pub key: Pem,
    /// CAs that client certificates are verified against (PEM).
    pub client_ca: Option<Pem>,
    /// Client certificate policy.
    pub client_auth: ClientAuth,
    /// Oldest protocol version accepted.
    pub min_version: TlsVersion,
    /// Newest protocol version accepted.
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites allowed, in Go's names; empty means the defaults.
    pub cipher_suites: Vec<String>,
    /// Key-exchange groups in preference order, in Go's names; empty means the defaults.
    pub curves: Vec<String>,
    /// Pick the cipher suite by the server's order rather than the client's.
    pub prefer_server_cipher_suites: bool,
}

/// PEM data: a file to read, or the text itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// A path, absolute or already joined to the config file's directory.
    File(PathBuf),
    /// Inline PEM text.
    Inline(String),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "File({})", p.display()),
            Pem::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

/// `client_auth_type`, with Go's `crypto/tls` meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Don't ask for a client certificate.
    NoClientCert,
    /// Ask, accept none, don't verify.
    RequestClientCert,
    /// Require one, don't verify it.
    RequireAnyClientCert,
    /// Accept none; verify one that is sent.
    VerifyClientCertIfGiven,
    /// Require one and verify it against the client CA: the mTLS setting.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// True for the policies that verify certificates against a CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// `min_version` / `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// `rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Time to earn one more request.
    pub interval: Duration,
    /// Requests allowed at once after a quiet time.
    pub burst: u32,
}

/// The headers the toolkit lets a file set, with the values it accepts (`None`: any).
/// Names are matched exactly, as the toolkit does, so every exporter reads the same files.
const HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// Largest web configuration file read; PEM inline included, real ones are a few kB.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses and checks the text of a web configuration file found at `file` (used for messages
/// and to resolve relative file names).
pub fn parse(text: &str, file: &Path) -> Result<WebConfig, WebConfigError> {
    let at = Locator { text, file };
    if text.len() > MAX_FILE_BYTES {
        return Err(at.error(None, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let raw: Option<RawFile> = serde_yaml_ng::from_str(text).map_err(|e| {
        let reason = strip_location(&e.to_string());
        let line = line_of_duplicate(text, &reason).or(e.location().map(|l| l.line()));
        at.error(line, reason)
    })?;
    // The toolkit reads an empty file (or one of comments) as "no TLS, no users". Here it is an
    // error: a file truncated by a failed deploy or an empty secret mount would otherwise turn
    // protection off without anyone asking for it.
    let Some(raw) = raw else {
        return Err(at.error(
            None,
            "the file is empty (or only comments); to serve plain HTTP without authentication, \
             run without --web.config.file",
        ));
    };
    let dir = file.parent().unwrap_or(Path::new(""));
    let tls = match raw.tls_server_config {
        Some(t) => tls(t, dir, &at)?,
        None => None,
    };
    let users = raw.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        if user.contains(':') {
            return Err(at.error_at(user, "a basic auth user name can't contain ':'"));
        }
        if let Err(e) = usable_bcrypt(hash) {
            return Err(at.error_at(user, format!("password of {user:?} {e}")));
        }
    }
    Ok(WebConfig {
        tls,
        users,
        headers: headers(raw.http_server_config.unwrap_or_default().headers, &at)?,
        rate_limit: raw
            .rate_limit
            .map(|r| rate_limit(r, &at))
            .transpose()?
            .flatten(),
    })
}

/// Cheapest and dearest bcrypt costs that verify, as Go's `crypto/bcrypt` (and so
/// `promtool check web-config`) accepts them.
pub const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Checks now what a login would otherwise find out at the first request: that `hash` is a
/// bcrypt hash whose cost is in [`BCRYPT_COSTS`] and that verification accepts it. The probe
/// runs the real verification on the same salt and digest at the cheapest cost (≈1 ms), so a
/// cost-31 hash is checked without spending hours on it.
fn usable_bcrypt(hash: &str) -> Result<(), String> {
    let parts = hash
        .parse::<bcrypt::HashParts>()
        .map_err(|e| format!("is not a bcrypt hash: {e}"))?;
    let cost = parts.get_cost();
    if !BCRYPT_COSTS.contains(&cost) {
        return Err(format!(
            "has bcrypt cost {cost}, outside the allowed range {}-{}",
            BCRYPT_COSTS.start(),
            BCRYPT_COSTS.end()
        ));
    }
    // A parsed hash is 60 ASCII bytes: "$2b$" (or 2a, 2x, 2y), two cost digits, "$", then salt
    // and digest.
    let (Some(version), Some(rest)) = (hash.get(..4), hash.get(6..)) else {
        return Err("is not a bcrypt hash".into());
    };
    bcrypt::verify("", &format!("{version}04{rest}"))
        .map(drop)
        .map_err(|e| format!("is a bcrypt hash that can't be verified: {e}"))
}

fn tls(t: RawTls, dir: &Path, at: &Locator) -> Result<Option<TlsSettings>, WebConfigError> {
    let enabled = [
        &t.cert,
        &t.key,
        &t.client_ca,
        &t.cert_file,
        &t.key_file,
        &t.client_ca_file,
        &t.client_auth_type,
    ]
    .iter()
    .any(|s| !s.is_empty());
    if !enabled {
        return Ok(None);
    }
    let pem = |inline: &str, file: &str, what: &str| -> Result<Option<Pem>, WebConfigError> {
        match (inline.is_empty(), file.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Ok(Some(Pem::Inline(inline.to_string()))),
            (true, false) => Ok(Some(Pem::File(dir.join(file)))),
            (false, false) => Err(at.error_at(
                &format!("{what}_file"),
                format!("give {what} or {what}_file, not both"),
            )),
        }
    };
    let section = "tls_server_config";
    let cert = pem(&t.cert, &t.cert_file, "cert")?
        .ok_or_else(|| at.error_at(section, "missing one of cert or cert_file"))?;
    let key = pem(&t.key, &t.key_file, "key")?
        .ok_or_else(|| at.error_at(section, "missing one of key or key_file"))?;
    let client_ca = pem(&t.client_ca, &t.client_ca_file, "client_ca")?;
    let client_auth = match t.client_auth_type.as_str() {
        "" | "NoClientCert" => ClientAuth::NoClientCert,
        "RequestClientCert" => ClientAuth::RequestClientCert,
        // "RequireClientCert" is the toolkit's old name.
        "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other => return Err(at.error_at("client_auth_type", format!("invalid client_auth_type {other:?}; one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"))),
    };
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(at.error_at_first(
            &["client_ca_file", "client_ca"],
            "a client CA is configured without a client_auth_type; use RequireAndVerifyClientCert for mTLS",
        ));
    }
    if client_ca.is_none() && client_auth.verifies() {
        return Err(at.error_at(
            "client_auth_type",
            "client_auth_type verifies client certificates but neither client_ca_file nor client_ca is set",
        ));
    }
    if t.client_allowed_sans.is_some() {
        return Err(at.error_at(
            "client_allowed_sans",
            "client_allowed_sans is not supported by this exporter; issue client certificates from a dedicated CA instead",
        ));
    }
    let min_version = version(
        t.min_version.as_deref(),
        "min_version",
        TlsVersion::Tls12,
        at,
    )?;
    let max_version = version(
        t.max_version.as_deref(),
        "max_version",
        TlsVersion::Tls13,
        at,
    )?;
    if min_version > max_version {
        return Err(at.error_at("min_version", "min_version is above max_version"));
    }
    Ok(Some(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min_version,
        max_version,
        cipher_suites: t.cipher_suites,
        curves: t.curve_preferences,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

fn version(
    text: Option<&str>,
    key: &str,
    default: TlsVersion,
    at: &Locator,
) -> Result<TlsVersion, WebConfigError> {
    match text {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => Err(at.error_at(
            key,
            format!("{v} is not supported (obsolete, RFC 8996); use TLS12 or TLS13"),
        )),
        Some(v) => Err(at.error_at(
            key,
            format!("unknown TLS version {v:?}; use TLS12 or TLS13"),
        )),
    }
}

fn headers(
    raw: BTreeMap<String, String>,
    at: &Locator,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut out = Vec::new();
    for (name, value) in raw {
        let Some((_, allowed)) = HEADERS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(at.error_at(
                &name,
                format!(
                    "HTTP header {name:?} can not be configured; allowed: {}",
                    names.join(", ")
                ),
            ));
        };
        if let Some(allowed) = allowed {
            if !allowed.contains(&value.as_str()) {
                return Err(at.error_at(
                    &name,
                    format!("invalid value {value:?} for {name}; expected one of {allowed:?}"),
                ));
            }
        }
        if value.is_empty() {
            continue;
        }
        let value = HeaderValue::from_str(&value).map_err(|_| {
            at.error_at(
                &name,
                format!("value of {name} is not a valid header value"),
            )
        })?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| at.error_at(&name, "not a valid header name"))?;
        out.push((name, value));
    }
    Ok(out)
}

fn rate_limit(r: RawRateLimit, at: &Locator) -> Result<Option<RateLimit>, WebConfigError> {
    let interval = match r.interval.as_deref() {
        None | Some("0") | Some("") => return Ok(None),
        Some(text) => crate::duration::parse(text)
            .map_err(|e| at.error_at("interval", format!("rate_limit interval: {e}")))?,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    if r.burst == 0 {
        return Err(at.error_at(
            "burst",
            "rate_limit burst must be at least 1 (0 would refuse every request)",
        ));
    }
    Ok(Some(RateLimit {
        interval,
        burst: r.burst,
    }))
}

mod locate;
mod raw;
#[cfg(test)]
mod tests;

pub use locate::yaml_lines;
use locate::{line_of_duplicate, strip_location, Locator};
