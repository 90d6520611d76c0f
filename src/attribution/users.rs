//! UID → user name, as the host defines its users.
//!
//! - On the host itself (`--path.rootfs=/`): through NSS (`getpwuid_r`), so users from LDAP,
//!   SSSD or NIS are named as `id` names them, which is how HPC sites define users. NSS may
//!   block (a slow directory server), so lookups run on a thread of their own and the sampler
//!   waits at most [`LOOKUP_WAIT`]; a lookup that takes longer still lands in the cache for the
//!   next process of that user, and the late one is labelled with its numeric UID.
//! - With another root (a container's view of the host at `/host`): that tree's `etc/passwd`,
//!   as NSS in this process would answer for the container's own files, not the host's.
//!
//! Either way names are cached: found ones for [`FOUND_TTL`], missing ones for [`MISSING_TTL`]
//! (so a user added after start is named within that), and the numeric UID is the name only
//! when both sources have no entry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

/// How long a name found stays cached (renames are rare; a directory outage shouldn't rename
/// anybody for this long).
pub const FOUND_TTL: Duration = Duration::from_secs(600);
/// How long "no such user" stays cached.
pub const MISSING_TTL: Duration = Duration::from_secs(30);
/// The longest the sampler waits for one NSS lookup.
pub const LOOKUP_WAIT: Duration = Duration::from_millis(250);

/// UID → name from passwd text (`name:password:uid:gid:gecos:home:shell`); the first entry of a
/// UID wins, as in `getpwuid`.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        if let Ok(uid) = uid.trim().parse() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

/// A cached answer: the name (`None`: no such user) and when it was looked up.
type Cached = (Option<String>, Instant);

/// Names users by UID.
pub struct Users {
    source: Source,
    cache: Arc<Mutex<HashMap<u32, Cached>>>,
}

enum Source {
    /// `getpwuid_r` on the lookup thread; requests carry where to answer.
    Nss(mpsc::Sender<(u32, mpsc::Sender<()>)>),
    /// A passwd file, read whole when an unknown UID is asked for and the copy is stale.
    File {
        path: PathBuf,
        users: HashMap<u32, String>,
        loaded_at: Option<Instant>,
    },
}

impl Users {
    /// Users of the host whose root filesystem is at `rootfs`: NSS when that is `/`, else its
    /// `etc/passwd`.
    pub fn new(rootfs: &Path) -> Users {
        let cache = Arc::new(Mutex::new(HashMap::new()));
        let is_host = rootfs.canonicalize().is_ok_and(|p| p == Path::new("/"));
        let source = if is_host {
            match spawn_lookups(cache.clone()) {
                Ok(tx) => Source::Nss(tx),
                Err(err) => {
                    warn!(error = %err, "Can't start the user lookup thread; reading /etc/passwd instead of NSS");
                    file_source(rootfs)
                }
            }
        } else {
            file_source(rootfs)
        };
        Users { source, cache }
    }

    /// Whether names come from NSS.
    pub fn uses_nss(&self) -> bool {
        matches!(self.source, Source::Nss(_))
    }

    /// The name of `uid`, or the UID as text when no source knows it.
    pub fn name(&mut self, uid: u32) -> String {
        self.lookup(uid).unwrap_or_else(|| uid.to_string())
    }

    fn cached(&self, uid: u32) -> Option<Option<String>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (name, at) = cache.get(&uid)?;
        let ttl = if name.is_some() {
            FOUND_TTL
        } else {
            MISSING_TTL
        };
        (at.elapsed() < ttl).then(|| name.clone())
    }

    fn lookup(&mut self, uid: u32) -> Option<String> {
        if let Some(answer) = self.cached(uid) {
            return answer;
        }
        match &mut self.source {
            Source::Nss(requests) => {
                let (tx, rx) = mpsc::channel();
                if requests.send((uid, tx)).is_err() || rx.recv_timeout(LOOKUP_WAIT).is_err() {
                    warn!(uid, wait = ?LOOKUP_WAIT, "NSS user lookup did not answer in time; labelled by UID (later processes get the name once it answers)");
                    return None;
                }
                self.cached(uid).flatten()
            }
            Source::File {
                path,
                users,
                loaded_at,
            } => {
                if loaded_at.is_none_or(|at| at.elapsed() >= MISSING_TTL) {
                    *users = std::fs::read_to_string(&*path)
                        .map(|t| parse_passwd(&t))
                        .unwrap_or_default();
                    *loaded_at = Some(Instant::now());
                }
                let name = users.get(&uid).cloned();
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(uid, (name.clone(), Instant::now()));
                name
            }
        }
    }
}

fn file_source(rootfs: &Path) -> Source {
    Source::File {
        path: rootfs.join("etc/passwd"),
        users: HashMap::new(),
        loaded_at: None,
    }
}

/// Starts the thread that asks NSS; it ends when the [`Users`] holding its sender is dropped.
fn spawn_lookups(
    cache: Arc<Mutex<HashMap<u32, Cached>>>,
) -> std::io::Result<mpsc::Sender<(u32, mpsc::Sender<()>)>> {
    let (tx, rx) = mpsc::channel::<(u32, mpsc::Sender<()>)>();
    std::thread::Builder::new()
        .name("nss-users".into())
        .spawn(move || {
            for (uid, answer) in rx {
                let name = getpwuid(uid);
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uid, (name, Instant::now()));
                let _ = answer.send(());
            }
        })?;
    Ok(tx)
}

/// The user name NSS gives `uid`, `None` if it has no entry or the lookup failed.
fn getpwuid(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain data that getpwuid_r fills; all-zero is a valid value for it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `pwd` and `result` are live locals, and
        // `buf` is a live buffer of `buf.len()` bytes that the strings in `pwd` point into.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`, which
        // outlives this borrow.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_str().ok().map(str::to_string);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_first_entry_wins_and_junk_is_skipped() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\nalice:x:1001:100:Alice:/home/alice:/bin/zsh\nalias:x:1001:100::/:/bin/sh\nbroken\n:x:5:5::/:\n";
        let users = parse_passwd(text);
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&1001).map(String::as_str), Some("alice"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn the_host_root_asks_nss() {
        let mut users = Users::new(Path::new("/"));
        assert!(users.uses_nss());
        assert_eq!(users.name(0), "root");
        assert_eq!(users.name(4_000_000_000), "4000000000");
    }

    #[test]
    fn another_root_reads_its_passwd_and_sees_users_added_later() {
        let dir = std::env::temp_dir().join(format!("gce-users-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
        std::fs::write(dir.join("etc/passwd"), "bob:x:1002:1002::/:/bin/sh\n").expect("w");
        let mut users = Users::new(&dir);
        assert!(!users.uses_nss());
        assert_eq!(users.name(1002), "bob");
        assert_eq!(users.name(1003), "1003");
        std::fs::write(dir.join("etc/passwd"), "carl:x:1003:1003::/:/bin/sh\n").expect("w");
        assert_eq!(users.name(1003), "1003", "a miss is cached for MISSING_TTL");
        users.cache.lock().expect("lock").clear();
        if let Source::File { loaded_at, .. } = &mut users.source {
            *loaded_at = None;
        }
        assert_eq!(users.name(1003), "carl");
        assert_eq!(users.name(1002), "1002", "gone from the re-read file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
