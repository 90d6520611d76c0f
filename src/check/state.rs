//! The state file part of `check`: can the exporter keep its ledger at `--state.file`?
//!
//! Nothing of the ledger is written, created, moved or truncated. A running exporter holds
//! an exclusive `flock` on the journal (`<file>.journal`) as long as it runs; `check` only
//! tries a shared lock on it, without waiting, and lets go at once: held means a running
//! exporter uses the file (fine: `check` then only reads it), free means none does. The
//! directory's writability is tried with a file of `check`'s own (`.<file>.check-<pid>`,
//! created exclusively and removed); existing files are opened for appending, which writes
//! nothing.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::report::{Section, Status};
use crate::config::Config;
use crate::state::files::{create_new, not_regular, parent_dir};
use crate::state::{journal, store};

/// The state file's section.
pub fn check(config: &Config) -> Section {
    let mut s = Section::new("state file");
    let Some(state) = &config.state else {
        s.add(
            "--state.file",
            Status::Note,
            "not set: totals start from 0 whenever the exporter restarts",
        );
        return s;
    };
    let path = &state.path;
    s.title = format!("state file {}", path.display());
    let journal = journal::path_for(path);
    let loaded = store::load(path);
    for bad in &loaded.bad {
        s.add(
            bad.path.display().to_string(),
            Status::Problem,
            format!(
                "{} (the exporter would set it aside and start from 0)",
                bad.reason
            ),
        );
    }
    if loaded.bad.is_empty() {
        let held = match &loaded.state {
            Some(f) => format!("holds the totals of {} devices", f.devices.len()),
            None => "nothing saved yet".to_string(),
        };
        s.add("read", Status::Ok, held);
    }
    match in_use(&journal) {
        Ok(true) => s.add(
            "lock",
            Status::Ok,
            "a running exporter holds it (its journal is locked): read only, nothing written",
        ),
        Ok(false) => s.add("lock", Status::Ok, "no exporter holds it"),
        Err(e) => s.add(
            "lock",
            Status::Problem,
            format!("{}: {e}", journal.display()),
        ),
    }
    let dir = parent_dir(path);
    let results = [
        (path.clone(), writable(path)),
        (journal.clone(), writable(&journal)),
        (dir.clone(), dir_writable(path)),
    ];
    let mut failed = false;
    for (p, result) in results {
        if let Err(e) = result {
            failed = true;
            s.add("write", Status::Problem, format!("{}: {e}", p.display()));
        }
    }
    if !failed {
        s.add(
            "write",
            Status::Ok,
            format!(
                "it, its journal and files in {} can be written",
                dir.display()
            ),
        );
    }
    s
}

/// Whether another process holds the journal's lock (`false` when there is no journal).
fn in_use(journal: &Path) -> io::Result<bool> {
    if let Some(kind) = not_regular(journal)? {
        return Err(io::Error::other(format!("is {kind}, not a regular file")));
    }
    let file = match open_existing(journal, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false), // released when `file` closes, at once
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Whether an existing `path` can be written (opened for appending; nothing is written).
fn writable(path: &Path) -> io::Result<()> {
    if let Some(kind) = not_regular(path)? {
        return Err(io::Error::other(format!(
            "is {kind}: the exporter only writes regular files"
        )));
    }
    match open_existing(path, true) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether files can be created in the state file's directory, as its atomic rewrites need.
fn dir_writable(path: &Path) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let probe = parent_dir(path).join(format!(".{name}.check-{}", std::process::id()));
    create_new(&probe)?;
    fs::remove_file(&probe)
}

/// Opens an existing regular file without following a link or blocking on a FIFO.
fn open_existing(path: &Path, append: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(!append)
        .append(append)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::state::journal::Journal;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gce-check-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    /// A journal an exporter has open (and so locked) is in use; once closed, or when there is
    /// none, it is not; trying never takes the lock away from its holder.
    #[test]
    fn in_use_only_while_an_exporter_holds_the_journal() {
        let path = dir("lock").join("state.json.journal");
        assert!(!in_use(&path).expect("no journal"));
        let held = Journal::open(&path).expect("open");
        assert!(in_use(&path).expect("held"));
        assert!(in_use(&path).expect("still held"));
        drop(held);
        assert!(!in_use(&path).expect("released"));
        // And the check let go again: an exporter can take it.
        Journal::open(&path).expect("open after the check");
    }

    /// The directory probe leaves nothing behind; a missing directory is named.
    #[test]
    fn the_directory_probe_cleans_up_and_names_a_missing_directory() {
        let d = dir("probe");
        dir_writable(&d.join("state.json")).expect("writable");
        assert_eq!(fs::read_dir(&d).expect("list").count(), 0);
        let err = dir_writable(&d.join("missing/state.json")).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
