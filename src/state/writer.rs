//! The thread between the sampler and the scrapes when `--state.file` is set: it makes each
//! sampled snapshot durable, then publishes it. No counter is ever served that the ledger has
//! not recorded on disk, so a crash, a kill -9 or a power loss can never make a served counter
//! go backwards at the next start.
//!
//! Each commit appends what changed to the journal and `fdatasync`s it; every
//! `--state.flush-interval` (and at shutdown) a commit instead rewrites the whole state file
//! atomically and empties the journal. A commit that fails (disk full, directory gone) is
//! counted, and the snapshot is served with its counters held at their last durable values
//! ([`super::hold`]); the next sample tries again, with a full rewrite, and the counters catch
//! up once it succeeds. If writes are slower than sampling, the writer skips to the newest
//! snapshot: each one holds absolute totals, so nothing is lost by skipping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::hold::held;
use super::journal::{self, Journal};
use super::store::write_atomic;
use super::StateFile;
use crate::clock::AtomicUnixTime;
use crate::snapshot::Snapshot;

/// A journal longer than this is compacted at the next commit, whatever the flush interval.
const MAX_JOURNAL_BYTES: u64 = 4 << 20;

/// What the metrics report about persistence.
#[derive(Debug, Default)]
pub struct StateHealth {
    /// Successful commits (journal appends and full rewrites).
    pub writes: AtomicU64,
    /// Failed commits.
    pub write_failures: AtomicU64,
    /// Bytes written to the journal and the state file.
    pub bytes_written: AtomicU64,
    last_success: AtomicUnixTime,
    /// Devices restored at start (live and retained).
    pub restored_devices: AtomicU64,
    /// Files set aside at start because they were corrupt or unreadable.
    pub set_aside: AtomicU64,
    held: AtomicBool,
    persisting: AtomicBool,
}

impl StateHealth {
    /// Whether a writer is saving the state.
    pub fn persisting(&self) -> bool {
        self.persisting.load(Ordering::Relaxed)
    }

    /// Whether the served counters are held at their last durable values.
    pub fn held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// Unix time of the last committed sample, 0 if none.
    pub fn last_success_unix(&self) -> f64 {
        self.last_success.get()
    }

    fn record(&self, result: &std::io::Result<usize>, unix: f64, path: &std::path::Path) {
        match result {
            Ok(bytes) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                self.bytes_written
                    .fetch_add(*bytes as u64, Ordering::Relaxed);
                self.last_success.set(unix);
                if self.held.swap(false, Ordering::Relaxed) {
                    info!(path = %path.display(), "Writing the state file works again; counters caught up");
                }
            }
            Err(err) => {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
                if !self.held.swap(true, Ordering::Relaxed) {
                    warn!(path = %path.display(), error = %err, "Cannot write the state file; served counters are held at their last saved values until it works again (nothing is lost: they catch up then). Retrying every sample");
                }
            }
        }
    }
}

/// The newest sampled snapshot not yet committed (older ones are skipped), and whether the
/// sampler has stopped.
#[derive(Default)]
struct Slot {
    latest: Option<Arc<Snapshot>>,
    closed: bool,
}

#[derive(Default)]
struct Mailbox {
    slot: Mutex<Slot>,
    ready: Condvar,
}

impl Mailbox {
    fn update(&self, f: impl FnOnce(&mut Slot)) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut slot);
        self.ready.notify_one();
    }

    /// The next snapshot, or `None` once the sampler has stopped and everything is taken.
    fn take(&self) -> Option<Arc<Snapshot>> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = slot.latest.take() {
                return Some(s);
            }
            if slot.closed {
                return None;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Where the sampler hands its snapshots to the writer; dropping it (the sampler stopping)
/// lets the writer finish.
pub struct Inbox(Arc<Mailbox>);

impl Inbox {
    /// Queues `snapshot` for commit, replacing one not yet taken.
    pub fn put(&self, snapshot: Snapshot) {
        self.0.update(|s| s.latest = Some(Arc::new(snapshot)));
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.0.update(|s| s.closed = true);
    }
}

/// The running writer thread.
pub struct StateWriter {
    thread: JoinHandle<()>,
}

impl StateWriter {
    /// Waits until the writer has committed the sampler's last snapshot and rewritten the state
    /// file (call after the sampler has stopped, which closes its [`Inbox`]).
    pub fn stop(self) {
        if self.thread.join().is_err() {
            warn!("State writer thread panicked");
        }
    }
}

/// What the writer starts from.
pub struct Start {
    /// The state file.
    pub path: PathBuf,
    /// How often the state file is rewritten whole.
    pub flush_interval: Duration,
    /// The journal, opened and locked at start-up (`None` if it could not be opened: the
    /// writer retries).
    pub journal: Option<Journal>,
    /// The restored state (empty on a first start): what counters are held at until the
    /// first commit.
    pub restored: StateFile,
}

/// Starts the writer: snapshots put into the returned [`Inbox`] are committed, then published
/// on `publish`.
pub fn spawn(
    start: Start,
    health: Arc<StateHealth>,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
) -> std::io::Result<(StateWriter, Inbox)> {
    let mailbox = Arc::new(Mailbox::default());
    let inbox = Inbox(Arc::clone(&mailbox));
    health.persisting.store(true, Ordering::Relaxed);
    let mut committer = Committer {
        path: start.path,
        flush_interval: start.flush_interval,
        journal: start.journal,
        durable: start.restored,
        // The first commit rewrites the state file: it holds the journal's records (and
        // replaces a file set aside as corrupt), and the journal starts empty.
        last_full: None,
        health,
    };
    let thread = std::thread::Builder::new()
        .name("state-writer".into())
        .spawn(move || {
            while let Some(snapshot) = mailbox.take() {
                let served = committer.commit(&snapshot);
                publish.send_replace(Some(served));
            }
            committer.finish();
        })?;
    Ok((StateWriter { thread }, inbox))
}

struct Committer {
    path: PathBuf,
    flush_interval: Duration,
    journal: Option<Journal>,
    durable: StateFile,
    /// When the state file was last rewritten whole; `None` forces a rewrite.
    last_full: Option<Instant>,
    health: Arc<StateHealth>,
}

impl Committer {
    /// Makes `snapshot` durable and returns what to serve: `snapshot` itself, or, if the
    /// commit failed, `snapshot` with its counters held at the last durable values.
    fn commit(&mut self, snapshot: &Arc<Snapshot>) -> Arc<Snapshot> {
        let mut file = StateFile::from_snapshot(snapshot);
        file.seq = self.durable.seq + 1;
        let full = match (&self.journal, self.last_full) {
            (Some(j), Some(at)) => {
                at.elapsed() >= self.flush_interval || j.len() > MAX_JOURNAL_BYTES
            }
            _ => true,
        };
        let result = if full {
            self.rewrite(&file)
        } else {
            self.append(&file)
        };
        self.health
            .record(&result, snapshot.taken_at_unix, &self.path);
        match result {
            Ok(_) => {
                self.durable = file;
                Arc::clone(snapshot)
            }
            Err(e) => {
                debug!(error = %e, "State commit failed");
                // Whatever the failed write left behind, the next commit starts afresh.
                self.last_full = None;
                Arc::new(held(snapshot, &self.durable))
            }
        }
    }

    fn append(&mut self, file: &StateFile) -> std::io::Result<usize> {
        let record = file.changes_since(&self.durable);
        if !record.is_valid() {
            return Err(invalid_totals());
        }
        let result = match &mut self.journal {
            Some(j) => j.append(&record),
            None => Err(std::io::Error::other("journal not open")),
        };
        if result.is_err() {
            // Reopened at the next full rewrite: the old one may be deleted or torn.
            self.journal = None;
        }
        result
    }

    /// Rewrites the state file with `file` and empties the journal.
    fn rewrite(&mut self, file: &StateFile) -> std::io::Result<usize> {
        let text = file.to_json().map_err(|_| invalid_totals())?;
        write_atomic(&self.path, &text)?;
        // The state file now holds everything: only from here may the journal be emptied (or
        // replaced, if it was deleted).
        self.last_full = Some(Instant::now());
        match &mut self.journal {
            Some(j) => {
                if let Err(e) = j.clear() {
                    self.journal = None;
                    return Err(e);
                }
            }
            None => {
                let mut j = Journal::open(&journal::path_for(&self.path))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                j.clear()?;
                self.journal = Some(j);
            }
        }
        Ok(text.len())
    }

    /// At shutdown: leaves the whole ledger in the state file, the journal empty.
    fn finish(&mut self) {
        if self
            .last_full
            .is_some_and(|_| self.journal.as_ref().is_some_and(Journal::is_empty))
        {
            return;
        }
        let durable = self.durable.clone();
        let result = self.rewrite(&durable);
        self.health
            .record(&result, durable.written_at_unix, &self.path);
    }
}

fn invalid_totals() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a total is negative or not finite; keeping the last good state",
    )
}
