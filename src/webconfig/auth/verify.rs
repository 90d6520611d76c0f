//! Running bcrypt without letting it run the server: checks happen on the blocking pool, at
//! most [`bcrypt_threads`] at once (so the async workers always keep CPU to answer scrapes
//! whose credentials are remembered); identical checks in flight share one run (200 scrapers
//! starting at once with the same password cost one bcrypt); and at most [`MAX_QUEUED`]
//! different checks wait or run — past that a new one is answered "busy" at once instead of
//! queueing without end. A check, once started, finishes and is remembered even if the client
//! that asked has gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{watch, Semaphore};

use super::cache::{Key, Remembered};

/// Most different checks waiting or running at once. At cost 10 (≈75 ms on one core) the last
/// of them waits about 5 s, within Prometheus' default 10 s scrape timeout.
pub const MAX_QUEUED: usize = 64;

/// bcrypt runs at once: half the CPUs, at least one.
pub fn bcrypt_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Remembered answers, checks in flight, and the permits to run bcrypt.
pub(super) struct Verifier {
    remembered: Mutex<Remembered>,
    pending: Mutex<HashMap<Key, watch::Receiver<Option<bool>>>>,
    permits: Semaphore,
    runs: AtomicU64,
}

impl Verifier {
    pub(super) fn new(threads: usize) -> Verifier {
        Verifier {
            remembered: Mutex::new(Remembered::default()),
            pending: Mutex::new(HashMap::new()),
            permits: Semaphore::new(threads.max(1)),
            runs: AtomicU64::new(0),
        }
    }

    /// The remembered answer for `key`, without waiting.
    pub(super) fn remembered(&self, key: &Key) -> Option<bool> {
        lock(&self.remembered).get(key, Instant::now())
    }

    /// Whether `password` matches `hash` (`key` names the pair); `None` if too many checks are
    /// already queued.
    pub(super) async fn check(
        self: &Arc<Self>,
        key: Key,
        password: String,
        hash: String,
    ) -> Option<bool> {
        let mut answer = {
            let mut pending = lock(&self.pending);
            match pending.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    // A check that finished between the caller's look at the remembered answers
                    // and this lock is remembered by now (it is remembered before it stops being
                    // pending): use it rather than start a second run.
                    if let Some(ok) = self.remembered(&key) {
                        return Some(ok);
                    }
                    if pending.len() >= MAX_QUEUED {
                        return None;
                    }
                    let (tx, rx) = watch::channel(None);
                    pending.insert(key, rx.clone());
                    tokio::spawn(Arc::clone(self).run(key, password, hash, tx));
                    rx
                }
            }
        };
        // The sender goes away without answering only if the runtime is shutting down: refuse.
        let result = answer.wait_for(Option::is_some).await.map(|v| *v);
        Some(result.ok().flatten().unwrap_or(false))
    }

    async fn run(
        self: Arc<Self>,
        key: Key,
        password: String,
        hash: String,
        tx: watch::Sender<Option<bool>>,
    ) {
        let ok = match self.permits.acquire().await {
            Ok(_permit) => {
                self.runs.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(false)
            }
            Err(_) => false,
        };
        // Remembered before it stops being pending, so a request in between finds one or the
        // other and never starts a second run.
        lock(&self.remembered).put(key, ok, Instant::now());
        lock(&self.pending).remove(&key);
        let _ = tx.send(Some(ok));
    }

    /// Checks waiting or running.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Holds every permit to run bcrypt, so checks queue and none runs until it is dropped.
    #[cfg(test)]
    pub(super) fn stall(&self) -> tokio::sync::SemaphorePermit<'_> {
        let all = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        self.permits
            .try_acquire_many(all)
            .expect("no check is running")
    }

    /// bcrypt runs so far.
    #[cfg(test)]
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves only a cache or a table of waiters: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
