//! Open connections: the `--web.max-connections` cap, which of them are idle, and how they are
//! closed — the idle first, so that the cap protects scrapes rather than whoever holds
//! connections open.
//!
//! A connection is *idle* while no request of it is being served: during its TLS handshake,
//! while its request headers arrive (complete headers start a request), and between keep-alive
//! requests. It is *busy* from complete request headers until its response is fully written.
//!
//! - **At the cap** a newly accepted connection takes the place of the one idle the longest,
//!   which is closed; if every connection is busy, the new one waits (with the rest in the
//!   kernel's listen backlog) until one closes or turns idle. So clients that connect and sit
//!   there, or reconnect as soon as they are closed, can't keep a scraper out, while requests
//!   being served are never cut off to make room.
//! - **At shutdown** idle connections are closed at once; busy ones finish their response
//!   (without keep-alive) for at most the drain time, then are closed too. Stalled clients
//!   can't hold the exit up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Close idle connections; let busy ones finish their response.
    Draining,
    /// Close everything now.
    Closing,
}

/// Why a connection should close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Its slot went to a new connection (it was the longest idle).
    Evicted,
    /// Shutdown: close if idle, else after the response in progress.
    Draining,
    /// Shutdown: the drain time is over.
    Now,
}

/// The open connections, shared by the accept loops and the connections themselves.
pub struct Connections {
    cap: usize,
    table: Mutex<Table>,
    /// A connection closed or turned idle.
    changed: Notify,
    phase: watch::Sender<Phase>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    evicted: u64,
}

struct Entry {
    /// Requests being served (HTTP/1.1 serves one at a time; a count is simply robust).
    busy: u32,
    /// When it last turned idle (or was accepted).
    idle_since: Instant,
    close: Arc<Notify>,
}

impl Table {
    /// The connection idle the longest, if any is idle.
    fn longest_idle(&self) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, e)| e.busy == 0)
            .min_by_key(|(id, e)| (e.idle_since, **id))
            .map(|(id, _)| *id)
    }

    fn insert(&mut self, now: Instant) -> (u64, Arc<Notify>) {
        let id = self.next_id;
        self.next_id += 1;
        let close = Arc::new(Notify::new());
        self.open.insert(
            id,
            Entry {
                busy: 0,
                idle_since: now,
                close: Arc::clone(&close),
            },
        );
        (id, close)
    }

    /// Room for a new connection under `cap`, closing the longest-idle one if needed; false if
    /// every connection is busy.
    fn make_room(&mut self, cap: usize) -> bool {
        if self.open.len() < cap {
            return true;
        }
        let Some(victim) = self.longest_idle() else {
            return false;
        };
        if let Some(entry) = self.open.remove(&victim) {
            // notify_one keeps the wake-up if the connection isn't waiting for it yet.
            entry.close.notify_one();
            self.evicted += 1;
        }
        true
    }
}

impl Connections {
    /// At most `cap` open connections.
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            table: Mutex::new(Table::default()),
            changed: Notify::new(),
            phase: watch::channel(Phase::Serving).0,
        })
    }

    /// A slot for a connection just accepted: at once under the cap; at the cap, by closing
    /// the longest-idle connection; if all are busy, once one closes or turns idle.
    pub async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change in between is not missed.
            changed.as_mut().enable();
            {
                let mut table = self.lock();
                if table.make_room(self.cap) {
                    let (id, close) = table.insert(Instant::now());
                    return Slot {
                        id,
                        connections: Arc::clone(self),
                        close,
                        phase: self.phase.subscribe(),
                    };
                }
            }
            changed.await;
        }
    }

    /// Closes every connection: the idle at once, the busy after their response, and whatever
    /// is left after `grace`. Returns once all are closed (or, should a connection task not
    /// respond, shortly after `grace`).
    pub async fn drain(&self, grace: Duration) {
        self.phase.send_replace(Phase::Draining);
        if tokio::time::timeout(grace, self.all_closed()).await.is_ok() {
            return;
        }
        let left = self.lock().open.len();
        tracing::warn!(connections = left, timeout = ?grace, "Connections did not drain in time; closing them");
        self.phase.send_replace(Phase::Closing);
        // Closing is immediate for the tasks; this only lets them run.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.all_closed()).await;
    }

    async fn all_closed(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().open.is_empty() {
                return;
            }
            changed.await;
        }
    }

    /// Connections open now, and closed so far to make room.
    pub fn counts(&self) -> (usize, u64) {
        let table = self.lock();
        (table.open.len(), table.evicted)
    }

    fn set_busy(&self, id: u64, busy: bool) {
        let mut table = self.lock();
        let Some(entry) = table.open.get_mut(&id) else {
            return;
        };
        if busy {
            entry.busy += 1;
            return;
        }
        entry.busy = entry.busy.saturating_sub(1);
        if entry.busy == 0 {
            entry.idle_since = Instant::now();
            drop(table);
            self.changed.notify_waiters();
        }
    }

    fn is_idle(&self, id: u64) -> bool {
        self.lock().open.get(&id).is_none_or(|e| e.busy == 0)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding it leaves a table that is still consistent enough to close by.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's place among the open ones; dropping it frees the place.
pub struct Slot {
    id: u64,
    connections: Arc<Connections>,
    close: Arc<Notify>,
    phase: watch::Receiver<Phase>,
}

impl Slot {
    /// Completes when the connection should close, saying why.
    pub async fn closing(&mut self) -> Close {
        tokio::select! {
            _ = self.close.notified() => Close::Evicted,
            phase = self.phase.wait_for(|p| *p != Phase::Serving) => match phase.map(|p| *p) {
                Ok(Phase::Draining) => Close::Draining,
                _ => Close::Now,
            },
        }
    }

    /// Completes when shutdown's drain time is over.
    pub async fn closing_now(&mut self) {
        let _ = self.phase.wait_for(|p| *p == Phase::Closing).await;
    }

    /// True while no request of this connection is being served.
    pub fn is_idle(&self) -> bool {
        self.connections.is_idle(self.id)
    }

    /// Marks a request as being served until the returned guard is dropped (when its response
    /// has been written, or abandoned).
    pub fn busy(&self) -> Busy {
        self.tracker().busy()
    }

    /// A handle that marks this connection's requests busy, for the request handler.
    pub fn tracker(&self) -> Tracker {
        Tracker {
            id: self.id,
            connections: Arc::clone(&self.connections),
        }
    }
}

/// Marks requests of one connection busy; see [`Slot::tracker`].
#[derive(Clone)]
pub struct Tracker {
    id: u64,
    connections: Arc<Connections>,
}

impl Tracker {
    /// See [`Slot::busy`].
    pub fn busy(&self) -> Busy {
        self.connections.set_busy(self.id, true);
        Busy {
            id: self.id,
            connections: Arc::clone(&self.connections),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let removed = self.connections.lock().open.remove(&self.id).is_some();
        if removed {
            self.connections.changed.notify_waiters();
        }
    }
}

/// A request being served; see [`Slot::busy`].
pub struct Busy {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connections.set_busy(self.id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn under_the_cap_everyone_gets_in() {
        let c = Connections::new(3);
        let slots = [c.admit().await, c.admit().await, c.admit().await];
        assert_eq!(c.counts(), (3, 0));
        drop(slots);
        assert_eq!(c.counts(), (0, 0));
    }

    /// At the cap the longest-idle connection makes room; busy ones are never chosen.
    #[tokio::test]
    async fn at_the_cap_the_longest_idle_is_closed_and_busy_ones_kept() {
        let c = Connections::new(3);
        let mut a = c.admit().await;
        let b = c.admit().await;
        let d = c.admit().await;
        let a_busy = a.busy();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // b is now the longest idle (a is busy, d came after b).
        let mut b = b;
        let e = c.admit().await;
        assert_eq!(b.closing().await, Close::Evicted);
        assert_eq!(c.counts(), (3, 1));
        // d turns busy then idle again: now it is the newest idle, and e the longest.
        drop(d.busy());
        let f = c.admit().await;
        assert!(c.lock().open.contains_key(&d.id));
        assert!(!c.lock().open.contains_key(&e.id));
        // Only a is idle now.
        drop(a_busy);
        assert!(a.is_idle());
        let (_hold_d, _hold_f) = (d.busy(), f.busy());
        let _g = c.admit().await;
        assert_eq!(a.closing().await, Close::Evicted);
    }

    /// With every connection busy a new one waits until one turns idle.
    #[tokio::test]
    async fn when_all_are_busy_a_new_connection_waits() {
        let c = Connections::new(1);
        let mut a = c.admit().await;
        let busy = a.busy();
        let waiting = {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.admit().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "admitted while all were busy");
        drop(busy);
        let _b = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once one turned idle")
            .expect("task");
        assert_eq!(a.closing().await, Close::Evicted);
    }

    /// Shutdown closes idle connections first and the busy after the grace time, without
    /// waiting for the clients.
    #[tokio::test]
    async fn drain_is_bounded() {
        let c = Connections::new(10);
        let mut idle = c.admit().await;
        let mut busy = c.admit().await;
        let guard = busy.busy();
        let idle_task = tokio::spawn(async move {
            let why = idle.closing().await;
            drop(idle);
            why
        });
        let busy_task = tokio::spawn(async move {
            assert_eq!(busy.closing().await, Close::Draining);
            assert!(!busy.is_idle());
            busy.closing_now().await;
            drop(guard);
        });
        tokio::time::timeout(Duration::from_secs(10), c.drain(Duration::from_millis(100)))
            .await
            .expect("drain returns");
        assert_eq!(idle_task.await.expect("idle"), Close::Draining);
        busy_task.await.expect("busy");
        assert_eq!(c.counts().0, 0);
    }
}
