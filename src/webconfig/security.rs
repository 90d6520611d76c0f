//! What the server enforces, built from one load of `--web.config.file` (TLS acceptor, users,
//! headers, rate limit), and the [`Guard`] that holds the one in force and screens requests.
//! A reload builds a new [`Security`] and swaps it in whole; connections already open keep the
//! TLS session they negotiated, every new request sees the new users and headers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use hyper::header::{HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use tokio_rustls::TlsAcceptor;

use super::auth::{Checker, Users, Verdict};
use super::file::{self, Pem, WebConfig, WebConfigError};
use super::protection::Protection;
use super::ratelimit::Bucket;
use super::tls::{self, PemData};

/// An answer the guard gives instead of the route's (`429`, `401`, `503`); the same type as
/// the server's own answers, written out here so this module needs nothing from the server.
type Refusal = crate::reply::Reply;

/// One loaded web configuration, ready to enforce.
pub struct Security {
    /// TLS handshakes, if TLS is configured.
    pub tls: Option<TlsAcceptor>,
    users: Option<Arc<Users>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    limiter: Option<Bucket>,
    protection: Protection,
    summary: String,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl Security {
    /// Plain HTTP, no authentication: no `--web.config.file`.
    pub fn open() -> Security {
        Security {
            tls: None,
            users: None,
            headers: Vec::new(),
            limiter: None,
            protection: Protection::OPEN,
            summary: "tls=false basic_auth_users=0".into(),
        }
    }

    /// Reads and checks the web configuration file at `path` and every file it names, and
    /// builds what it asks for. Blocking (file I/O, a cost-4 bcrypt probe per user): call it
    /// off the async workers. Also returns the files read, whose changes should trigger a
    /// reload.
    pub fn load(path: &Path) -> (Result<Security, WebConfigError>, Vec<PathBuf>) {
        let mut watched = vec![path.to_path_buf()];
        let result = Self::load_watching(path, &mut watched);
        (result, watched)
    }

    fn load_watching(path: &Path, watched: &mut Vec<PathBuf>) -> Result<Security, WebConfigError> {
        let text = read_limited(path).map_err(|reason| WebConfigError {
            file: path.to_path_buf(),
            line: None,
            reason,
        })?;
        let config = file::parse(&text, path)?;
        let tls = match &config.tls {
            None => None,
            Some(settings) => {
                let at = |keys: &[&str], reason: String| {
                    WebConfigError::at_keys(&text, path, keys, reason)
                };
                let mut read = |pem: &Pem, keys: &[&str]| match pem {
                    Pem::Inline(text) => Ok(text.clone().into_bytes()),
                    Pem::File(file) => {
                        watched.push(file.clone());
                        read_limited(file)
                            .map(String::into_bytes)
                            .map_err(|r| at(keys, r))
                    }
                };
                let pem = PemData {
                    cert: read(&settings.cert, &["cert_file", "cert"])?,
                    key: read(&settings.key, &["key_file", "key"])?,
                    client_ca: match &settings.client_ca {
                        Some(ca) => Some(read(ca, &["client_ca_file", "client_ca"])?),
                        None => None,
                    },
                };
                let server =
                    tls::server_config(settings, &pem).map_err(|e| at(e.keys(), e.to_string()))?;
                Some(TlsAcceptor::from(server))
            }
        };
        Ok(Security::from_parts(&config, tls))
    }

    fn from_parts(config: &WebConfig, tls: Option<TlsAcceptor>) -> Security {
        let summary = format!(
            "tls={} client_auth={} basic_auth_users={} headers={} rate_limit={}",
            tls.is_some(),
            config
                .tls
                .as_ref()
                .map_or("none".to_string(), |t| format!("{:?}", t.client_auth)),
            config.users.len(),
            config.headers.len(),
            config.rate_limit.is_some(),
        );
        Security {
            tls,
            users: Users::new(&config.users).map(Arc::new),
            headers: config.headers.clone(),
            limiter: config.rate_limit.map(|l| Bucket::new(l, Instant::now())),
            protection: Protection::of(config),
            summary,
        }
    }

    /// What this configuration protects the endpoint with (a reload may not lower it).
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// A one-line description for logs (no secrets).
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Adds the configured headers to a response.
    pub fn add_headers<B>(&self, reply: &mut Response<B>) {
        for (name, value) in &self.headers {
            reply.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

/// Reads a file of at most [`file::MAX_FILE_BYTES`] as UTF-8 text.
fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(file::MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() > file::MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {} bytes",
            path.display(),
            file::MAX_FILE_BYTES
        ));
    }
    Ok(text)
}

/// The security in force, swapped whole on reload, and the request screening it implies.
pub struct Guard {
    current: RwLock<Arc<Security>>,
    checker: Checker,
}

impl Guard {
    /// Enforces `initial` until [`Guard::replace`].
    pub fn new(initial: Arc<Security>) -> Guard {
        Guard {
            current: RwLock::new(initial),
            checker: Checker::default(),
        }
    }

    /// The security in force now.
    pub fn current(&self) -> Arc<Security> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Puts `next` in force for new connections and requests.
    pub fn replace(&self, next: Arc<Security>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// The answer (`429` over the rate limit, `401` without valid credentials, `503` when
    /// credentials not seen before can't be checked yet) if a request with `headers` may not
    /// proceed under `security`; `None` if it may.
    pub async fn screen(&self, security: &Security, headers: &HeaderMap) -> Option<Refusal> {
        if let Some(limiter) = &security.limiter {
            if !limiter.allow(Instant::now()) {
                return Some(crate::reply::text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests.\n",
                ));
            }
        }
        let users = security.users.as_ref()?;
        match self.checker.check(users, headers).await {
            Verdict::Allowed => None,
            Verdict::Refused => {
                let mut reply = crate::reply::text(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
                reply
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                Some(reply)
            }
            Verdict::Busy => Some(crate::reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many password checks in progress; try again.\n",
            )),
        }
    }
}
