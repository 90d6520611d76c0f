//! HTTP basic authentication against bcrypt hashes, as the exporter-toolkit does it: every path
//! is protected, and an unknown user costs a bcrypt check like a known one (no user enumeration
//! by timing).
//!
//! bcrypt is slow on purpose (≈75 ms at cost 10), so a password-guessing flood must not be able
//! to crowd out a scraper that has the right password:
//! - answers are remembered ([`cache`]): a scraper with the right password pays one bcrypt run,
//!   then none while it keeps scraping, and refusals can't push its entry out;
//! - bcrypt runs off the async workers, a bounded number at once, identical checks share a run,
//!   and the queue of checks is bounded ([`verify`]);
//! - the server authenticates before it takes one of the `--web.max-requests` slots, so
//!   requests waiting for bcrypt hold none (see [`crate::http`]).

mod cache;
mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION};

use verify::bcrypt_threads;

/// The users of one loaded configuration.
pub struct Users {
    users: Vec<(String, String)>,
    /// A hash of the same cost as the users', checked for unknown users.
    decoy: String,
}

/// Salt and digest of a bcrypt hash (of a long throw-away password, at cost 4); with the users'
/// cost in front, checking against it costs what checking a real user costs, without a bcrypt
/// run at load (which at cost 31 would take days). An unknown user is refused whatever it sends.
const DECOY_SALT_AND_DIGEST: &str = "LACmDjoBImK0YwRlTNLz6OHrBh7WDvJKD82IUIEZ4rvzaMfVjfNz2";

impl Users {
    /// Users from name → bcrypt hash (already checked to be usable). `None` if there are none.
    pub fn new(users: &BTreeMap<String, String>) -> Option<Users> {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()?;
        Some(Users {
            users: users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            decoy: format!("$2b${cost:02}${DECOY_SALT_AND_DIGEST}"),
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

/// What a request's credentials earn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid credentials of a configured user.
    Allowed,
    /// Missing, malformed or wrong credentials.
    Refused,
    /// Credentials not checked yet and too many checks queued: try again later.
    Busy,
}

/// Checks requests; shared by every connection, across reloads.
pub struct Checker {
    verifier: Arc<verify::Verifier>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::with_threads(bcrypt_threads())
    }
}

impl Checker {
    /// A checker running at most `threads` bcrypt checks at once.
    pub fn with_threads(threads: usize) -> Checker {
        Checker {
            verifier: Arc::new(verify::Verifier::new(threads)),
        }
    }

    /// Whether `headers` carry basic credentials of one of `users`.
    pub async fn check(&self, users: &Users, headers: &HeaderMap) -> Verdict {
        let Some((user, password)) = credentials(headers) else {
            return Verdict::Refused;
        };
        let (known, hash) = users.hash_for(&user);
        let key = cache_key(&user, hash, &password);
        let ok = match self.verifier.remembered(&key) {
            Some(ok) => ok,
            None => match self.verifier.check(key, password, hash.to_string()).await {
                Some(ok) => ok,
                None => return Verdict::Busy,
            },
        };
        if ok && known {
            Verdict::Allowed
        } else {
            Verdict::Refused
        }
    }

    /// bcrypt runs so far; only tests ask (the flood tests count runs, nothing exports them).
    #[cfg(test)]
    pub fn bcrypt_runs(&self) -> u64 {
        self.verifier.runs()
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
fn cache_key(user: &str, hash: &str, password: &str) -> cache::Key {
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
    use super::verify::MAX_QUEUED;
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

    async fn allowed(checker: &Checker, users: &Users, headers: &HeaderMap) -> bool {
        checker.check(users, headers).await == Verdict::Allowed
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
        assert!(allowed(&checker, &users, &basic("alice:wonder")).await);
        assert!(
            allowed(&checker, &users, &basic("alice:wonder")).await,
            "cached"
        );
        assert!(allowed(&checker, &users, &basic("bob:builder")).await);
        assert!(!allowed(&checker, &users, &basic("alice:builder")).await);
        assert!(!allowed(&checker, &users, &basic("carol:wonder")).await);
        assert!(!allowed(&checker, &users, &basic("alice")).await);
        assert!(!allowed(&checker, &users, &HeaderMap::new()).await);
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(!allowed(&checker, &users, &bearer).await);
        let mut junk = HeaderMap::new();
        junk.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(!allowed(&checker, &users, &junk).await);
    }

    #[tokio::test]
    async fn passwords_with_colons_and_unicode() {
        let mut map = BTreeMap::new();
        map.insert("zoë".to_string(), bcrypt::hash("a:b:ç", 4).expect("hash"));
        let users = Arc::new(Users::new(&map).expect("users"));
        assert!(allowed(&Checker::default(), &users, &basic("zoë:a:b:ç")).await);
    }

    /// 200 requests at once with the same new credentials: one bcrypt run, 200 acceptances.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_checks_share_one_bcrypt_run() {
        let (users, checker) = (users(), Arc::new(Checker::with_threads(1)));
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let (users, checker) = (Arc::clone(&users), Arc::clone(&checker));
            all.spawn(async move { allowed(&checker, &users, &basic("alice:wonder")).await });
        }
        while let Some(ok) = all.join_next().await {
            assert!(ok.expect("task"));
        }
        assert_eq!(checker.bcrypt_runs(), 1);
        assert!(allowed(&checker, &users, &basic("alice:wonder")).await);
        assert_eq!(checker.bcrypt_runs(), 1, "remembered");
    }

    /// With the queue of checks full of wrong guesses, new guesses are answered busy at once,
    /// and a client whose password is remembered is let in without waiting for any of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_new_guesses_but_not_remembered_clients() {
        let mut map = BTreeMap::new();
        map.insert(
            "alice".to_string(),
            bcrypt::hash("wonder", 6).expect("hash"),
        );
        let users = Arc::new(Users::new(&map).expect("users"));
        let checker = Arc::new(Checker::with_threads(1));
        assert!(allowed(&checker, &users, &basic("alice:wonder")).await);
        // No bcrypt runs while the guesses arrive, so the queue is surely full (on a fast
        // machine guesses could otherwise be answered as fast as they come).
        let stall = checker.verifier.stall();
        let mut guesses = tokio::task::JoinSet::new();
        for n in 0..MAX_QUEUED + 20 {
            let (users, checker) = (Arc::clone(&users), Arc::clone(&checker));
            let guess = basic(&format!("alice:guess{n}"));
            guesses.spawn(async move { checker.check(&users, &guess).await });
        }
        let mut busy = 0;
        while busy < 20 {
            match guesses.join_next().await.map(|v| v.expect("task")) {
                Some(Verdict::Busy) => busy += 1,
                other => panic!("only the guesses past the queue answer now: {other:?}"),
            }
        }
        assert_eq!(checker.verifier.queued(), MAX_QUEUED);
        assert!(
            allowed(&checker, &users, &basic("alice:wonder")).await,
            "let in while the guesses still queue"
        );
        drop(stall);
        while let Some(v) = guesses.join_next().await {
            assert_eq!(v.expect("task"), Verdict::Refused);
        }
        assert!(checker.bcrypt_runs() <= 1 + MAX_QUEUED as u64);
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
        assert_eq!(bcrypt::verify("wonder", &u.decoy).ok(), Some(false));
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
