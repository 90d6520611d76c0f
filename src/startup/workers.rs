//! Every background worker of a running exporter, owned in one place and stopped in one
//! documented order.
//!
//! | worker | runs on | started by |
//! |---|---|---|
//! | sampler (or its wait for the first intensity) | own thread | [`super::start_sampling`] |
//! | state writer (commits each sample to the ledger) | own thread | [`super::start_ledger`] |
//! | intensity refresh, one per live provider | own thread, owned by the provider | [`super::start_intensity`] |
//! | kubelet pod-resources and CRI refresh | Tokio task | [`super::build_sampler`] |
//! | web-configuration reloader (SIGHUP, file poll) | Tokio task | [`Workers::serve`] |
//!
//! [`Workers::stop`] stops them in this order: the sampler (its current tick ends and its last
//! snapshot goes to the writer), the state writer (it commits that snapshot and rewrites the
//! state file whole: the final ledger flush), then the refreshers. Only after that do the
//! listeners drain, so scrapes are answered, from the last snapshot, until the ledger is safe.

use tokio::task::JoinHandle;

use super::deferred::Sampling;
use crate::state::writer::StateWriter;
use crate::webconfig::Reloader;

/// The background workers.
pub(crate) struct Workers {
    pub(crate) sampling: Sampling,
    pub(crate) writer: Option<StateWriter>,
    pub(crate) pods: Option<JoinHandle<()>>,
    pub(crate) reloader: Option<Reloader>,
    pub(crate) reloading: Option<JoinHandle<()>>,
}

impl Workers {
    /// Starts the workers that need a running server (the web-configuration reloader).
    pub(crate) fn serve(&mut self) {
        if let Some(r) = self.reloader.take() {
            self.reloading = Some(tokio::spawn(r.run()));
        }
    }

    /// Stops every worker in the documented order and waits for those that hold data.
    pub(crate) async fn stop(self) {
        let Workers {
            sampling,
            writer,
            pods,
            reloading,
            ..
        } = self;
        // 1. and 2. Joining waits for the current tick, which may block on NVML, and for the
        // last ledger write: both stay off the async workers. The writer ends once the sampler
        // has gone (its inbox closes), after committing the last snapshot.
        let _ = tokio::task::spawn_blocking(move || {
            sampling.stop();
            if let Some(w) = writer {
                w.stop();
            }
        })
        .await;
        // 3. The refreshers hold nothing to save. An intensity provider's refresh thread ends at
        // its next wait now that the sampler, which owned the provider, is gone; it is not
        // waited for, since a fetch in flight may take up to --carbon.http-timeout.
        for task in [pods, reloading].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
    }
}
