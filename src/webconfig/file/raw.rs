//! The file's shape, as serde reads it: every key the exporter-toolkit defines, unknown keys
//! refused, and a key given twice refused — in a section (serde's derive does that) and in the
//! user and header maps (done here), as the toolkit's `yaml.UnmarshalStrict` refuses both. A map
//! that kept the last of two `alice:` entries would let a forgotten line silently win.
//! Empty strings mean "not set", as in the toolkit's Go structs.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) tls_server_config: Option<RawTls>,
    #[serde(default)]
    pub(super) http_server_config: Option<RawHttp>,
    #[serde(default, deserialize_with = "optional_unique_map")]
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
    #[serde(default, deserialize_with = "unique_map")]
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

/// A map of strings that refuses a key given twice.
fn unique_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_map(UniqueMap(PhantomData))
}

/// [`unique_map`] for an optional section (`basic_auth_users:` with nothing under it is none).
fn optional_unique_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "unique_map")] BTreeMap<String, String>);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

struct UniqueMap(PhantomData<BTreeMap<String, String>>);

impl<'de> Visitor<'de> for UniqueMap {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of names to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((key, value)) = access.next_entry::<String, String>()? {
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            map.insert(key, value);
        }
        Ok(map)
    }
}
