//! API credentials: read from an environment variable or a file, never from a flag (flags are
//! visible to every user in `ps`), and never printed — `Debug` shows `***`, there is no
//! `Display`, and only the HTTP layer calls [`Secret::expose`].

use std::path::Path;

/// A credential that must not be logged or exported.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`, trimmed of surrounding whitespace (files usually end in a newline).
    pub fn new(value: &str) -> Option<Secret> {
        let value = value.trim();
        (!value.is_empty()).then(|| Secret(value.to_string()))
    }

    /// The value, for an HTTP header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a credential could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file or variable is empty.
    #[error("{0} is empty")]
    Empty(String),
    /// Neither was given.
    #[error("not set")]
    Missing,
}

/// The secret in `file` if given, else in the environment variable `var` (looked up with
/// `env`, so tests need not touch the process environment).
pub fn load(
    file: Option<&Path>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, SecretError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: path.display().to_string(),
            source,
        })?;
        return Secret::new(&text).ok_or_else(|| SecretError::Empty(path.display().to_string()));
    }
    match env(var) {
        Some(value) => Secret::new(&value).ok_or_else(|| SecretError::Empty(var.to_string())),
        None => Err(SecretError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_itself() {
        let s = Secret::new(" hunter2\n").expect("non-empty");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(Secret::new("  \n").is_none());
    }

    #[test]
    fn file_wins_over_environment() {
        let dir = std::env::temp_dir().join(format!("secret-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "from-file\n").expect("write");
        let env = |_: &str| Some("from-env".to_string());
        let none = |_: &str| None;
        assert_eq!(
            load(Some(&file), "X", &env).expect("ok").expose(),
            "from-file"
        );
        assert_eq!(load(None, "X", &env).expect("ok").expose(), "from-env");
        assert!(matches!(load(None, "X", &none), Err(SecretError::Missing)));
        let missing = dir.join("absent");
        assert!(matches!(
            load(Some(&missing), "X", &env),
            Err(SecretError::Read { .. })
        ));
        std::fs::write(&file, "\n").expect("write");
        assert!(matches!(
            load(Some(&file), "X", &env),
            Err(SecretError::Empty(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
