//! Reloads `--web.config.file` on SIGHUP and when it, or a certificate, key or CA file it names,
//! changes (polled every [`POLL_INTERVAL`] by content, so renames, `kubectl` secret updates and
//! in-place edits are all seen). A file that fails to load, or that would lower protection
//! (see [`super::protection`]), leaves the previous configuration in force; the failure or
//! refusal is logged and shown in [`ReloadStatus`] (exported as
//! `gpu_carbon_exporter_web_config_reload_success`). A renewal caught half-written (the new
//! certificate next to the old key) fails that once; the poll after the rest lands applies it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use super::security::{Guard, Security};
use crate::clock::AtomicUnixTime;

/// How often the files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

/// Outcome of the latest load, for the exporter's own metrics.
#[derive(Debug)]
pub struct ReloadStatus {
    ok: AtomicBool,
    last_success: AtomicUnixTime,
}

impl ReloadStatus {
    /// A status after a successful load at start-up.
    pub fn loaded_now() -> ReloadStatus {
        let s = ReloadStatus {
            ok: AtomicBool::new(true),
            last_success: AtomicUnixTime::default(),
        };
        s.record(true);
        s
    }

    /// True if the latest load succeeded.
    pub fn succeeded(&self) -> bool {
        self.ok.load(Ordering::Relaxed)
    }

    /// Unix time of the latest successful load.
    pub fn last_success_unix(&self) -> f64 {
        self.last_success.get()
    }

    /// Changes whenever what the reload metrics show changes, so a cached exposition is
    /// encoded again after a reload rather than at the next sample.
    pub fn fingerprint(&self) -> u64 {
        self.last_success.get().to_bits().rotate_left(1) ^ u64::from(self.succeeded())
    }

    fn record(&self, ok: bool) {
        self.ok.store(ok, Ordering::Relaxed);
        if ok {
            self.last_success.set_now();
        }
    }
}

/// Watches the web configuration and swaps reloads into the [`Guard`].
pub struct Reloader {
    path: PathBuf,
    guard: Arc<Guard>,
    status: Arc<ReloadStatus>,
    watched: Vec<PathBuf>,
    hangup: Signal,
}

impl Reloader {
    /// Installs the SIGHUP handler now (so a signal sent once the exporter listens is not
    /// fatal); `watched` are the files the initial load read.
    pub fn new(
        path: PathBuf,
        guard: Arc<Guard>,
        status: Arc<ReloadStatus>,
        watched: Vec<PathBuf>,
    ) -> std::io::Result<Reloader> {
        Ok(Reloader {
            path,
            guard,
            status,
            watched,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Runs until the task is aborted.
    pub async fn run(mut self) {
        let mut seen = fingerprint_off_thread(self.watched.clone()).await;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = self.hangup.recv() => "SIGHUP",
                _ = poll.tick() => "change",
            };
            if trigger == "change" {
                let now = fingerprint_off_thread(self.watched.clone()).await;
                if now == seen {
                    continue;
                }
            }
            let (path, watched) = (self.path.clone(), self.watched.clone());
            let Ok((result, watched, fingerprint)) =
                tokio::task::spawn_blocking(move || load(&path, &watched, Security::load)).await
            else {
                continue;
            };
            self.watched = watched;
            seen = fingerprint;
            let file = self.path.display();
            match result {
                Ok(security) => {
                    let lost = self
                        .guard
                        .current()
                        .protection()
                        .lost_to(&security.protection());
                    if lost.is_empty() {
                        info!(file = %file, trigger, settings = security.summary(), "Web configuration reloaded");
                        self.guard.replace(Arc::new(security));
                        self.status.record(true);
                    } else {
                        let lost: Vec<String> = lost.iter().map(ToString::to_string).collect();
                        warn!(file = %file, trigger, refused = lost.join(", "), "Web configuration reload refused: it would lower protection; keeping the previous configuration (restart the exporter to apply such a change)");
                        self.status.record(false);
                    }
                }
                Err(err) => {
                    error!(error = %err, trigger, "Web configuration reload failed; keeping the previous configuration");
                    self.status.record(false);
                }
            }
        }
    }
}

/// Runs `loader` on `path` and returns its result, the files it read, and the fingerprint later
/// polls are compared with: that of the files as they were *before* the load when it read the
/// same files as last time. A file that changes while it is loaded (a renewed key written just
/// after its certificate, which this load saw with the old key) is then reloaded at the next
/// poll, instead of counted as seen.
fn load<R>(
    path: &Path,
    watched: &[PathBuf],
    loader: impl FnOnce(&Path) -> (R, Vec<PathBuf>),
) -> (R, Vec<PathBuf>, u64) {
    let before = fingerprint(watched);
    let (result, read) = loader(path);
    let seen = if read == watched {
        before
    } else {
        fingerprint(&read)
    };
    (result, read, seen)
}

async fn fingerprint_off_thread(files: Vec<PathBuf>) -> u64 {
    tokio::task::spawn_blocking(move || fingerprint(&files))
        .await
        .unwrap_or(0)
}

/// A hash of the files' contents (a missing or unreadable file hashes as such).
fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        match std::fs::read(f) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.kind().to_string().hash(&mut h),
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content() {
        let dir = std::env::temp_dir().join(format!("gce-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("a");
        std::fs::write(&f, "one").expect("write");
        let files = [f.clone(), dir.join("missing")];
        let a = fingerprint(&files);
        assert_eq!(a, fingerprint(&files));
        std::fs::write(&f, "two").expect("write");
        assert_ne!(a, fingerprint(&files));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A certificate renewal seen half-done (the new certificate, the old key) fails to load;
    /// the key written while that load ran must still trigger the next poll.
    #[test]
    fn a_file_changed_during_a_load_is_reloaded_at_the_next_poll() {
        let dir = std::env::temp_dir().join(format!("gce-fp-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&cert, "new cert").expect("write");
        std::fs::write(&key, "old key").expect("write");
        let files = vec![cert.clone(), key.clone()];
        let ((), read, seen) = load(&cert, &files, |_| {
            std::fs::write(&key, "new key").expect("write");
            ((), files.clone())
        });
        assert_eq!(read, files);
        assert_ne!(seen, fingerprint(&files), "the new key would go unseen");
        // Nothing changing during the load: the next poll sees no change.
        let ((), _, seen) = load(&cert, &files, |_| ((), files.clone()));
        assert_eq!(seen, fingerprint(&files));
        // A load that reads other files (the configuration now names them) compares with them.
        let other = vec![dir.join("other.crt")];
        let ((), read, seen) = load(&cert, &files, |_| ((), other.clone()));
        assert_eq!((read, seen), (other.clone(), fingerprint(&other)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn status_records_success_time_and_failure() {
        let s = ReloadStatus::loaded_now();
        assert!(s.succeeded());
        let t = s.last_success_unix();
        assert!(t > 1.6e9, "{t}");
        s.record(false);
        assert!(!s.succeeded());
        assert_eq!(
            s.last_success_unix(),
            t,
            "a failure keeps the last success time"
        );
    }
}
