//! Reading sysfs attribute files: one value per file, as text.

use std::io;
use std::path::{Path, PathBuf};

/// A sysfs attribute that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file did not hold an unsigned integer.
    #[error("{path} does not hold a number: {text:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        text: String,
    },
}

impl SysfsError {
    /// True when the file exists but this user may not read it.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, SysfsError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

/// The file's content without surrounding whitespace.
pub fn read_text(path: &Path) -> Result<String, SysfsError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SysfsError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The file's content as an unsigned integer.
pub fn read_u64(path: &Path) -> Result<u64, SysfsError> {
    let text = read_text(path)?;
    parse_u64(&text).ok_or_else(|| SysfsError::Parse {
        path: path.to_path_buf(),
        text,
    })
}

/// An attribute's text (already trimmed) as an unsigned integer.
pub fn parse_u64(text: &str) -> Option<u64> {
    text.parse().ok()
}

/// `KEY=value` lines of a `uevent` file.
pub fn uevent(path: &Path) -> Result<Vec<(String, String)>, SysfsError> {
    Ok(parse_uevent(&read_text(path)?))
}

/// `KEY=value` lines of a `uevent` file's text; other lines are skipped.
pub fn parse_uevent(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Entries of a directory whose names satisfy `keep`, sorted by name; none if it is missing.
pub fn entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            keep(&name).then(|| (name, e.path()))
        })
        .collect();
    found.sort_by_key(|(name, _)| natural_key(name));
    found
}

/// Sorts `card10` after `card9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}

/// Sysfs trees built by unit tests, in the kernel's layouts.
#[cfg(test)]
pub(crate) mod fake {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A directory tree under the system's temp dir, removed when dropped.
    pub(crate) struct Tree(PathBuf);

    impl Tree {
        /// An empty tree; `name` only helps to tell trees apart when one is left behind.
        pub(crate) fn new(name: &str) -> Tree {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let root =
                std::env::temp_dir().join(format!("gce-sysfs-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).expect("create fake sysfs");
            Tree(root)
        }

        /// The tree's root, standing for `/sys`.
        pub(crate) fn root(&self) -> &Path {
            &self.0
        }

        /// Writes `text` (and a newline, as sysfs does) to `rel`, creating its folders.
        pub(crate) fn file(&self, rel: &str, text: &str) {
            let path = self.0.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).expect("create fake sysfs folder");
            }
            std::fs::write(&path, format!("{text}\n")).expect("write fake sysfs file");
        }

        /// Creates the folder `rel` (a folder where a file is expected can't be read).
        pub(crate) fn dir(&self, rel: &str) {
            std::fs::create_dir_all(self.0.join(rel)).expect("create fake sysfs folder");
        }

        /// Renames `from` to `to`, as a driver rebind renumbers a device.
        pub(crate) fn rename(&self, from: &str, to: &str) {
            std::fs::rename(self.0.join(from), self.0.join(to)).expect("rename in fake sysfs");
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["card10", "card2", "card1"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, ["card1", "card2", "card10"]);
    }
}
