//! The Prometheus exporter-toolkit's web configuration, ported: the `--web.config.file` format
//! and what it configures — TLS, basic authentication, extra response headers, a rate limit —
//! reloaded on SIGHUP and on file changes without ever lowering protection. The HTTP server
//! ([`crate::http`]) sees only this module's small interface:
//!
//! - [`Security`]: one loaded configuration ([`Security::load`], or [`Security::open`] without
//!   a file): its TLS acceptor and the headers it adds to every answer;
//! - [`Guard`]: the [`Security`] in force, swapped whole on reload, and the screening of each
//!   request (rate limit, credentials) before the server routes it;
//! - [`Reloader`], [`ReloadStatus`] and [`ReloadMetrics`]: the reload task, its outcome, and
//!   the `gpu_carbon_exporter_web_config_*` metrics that show it.
//!
//! Inside: [`file`](mod@file) parses and checks the format (no I/O, so it is fuzzed); `tls` builds the
//! rustls configuration; `auth` checks bcrypt passwords with a cache and a bounded verifier so
//! a flood of wrong passwords can't crowd out a scraper; `ratelimit` is the token bucket;
//! `protection` is the rule that a reload may not take away TLS, client-certificate checks or
//! basic auth.

mod auth;
pub mod file;
mod metrics;
mod protection;
mod ratelimit;
mod reload;
mod security;
mod tls;

pub use file::WebConfigError;
pub use metrics::ReloadMetrics;
pub use protection::{ClientCerts, Protection};
pub use reload::{ReloadStatus, Reloader, POLL_INTERVAL};
pub use security::{Guard, Security};
