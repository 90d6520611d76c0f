//! The file-system rules every state file operation follows: only regular files are read or
//! written, no path component the exporter creates is followed through a symbolic link, reads
//! are capped, new files are created exclusively with mode 0600, and a file is never renamed
//! over another one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most a state file or journal may hold; a larger one is refused as corrupt rather than
/// read until memory runs out. 64 MiB is about 200,000 workloads.
pub const READ_CAP: u64 = 64 << 20;

/// What kind of file system object stands at `path` when it is not a regular file, or `None`
/// when it is one or nothing is there. Looks at the path itself, not through a symbolic link.
pub fn not_regular(path: &Path) -> io::Result<Option<&'static str>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let t = meta.file_type();
    Ok(if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    })
}

/// Reads a regular file, at most [`READ_CAP`] bytes. `Ok(None)` if it does not exist. Opens
/// without following a symbolic link and without blocking on a FIFO, then checks what was
/// opened, so a file swapped after [`not_regular`] is refused too.
pub fn read_regular(path: &Path) -> io::Result<Option<String>> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    ensure_regular(&file)?;
    let mut text = String::new();
    (&mut file).take(READ_CAP + 1).read_to_string(&mut text)?;
    if text.len() as u64 > READ_CAP {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", READ_CAP >> 20),
        ));
    }
    Ok(Some(text))
}

/// Fails unless `file` is a regular file.
pub fn ensure_regular(file: &File) -> io::Result<()> {
    if file.metadata()?.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// Creates a new file that did not exist (`O_EXCL`: never one planted beforehand, never through
/// a symbolic link), mode 0600, for writing.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens `path` for appending, creating it with mode 0600 if missing; refuses a symbolic link
/// or anything but a regular file.
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    ensure_regular(&file)?;
    Ok(file)
}

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames `path` to `<path>.corrupt-<unix>` (then `-2`, `-3`, … while taken): never over an
/// existing file, so two set-asides in one second both keep their content.
pub fn set_aside(path: &Path, unix: u64) -> io::Result<PathBuf> {
    for n in 1..=1000u32 {
        let suffix = match n {
            1 => format!(".corrupt-{unix}"),
            n => format!(".corrupt-{unix}-{n}"),
        };
        let target = with_suffix(path, &suffix);
        // A hard link fails if the target exists, where rename would replace it.
        match fs::hard_link(path, &target) {
            Ok(()) => {
                fs::remove_file(path)?;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: rename after checking, which only a second
            // process racing for the same name could defeat.
            Err(_) if fs::symlink_metadata(&target).is_err() => {
                fs::rename(path, &target)?;
                return Ok(target);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free .corrupt-<time> name",
    ))
}

/// Fsyncs the directory, so that a rename or a new file in it survives a power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gce-files-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn kinds_other_than_regular_files_are_named() {
        let d = dir("kinds");
        let file = d.join("f");
        fs::write(&file, "x").expect("write");
        std::os::unix::fs::symlink(&file, d.join("link")).expect("symlink");
        assert_eq!(not_regular(&file).expect("stat"), None);
        assert_eq!(not_regular(&d.join("missing")).expect("stat"), None);
        assert_eq!(not_regular(&d).expect("stat"), Some("a directory"));
        assert_eq!(
            not_regular(&d.join("link")).expect("stat"),
            Some("a symbolic link")
        );
        assert_eq!(
            not_regular(Path::new("/dev/null")).expect("stat"),
            Some("a device")
        );
    }

    #[test]
    fn reads_refuse_links_and_devices_and_stop_at_the_cap() {
        let d = dir("reads");
        let file = d.join("f");
        fs::write(&file, "hello").expect("write");
        std::os::unix::fs::symlink(&file, d.join("link")).expect("symlink");
        assert_eq!(read_regular(&file).expect("read").as_deref(), Some("hello"));
        assert_eq!(read_regular(&d.join("missing")).expect("read"), None);
        assert!(read_regular(&d.join("link")).is_err());
        assert!(read_regular(Path::new("/dev/zero")).is_err());
        let big = d.join("big");
        File::create(&big)
            .and_then(|f| f.set_len(READ_CAP + 10))
            .expect("sparse file");
        let err = read_regular(&big).expect_err("over the cap");
        assert!(err.to_string().contains("MiB"), "{err}");
    }

    #[test]
    fn new_files_are_private_and_never_planted_ones() {
        let d = dir("create");
        let target = d.join("victim");
        fs::write(&target, "keep").expect("write");
        let planted = d.join("tmp");
        std::os::unix::fs::symlink(&target, &planted).expect("symlink");
        assert!(create_new(&planted).is_err(), "a planted link is refused");
        assert_eq!(fs::read_to_string(&target).expect("read"), "keep");
        let fresh = d.join("fresh");
        create_new(&fresh).expect("create");
        let mode = fs::metadata(&fresh).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(open_append(&planted).is_err(), "appends refuse links too");
    }

    #[test]
    fn set_asides_never_overwrite_each_other() {
        let d = dir("aside");
        let path = d.join("state.json");
        fs::write(&path, "first").expect("write");
        let a = set_aside(&path, 7).expect("aside");
        fs::write(&path, "second").expect("write");
        let b = set_aside(&path, 7).expect("aside");
        assert_ne!(a, b);
        assert_eq!(fs::read_to_string(a).expect("read"), "first");
        assert_eq!(fs::read_to_string(b).expect("read"), "second");
        assert!(!path.exists());
    }
}
