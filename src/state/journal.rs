//! The journal beside the state file (`<file>.journal`): one line of JSON per committed sample,
//! holding what changed since the line before ([`Record`]), appended and `fdatasync`ed before
//! that sample is served. The state file plus the journal's records, in order, is the last
//! committed state; compaction writes that state to the state file and empties the journal.
//!
//! The journal is locked (`flock`, exclusive) while open, so two exporters never write the
//! same ledger.

use std::fs::{File, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::delta::Record;
use super::files::{open_append, with_suffix};
use super::StateFile;

/// The journal of the state file at `state`.
pub fn path_for(state: &Path) -> PathBuf {
    with_suffix(state, ".journal")
}

/// Why the journal could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the lock.
    #[error(
        "{path} is locked by another process (is another exporter using the same --state.file?)"
    )]
    InUse {
        /// The journal.
        path: PathBuf,
    },
    /// Any other failure (permissions, missing directory, not a regular file).
    #[error("cannot open {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// An open, locked journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Journal {
    /// Opens (creating it, mode 0600) and locks the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, OpenError> {
        let io_err = |source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open_append(path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(OpenError::InUse {
                    path: path.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let len = file.metadata().map_err(io_err)?.len();
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Appends `record` and waits until it is on the disk. A failed append leaves no partial
    /// line behind where it can be cut off again; where even that fails, the caller must
    /// compact before the next append (a torn line is skipped at replay, and compaction
    /// rewrites everything it held).
    pub fn append(&mut self, record: &Record) -> io::Result<usize> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        // Appending to a journal someone deleted succeeds but keeps nothing.
        if self.file.metadata()?.nlink() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} was deleted", self.path.display()),
            ));
        }
        self.len += line.len() as u64;
        Ok(line.len())
    }

    /// Empties the journal (after a compaction has saved everything it held).
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }

    /// Bytes in the journal.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a replay applied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Records applied.
    pub applied: usize,
    /// Lines skipped: torn by a crash during an append (never served) or not a valid record.
    pub skipped: usize,
    /// Records the state already held (left behind by a crash between a rewrite of the state
    /// file and the emptying of the journal).
    pub stale: usize,
}

/// Applies every complete, valid record of a journal's `text` to `state`, in order.
pub fn replay(state: &mut StateFile, text: &str) -> Replayed {
    let mut out = Replayed::default();
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let complete = line.ends_with('\n');
        let record = serde_json::from_str::<Record>(line.trim_end())
            .ok()
            .filter(|r| complete && r.is_valid());
        match record {
            Some(r) => {
                if state.apply(r) {
                    out.applied += 1;
                } else {
                    out.stale += 1;
                }
            }
            None if line.trim().is_empty() && lines.peek().is_none() => {}
            None => out.skipped += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::device;
    use super::super::VERSION;
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gce-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn empty() -> StateFile {
        StateFile {
            version: VERSION,
            written_at_unix: 0.0,
            seq: 0,
            devices: Vec::new(),
            attribution: None,
            mig: Vec::new(),
        }
    }

    fn record(at: f64, energy_j: f64) -> Record {
        let mut d = device();
        d.energy_j = energy_j;
        Record {
            written_at_unix: at,
            seq: at as u64,
            devices: vec![d],
            attribution: None,
            mig: Vec::new(),
        }
    }

    #[test]
    fn appended_records_replay_in_order() {
        let path = dir("order").join("state.json.journal");
        let mut j = Journal::open(&path).expect("open");
        j.append(&record(1.0, 10.0)).expect("append");
        j.append(&record(2.0, 20.0)).expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut state = empty();
        let r = replay(&mut state, &text);
        assert_eq!((r.applied, r.skipped), (2, 0));
        assert_eq!(state.written_at_unix, 2.0);
        assert_eq!(state.devices[0].energy_j, 20.0);
        j.clear().expect("clear");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
    }

    #[test]
    fn a_torn_or_invalid_line_is_skipped() {
        let good = serde_json::to_string(&record(1.0, 10.0)).expect("json");
        let mut negative = record(2.0, -5.0);
        negative.devices[0].co2e_g = f64::INFINITY;
        let bad = serde_json::to_string(&negative).expect("json");
        let torn = &good[..good.len() / 2];
        let text = format!("{good}\n{bad}\n{torn}");
        let mut state = empty();
        let r = replay(&mut state, &text);
        assert_eq!((r.applied, r.skipped), (1, 2));
        assert_eq!(state.devices[0].energy_j, 10.0);
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_it() {
        let path = dir("lock").join("state.json.journal");
        let first = Journal::open(&path).expect("open");
        let err = Journal::open(&path).expect_err("locked");
        assert!(matches!(err, OpenError::InUse { .. }), "{err}");
        drop(first);
        Journal::open(&path).expect("free again");
    }

    #[test]
    fn appending_to_a_deleted_journal_fails() {
        let d = dir("deleted");
        let path = d.join("state.json.journal");
        let mut j = Journal::open(&path).expect("open");
        std::fs::remove_file(&path).expect("rm");
        assert!(j.append(&record(1.0, 1.0)).is_err());
    }
}
