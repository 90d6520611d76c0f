//! HTTP basic authentication against bcrypt hashes, as the exporter-toolkit does it: every path
//! is protected, an unknown user costs a bcrypt check like a known one (no user enumeration by
//! timing), and results are cached so a scraper with the right password pays bcrypt once.
//! bcrypt is deliberately slow (≈50 ms at cost 10), so checks run on the blocking pool, one at a
//! time; the request cap bounds how many wait.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION};
use tokio::sync::Semaphore;

/// Cached check results kept at most; the cache is emptied when full.
const CACHE_ENTRIES: usize = 1024;

/// The users of one loaded configuration.
pub struct Users {
    users: Vec<(String, String)>,
    /// A hash of the same cost as the users', checked for unknown users.
    decoy: String,
}

impl Users {
    /// Users from name → bcrypt hash (already checked to parse). `None` if there are none.
    /// Computes the decoy hash: one bcrypt run at the users' cost, so call it off the async
    /// workers.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Users> {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()?;
        let decoy = bcrypt::hash_with_salt(b"decoy", cost, [7; 16])
            .map(|h| h.to_string())
            .unwrap_or_default();
        Some(Users {
            users: users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            decoy,
        })
    }

    /// The hash stored for `user`, or the decoy; compares every name in full so that the time
    /// taken doesn't depend on which name (or prefix) matched.
    fn hash_for(&self, user: &str) -> (bool, &str) {
        let mut found: Option<&str> = None;
        for (name, hash) in &self.users {
            if constant_time_eq(name.as_bytes(), user.as_bytes()) {
                found = Some(hash);
            }
        }
        match found {
            Some(h) => (true, h),
            None => (false, &self.decoy),
        }
    }
}

/// Checks requests; shared by every connection, across reloads.
pub struct Checker {
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt: Semaphore,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            cache: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(1),
        }
    }
}

impl Checker {
    /// True if `headers` carry basic credentials of one of `users`.
    pub async fn allows(&self, users: &Arc<Users>, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let (known, hash) = users.hash_for(&user);
        let key = cache_key(&user, hash, &password);
        if let Some(&ok) = self.lock().get(&key) {
            return ok && known;
        }
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        let hash = hash.to_string();
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        let ok = verified && known;
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// User and password of an `Authorization: Basic` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// SHA-256 of user, hash and password: the cache never holds a password in clear, and a
/// changed hash (after a reload) misses the cache.
fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// Equality whose time depends only on the lengths, not on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn users() -> Arc<Users> {
        let mut map = BTreeMap::new();
        map.insert(
            "alice".to_string(),
            bcrypt::hash("wonder", 4).expect("hash"),
        );
        map.insert("bob".to_string(), bcrypt::hash("builder", 4).expect("hash"));
        Arc::new(Users::new(&map).expect("users"))
    }

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        let value = HeaderValue::from_str(&format!("Basic {encoded}")).expect("header");
        h.insert(AUTHORIZATION, value);
        h
    }

    #[tokio::test]
    async fn right_wrong_and_missing_credentials() {
        let (users, checker) = (users(), Checker::default());
        assert!(checker.allows(&users, &basic("alice:wonder")).await);
        assert!(
            checker.allows(&users, &basic("alice:wonder")).await,
            "cached"
        );
        assert!(checker.allows(&users, &basic("bob:builder")).await);
        assert!(!checker.allows(&users, &basic("alice:builder")).await);
        assert!(!checker.allows(&users, &basic("carol:wonder")).await);
        assert!(!checker.allows(&users, &basic("alice")).await);
        assert!(!checker.allows(&users, &HeaderMap::new()).await);
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(!checker.allows(&users, &bearer).await);
        let mut junk = HeaderMap::new();
        junk.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(!checker.allows(&users, &junk).await);
    }

    #[tokio::test]
    async fn passwords_with_colons_and_unicode() {
        let mut map = BTreeMap::new();
        map.insert("zoë".to_string(), bcrypt::hash("a:b:ç", 4).expect("hash"));
        let users = Arc::new(Users::new(&map).expect("users"));
        assert!(Checker::default().allows(&users, &basic("zoë:a:b:ç")).await);
    }

    #[test]
    fn no_users_means_no_authentication() {
        assert!(Users::new(&BTreeMap::new()).is_none());
    }

    #[test]
    fn decoy_has_the_users_cost_and_constant_time_eq_is_eq() {
        let u = users();
        let parts: bcrypt::HashParts = u.decoy.parse().expect("decoy is a hash");
        assert_eq!(parts.get_cost(), 4);
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("a", "b"),
            ("ab", "a"),
            ("a", "ab"),
            ("", "x"),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} {b:?}"
            );
        }
    }
}
