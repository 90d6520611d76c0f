//! Loading the state file at start and writing it atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::StateFile;

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    /// No file yet: a first start.
    Missing,
    /// The saved state.
    Restored(StateFile),
    /// The file was unreadable or corrupt and was renamed to `moved_to`; starting from zero.
    SetAside {
        /// Where the file now is.
        moved_to: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The file was unreadable or corrupt and could not be moved either; persistence must stay
    /// off so the file isn't overwritten.
    Unusable {
        /// What was wrong.
        reason: String,
    },
}

/// Reads `path`. Never fails: a bad file is set aside (renamed with a `.corrupt-<unix time>`
/// suffix next to it), so its content can still be inspected and nothing is silently lost.
pub fn load(path: &Path, now_unix: u64) -> Loaded {
    let reason = match fs::read_to_string(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => format!("cannot read it: {e}"),
        Ok(text) => match StateFile::parse(&text) {
            Ok(file) => return Loaded::Restored(file),
            Err(e) => format!("it is not a valid state file: {e}"),
        },
    };
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{now_unix}"));
    let moved_to = PathBuf::from(name);
    match fs::rename(path, &moved_to) {
        Ok(()) => Loaded::SetAside { moved_to, reason },
        Err(e) => Loaded::Unusable {
            reason: format!("{reason}; moving it aside failed too: {e}"),
        },
    }
}

/// Replaces `path` with `text` so that a crash at any moment leaves either the old or the new
/// file: write a temp file in the same directory, fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "state path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::VERSION;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "gce-store-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn missing_then_written_then_restored() {
        let path = dir().join("state.json");
        assert!(matches!(load(&path, 1), Loaded::Missing));
        let file = StateFile {
            version: VERSION,
            written_at_unix: 5.0,
            devices: Vec::new(),
            attribution: None,
        };
        write_atomic(&path, &file.to_json().expect("valid state")).expect("write");
        match load(&path, 1) {
            Loaded::Restored(f) => assert_eq!(f, file),
            other => panic!("{other:?}"),
        }
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
    fn a_corrupt_file_is_set_aside_with_its_content() {
        let path = dir().join("state.json");
        fs::write(&path, "{ not json").expect("write");
        match load(&path, 42) {
            Loaded::SetAside { moved_to, reason } => {
                assert_eq!(moved_to, path.with_file_name("state.json.corrupt-42"));
                assert!(reason.contains("line 1"), "{reason}");
                assert_eq!(fs::read_to_string(moved_to).expect("kept"), "{ not json");
                assert!(!path.exists());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let path = dir().join("no-such-dir").join("state.json");
        assert!(write_atomic(&path, "{}").is_err());
    }
}
