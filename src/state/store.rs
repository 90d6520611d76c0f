//! Loading the ledger at start (read-only: nothing is renamed or written until start-up has
//! succeeded) and writing the state file atomically.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::files::{self, parent_dir, read_regular};
use super::journal::{self, Replayed};
use super::{StateFile, VERSION};

/// A file that could not be used at start, to be set aside once start-up has succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    /// The last committed state: the state file with its journal replayed; `None` when
    /// nothing was saved yet (or nothing usable).
    pub state: Option<StateFile>,
    /// What the journal replay applied and skipped.
    pub replayed: Replayed,
    /// Files that are corrupt or unreadable; their content is not used.
    pub bad: Vec<BadFile>,
}

/// Reads the state file at `path` and its journal. Never writes: a bad file is only reported,
/// and [`set_aside`] moves it once the exporter has started. A corrupt state file with a good
/// journal still restores what the journal holds (every device's latest totals, and the
/// workloads that changed since the last compaction).
pub fn load(path: &Path) -> Loaded {
    let mut bad = Vec::new();
    let mut read = |path: &Path| match read_regular(path) {
        Ok(text) => text,
        Err(e) => {
            bad.push(BadFile {
                path: path.to_path_buf(),
                reason: format!("cannot read it: {e}"),
            });
            None
        }
    };
    let base_text = read(path);
    let journal_path = journal::path_for(path);
    let journal_text = read(&journal_path);
    let base = base_text.and_then(|text| match StateFile::parse(&text) {
        Ok(file) => Some(file),
        Err(e) => {
            bad.push(BadFile {
                path: path.to_path_buf(),
                reason: format!("it is not a valid state file: {e}"),
            });
            None
        }
    });
    let Some(text) = journal_text else {
        return Loaded {
            state: base,
            replayed: Replayed::default(),
            bad,
        };
    };
    let found = base.is_some();
    let mut state = base.unwrap_or_else(|| StateFile {
        version: VERSION,
        written_at_unix: 0.0,
        seq: 0,
        devices: Vec::new(),
        attribution: None,
        mig: Vec::new(),
    });
    let replayed = journal::replay(&mut state, &text);
    Loaded {
        state: (found || replayed.applied > 0).then_some(state),
        replayed,
        bad,
    }
}

/// Moves a bad file aside as `<file>.corrupt-<unix time>` (never over an earlier one).
pub fn set_aside(bad: &BadFile, now_unix: u64) -> io::Result<PathBuf> {
    let moved = files::set_aside(&bad.path, now_unix)?;
    files::sync_dir(&parent_dir(&bad.path))?;
    Ok(moved)
}

/// Replaces `path` with `text` so that a crash at any moment leaves either the old or the new
/// file: create a new temp file in the same directory (exclusively, mode 0600, never through
/// a planted link), fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = parent_dir(path);
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name")
    })?;
    let (tmp, mut f) = create_temp(&dir, file_name)?;
    let result = (|| {
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        files::sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new temp file `.<name>.tmp-<pid>-<n>` beside the state file.
fn create_temp(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, fs::File)> {
    let mut last = None;
    for n in 0..100u32 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        match files::create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temp file name")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::delta::Record;
    use crate::state::journal::Journal;
    use crate::state::tests::device;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gce-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn file(at: f64) -> StateFile {
        StateFile {
            version: VERSION,
            written_at_unix: at,
            seq: 0,
            devices: vec![device()],
            attribution: None,
            mig: Vec::new(),
        }
    }

    #[test]
    fn missing_then_written_then_restored() {
        let path = dir("restore").join("state.json");
        let loaded = load(&path);
        assert!(loaded.state.is_none() && loaded.bad.is_empty());
        let f = file(5.0);
        write_atomic(&path, &f.to_json().expect("valid state")).expect("write");
        let loaded = load(&path);
        assert_eq!(loaded.state, Some(f));
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("state.json")],
            "no temp files left"
        );
    }

    #[test]
    fn the_journal_continues_the_state_file() {
        let path = dir("journal").join("state.json");
        let f = file(5.0);
        write_atomic(&path, &f.to_json().expect("valid state")).expect("write");
        let mut later = f.clone();
        later.written_at_unix = 6.0;
        later.seq = 1;
        later.devices[0].energy_j += 42.0;
        let mut j = Journal::open(&journal::path_for(&path)).expect("journal");
        j.append(&later.changes_since(&f)).expect("append");
        let loaded = load(&path);
        assert_eq!(loaded.state, Some(later));
        assert_eq!(loaded.replayed.applied, 1);
    }

    #[test]
    fn a_corrupt_file_is_reported_not_moved_and_the_journal_still_counts() {
        let path = dir("corrupt").join("state.json");
        fs::write(&path, "{ not json").expect("write");
        let mut j = Journal::open(&journal::path_for(&path)).expect("journal");
        let mut seventh = file(7.0);
        seventh.seq = 1;
        let record: Record = seventh.changes_since(&StateFile {
            version: VERSION,
            written_at_unix: 0.0,
            seq: 0,
            devices: vec![],
            attribution: None,
            mig: Vec::new(),
        });
        j.append(&record).expect("append");
        let loaded = load(&path);
        assert_eq!(loaded.bad.len(), 1);
        assert!(loaded.bad[0].reason.contains("line 1"), "{:?}", loaded.bad);
        assert_eq!(fs::read_to_string(&path).expect("untouched"), "{ not json");
        assert_eq!(loaded.state.map(|s| s.devices.len()), Some(1));
        let moved = set_aside(&loaded.bad[0], 42).expect("aside");
        assert_eq!(moved, path.with_file_name("state.json.corrupt-42"));
        assert_eq!(fs::read_to_string(moved).expect("kept"), "{ not json");
        assert!(!path.exists());
    }

    /// A crash after the state file was rewritten but before the journal was emptied leaves
    /// lines the state file already holds: they are not applied again (they would put older
    /// totals back, a served counter going down).
    #[test]
    fn journal_lines_older_than_the_state_file_are_not_applied() {
        let path = dir("stale").join("state.json");
        let mut old = file(5.0);
        old.seq = 4;
        let mut newer = old.clone();
        newer.seq = 5;
        newer.devices[0].energy_j += 100.0;
        let mut j = Journal::open(&journal::path_for(&path)).expect("journal");
        j.append(&old.changes_since(&file(4.0))).expect("append");
        j.append(&newer.changes_since(&old)).expect("append");
        let mut rewritten = newer.clone();
        rewritten.devices[0].energy_j += 50.0;
        rewritten.seq = 6;
        write_atomic(&path, &rewritten.to_json().expect("valid")).expect("write");
        let loaded = load(&path);
        assert_eq!(loaded.state, Some(rewritten));
        assert_eq!((loaded.replayed.applied, loaded.replayed.stale), (0, 2));
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let path = dir("missing").join("no-such-dir").join("state.json");
        assert!(write_atomic(&path, "{}").is_err());
    }

    #[test]
    fn a_planted_link_at_the_temp_name_is_not_followed() {
        let d = dir("planted");
        let path = d.join("state.json");
        let victim = d.join("victim");
        fs::write(&victim, "keep").expect("write");
        let planted = d.join(format!(".state.json.tmp-{}-0", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
        write_atomic(&path, "{}").expect("write beside the link");
        assert_eq!(fs::read_to_string(&victim).expect("read"), "keep");
        assert_eq!(fs::read_to_string(&path).expect("read"), "{}");
    }
}
