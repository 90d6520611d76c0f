//! Who a process is: its owner's user name (from `/proc/PID/status` and the host's passwd
//! database) and what its cgroup says ([`super::cgroup`]). Resolved once per PID by the
//! [`super::Attributor`]'s cache; the parsers are pure, the reader only touches files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::cgroup::{self, CgroupInfo};

/// The owner value of a process whose `/proc/PID/status` could not be read (it ended, or the
/// exporter lacks permission: see the permissions in docs/deployment.md).
pub const UNKNOWN_USER: &str = "unknown";

/// What is known about one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// User name, the numeric UID where passwd has no entry, or [`UNKNOWN_USER`].
    pub user: String,
    /// What its cgroup says.
    pub cgroup: CgroupInfo,
}

/// Finds the identity of a PID. Implementations may block on file reads; they run on the
/// sampler thread.
pub trait Resolver: Send {
    /// The identity of `pid`.
    fn resolve(&mut self, pid: u32) -> Identity;
}

/// The real UID from the `Uid:` line of `/proc/PID/status` (real, effective, saved, fs).
pub fn status_uid(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

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

/// How often an unknown UID may trigger a re-read of passwd (users added after start).
const PASSWD_RELOAD: Duration = Duration::from_secs(30);

/// Reads `<procfs>/PID/status`, `<procfs>/PID/cgroup` and `<rootfs>/etc/passwd`.
pub struct ProcResolver {
    procfs: PathBuf,
    passwd: PathBuf,
    users: HashMap<u32, String>,
    loaded_at: Option<Instant>,
}

impl ProcResolver {
    /// A resolver over the host's `/proc` at `procfs` and its root filesystem at `rootfs`.
    pub fn new(procfs: PathBuf, rootfs: PathBuf) -> ProcResolver {
        ProcResolver {
            procfs,
            passwd: rootfs.join("etc/passwd"),
            users: HashMap::new(),
            loaded_at: None,
        }
    }

    fn user_name(&mut self, uid: u32) -> String {
        let stale = self
            .loaded_at
            .is_none_or(|at| at.elapsed() >= PASSWD_RELOAD);
        if !self.users.contains_key(&uid) && stale {
            self.users = std::fs::read_to_string(&self.passwd)
                .map(|t| parse_passwd(&t))
                .unwrap_or_default();
            self.loaded_at = Some(Instant::now());
        }
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

impl Resolver for ProcResolver {
    fn resolve(&mut self, pid: u32) -> Identity {
        let dir = self.procfs.join(pid.to_string());
        let uid = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|t| status_uid(&t));
        let cgroup = std::fs::read_to_string(dir.join("cgroup"))
            .map(|t| cgroup::parse(&t))
            .unwrap_or_default();
        Identity {
            user: uid.map_or_else(|| UNKNOWN_USER.to_string(), |u| self.user_name(u)),
            cgroup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_from_status() {
        let status = "Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nPid:\t4242\nPPid:\t1\nUid:\t1001\t1001\t1001\t1001\nGid:\t100\t100\t100\t100\n";
        assert_eq!(status_uid(status), Some(1001));
        assert_eq!(status_uid("Name:\tx\n"), None);
        assert_eq!(status_uid("Uid:\tabc\n"), None);
    }

    #[test]
    fn passwd_first_entry_wins_and_junk_is_skipped() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\nalice:x:1001:100:Alice:/home/alice:/bin/zsh\nalias:x:1001:100::/:/bin/sh\nbroken\n:x:5:5::/:\n";
        let users = parse_passwd(text);
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&1001).map(String::as_str), Some("alice"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn resolver_reads_a_fake_tree() {
        let dir = std::env::temp_dir().join(format!("gce-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc/77")).expect("mkdir");
        std::fs::create_dir_all(dir.join("root/etc")).expect("mkdir");
        std::fs::write(dir.join("proc/77/status"), "Uid:\t1002\t1002\t1002\t1002\n").expect("w");
        std::fs::write(
            dir.join("proc/77/cgroup"),
            "0::/slurm/uid_1002/job_9/step_0\n",
        )
        .expect("w");
        std::fs::write(dir.join("root/etc/passwd"), "bob:x:1002:1002::/:/bin/sh\n").expect("w");
        let mut r = ProcResolver::new(dir.join("proc"), dir.join("root"));
        let id = r.resolve(77);
        assert_eq!(id.user, "bob");
        assert_eq!(id.cgroup.slurm_job.as_deref(), Some("9"));
        assert_eq!(r.resolve(78).user, UNKNOWN_USER);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
