//! Remembered results of password checks, so that a scraper with the right password pays one
//! bcrypt run and then nothing, whatever else is hitting the server.
//!
//! An entry is keyed by a SHA-256 of user, stored hash and password (no password is kept in
//! clear, and a changed hash after a reload misses). bcrypt is deterministic, so a remembered
//! answer never goes wrong; entries are forgotten only to bound memory: after
//! [`FORGET_AFTER`] without use, or, when [`CAPACITY`] is reached, the least recently used.
//! Acceptances and refusals are kept apart, so a flood of wrong passwords (each a new refusal)
//! can never push a good client's acceptance out. Time is passed in, so tests need no clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// SHA-256 of user, hash and password.
pub(super) type Key = [u8; 32];

/// An entry not used for this long is forgotten (a scraper every 15 s to 5 min keeps its own).
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most acceptances, and most refusals, remembered at once (32 bytes + a timestamp each).
pub const CAPACITY: usize = 1024;

/// Both tables.
#[derive(Default)]
pub(super) struct Remembered {
    allowed: Recent,
    refused: Recent,
}

impl Remembered {
    /// The remembered answer for `key`, if any; using it keeps it.
    pub(super) fn get(&mut self, key: &Key, now: Instant) -> Option<bool> {
        if self.allowed.hit(key, now) {
            Some(true)
        } else if self.refused.hit(key, now) {
            Some(false)
        } else {
            None
        }
    }

    /// Remembers the answer `ok` for `key`.
    pub(super) fn put(&mut self, key: Key, ok: bool, now: Instant) {
        if ok {
            self.allowed.put(key, now);
        } else {
            self.refused.put(key, now);
        }
    }
}

/// Keys by last use, at most [`CAPACITY`].
#[derive(Default)]
struct Recent {
    last_used: HashMap<Key, Instant>,
}

impl Recent {
    fn hit(&mut self, key: &Key, now: Instant) -> bool {
        let Some(used) = self.last_used.get_mut(key) else {
            return false;
        };
        if now.saturating_duration_since(*used) >= FORGET_AFTER {
            self.last_used.remove(key);
            return false;
        }
        *used = now.max(*used);
        true
    }

    fn put(&mut self, key: Key, now: Instant) {
        if !self.last_used.contains_key(&key) && self.last_used.len() >= CAPACITY {
            // Full: forget what is stale, else the least recently used. O(n) only when full,
            // and each insertion follows a bcrypt run that costs far more.
            self.last_used
                .retain(|_, used| now.saturating_duration_since(*used) < FORGET_AFTER);
            if self.last_used.len() >= CAPACITY {
                let oldest = self
                    .last_used
                    .iter()
                    .min_by_key(|(_, used)| **used)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.last_used.remove(&k);
                }
            }
        }
        self.last_used.insert(key, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Key {
        let mut k = [0; 32];
        k[..8].copy_from_slice(&(n as u64).to_le_bytes());
        k
    }

    #[test]
    fn remembered_until_unused_for_the_lifetime() {
        let t0 = Instant::now();
        let mut r = Remembered::default();
        r.put(key(1), true, t0);
        r.put(key(2), false, t0);
        assert_eq!(r.get(&key(1), t0), Some(true));
        assert_eq!(r.get(&key(2), t0), Some(false));
        assert_eq!(r.get(&key(3), t0), None);
        // Used just before it would be forgotten: kept for another lifetime.
        let later = t0 + FORGET_AFTER - Duration::from_secs(1);
        assert_eq!(r.get(&key(1), later), Some(true));
        assert_eq!(r.get(&key(1), later + FORGET_AFTER / 2), Some(true));
        // Key 2 was not used since t0.
        assert_eq!(r.get(&key(2), t0 + FORGET_AFTER), None);
        let idle = later + FORGET_AFTER / 2 + FORGET_AFTER;
        assert_eq!(r.get(&key(1), idle), None, "unused for a lifetime");
    }

    /// A flood of refusals never pushes an acceptance out, and each table stays bounded.
    #[test]
    fn refusals_cannot_evict_acceptances_and_tables_stay_bounded() {
        let t0 = Instant::now();
        let mut r = Remembered::default();
        r.put(key(0), true, t0);
        for n in 1..=3 * CAPACITY {
            r.put(key(n), false, t0 + Duration::from_millis(n as u64));
        }
        assert_eq!(r.get(&key(0), t0 + Duration::from_secs(10)), Some(true));
        assert_eq!(r.refused.last_used.len(), CAPACITY);
        // The least recently used refusal went first: the newest are all there.
        let end = t0 + Duration::from_secs(10);
        assert_eq!(r.get(&key(3 * CAPACITY), end), Some(false));
        assert_eq!(r.get(&key(1), end), None);
        for n in 1..=2 * CAPACITY {
            r.put(
                key(100_000 + n),
                true,
                end + Duration::from_millis(n as u64),
            );
        }
        assert_eq!(r.allowed.last_used.len(), CAPACITY);
    }
}
