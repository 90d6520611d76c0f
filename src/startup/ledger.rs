//! The ledger at start: restoring what `--state.file` held into the sampler, and, once the
//! listeners are bound, setting bad files aside and starting the state writer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::StartError;
use crate::sampler::Sampler;
use crate::snapshot::Snapshot;
use crate::state::journal::{self, Journal};
use crate::state::store::{self, BadFile, Loaded};
use crate::state::writer::{self, Inbox, StateHealth, StateWriter};
use crate::state::StateFile;
use crate::{clock, config};

/// What the ledger held at start, and the files to set aside once start-up has succeeded.
pub(crate) struct Restored {
    /// The restored state (empty on a first start).
    pub state: StateFile,
    /// Corrupt or unreadable files, not used.
    pub bad: Vec<BadFile>,
}

/// Applies what loading the state file found to the sampler.
pub(crate) fn restore(
    sampler: &mut Sampler,
    cfg: &config::StateConfig,
    health: &StateHealth,
    loaded: Loaded,
    now: clock::Timestamp,
) -> Restored {
    let path = cfg.path.display();
    for bad in &loaded.bad {
        warn!(path = %bad.path.display(), reason = %bad.reason, "Ledger file unusable; it is set aside once the exporter has started");
    }
    if loaded.replayed.skipped > 0 {
        warn!(path = %path, skipped = loaded.replayed.skipped, "Journal lines skipped: torn by a crash during a write (never served) or invalid");
    }
    let state = match loaded.state {
        None => {
            info!(path = %path, "No saved ledger; totals start from zero");
            StateFile::empty()
        }
        Some(file) => {
            let n = sampler.restore(&file, now, cfg.retention);
            health.restored_devices.store(n as u64, Ordering::Relaxed);
            info!(path = %path, devices = n, saved_at = file.written_at_unix, journal_records = loaded.replayed.applied, journal_records_already_saved = loaded.replayed.stale, "Restored totals from the ledger");
            file
        }
    };
    Restored {
        state,
        bad: loaded.bad,
    }
}

/// Where the sampler's snapshots go: straight to the scrapes, or through the state writer.
pub(crate) enum Publisher {
    /// No ledger: each snapshot is served as sampled.
    Direct(watch::Sender<Option<Arc<Snapshot>>>),
    /// Each snapshot is committed to the ledger before it is served.
    Committed(Inbox),
}

impl Publisher {
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        match self {
            Publisher::Direct(tx) => {
                tx.send_replace(Some(Arc::new(snapshot)));
            }
            Publisher::Committed(inbox) => inbox.put(snapshot),
        }
    }
}

/// Starts persistence, once the listeners are bound: sets bad files aside, opens and locks the
/// journal and starts the state writer. A bad file that cannot be moved turns persistence off
/// (it would be overwritten otherwise); a journal another process holds is fatal.
pub(crate) fn persist(
    cfg: &config::StateConfig,
    health: &Arc<StateHealth>,
    restored: Restored,
    now_unix: u64,
    publish: watch::Sender<Option<Arc<Snapshot>>>,
) -> Result<(Option<StateWriter>, Publisher), StartError> {
    for bad in &restored.bad {
        match store::set_aside(bad, now_unix) {
            Ok(moved_to) => {
                health.set_aside.fetch_add(1, Ordering::Relaxed);
                warn!(path = %bad.path.display(), moved_to = %moved_to.display(), reason = %bad.reason, "Ledger file set aside");
            }
            Err(e) => {
                error!(path = %bad.path.display(), reason = %bad.reason, error = %e, "Ledger file unusable and could not be moved aside; NOT saving totals so it is not overwritten");
                return Ok((None, Publisher::Direct(publish)));
            }
        }
    }
    let journal = match Journal::open(&journal::path_for(&cfg.path)) {
        Ok(j) => Some(j),
        Err(e @ journal::OpenError::InUse { .. }) => return Err(StartError::State(e)),
        Err(e) => {
            warn!(error = %e, "Cannot open the ledger journal yet; retrying at every sample");
            None
        }
    };
    let start = writer::Start {
        path: cfg.path.clone(),
        flush_interval: cfg.flush_interval,
        journal,
        restored: restored.state,
    };
    let (writer, inbox) =
        writer::spawn(start, Arc::clone(health), publish).map_err(|source| StartError::Thread {
            what: "state writer",
            source,
        })?;
    Ok((Some(writer), Publisher::Committed(inbox)))
}
