//! The file's shape, as serde reads it: every key the exporter-toolkit defines, unknown keys
//! refused. Empty strings mean "not set", as in the toolkit's Go structs.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) tls_server_config: Option<RawTls>,
    #[serde(default)]
    pub(super) http_server_config: Option<RawHttp>,
    #[serde(default)]
    pub(super) basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) rate_limit: Option<RawRateLimit>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) cert: String,
    #[serde(default)]
    pub(super) key: String,
    #[serde(default)]
    pub(super) client_ca: String,
    #[serde(default)]
    pub(super) cert_file: String,
    #[serde(default)]
    pub(super) key_file: String,
    #[serde(default)]
    pub(super) client_auth_type: String,
    #[serde(default)]
    pub(super) client_ca_file: String,
    #[serde(default)]
    pub(super) client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    pub(super) min_version: Option<String>,
    #[serde(default)]
    pub(super) max_version: Option<String>,
    #[serde(default)]
    pub(super) cipher_suites: Vec<String>,
    #[serde(default)]
    pub(super) prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    pub(super) curve_preferences: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    // Accepted for compatibility; this server speaks HTTP/1.1 only.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) http2: Option<bool>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    #[serde(default)]
    pub(super) interval: Option<String>,
    #[serde(default)]
    pub(super) burst: u32,
}
