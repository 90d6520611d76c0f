//! Who a process is: its owner's user name (from `/proc/PID/status` and [`super::users`]) and
//! what its cgroup says ([`super::cgroup`]). Resolved once per PID by the
//! [`super::Attributor`]'s cache; the parsers are pure, the reader only touches files and NSS.

use std::path::{Path, PathBuf};

use super::cgroup::{self, CgroupInfo};
use super::users::Users;

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

/// Reads `<procfs>/PID/status` and `<procfs>/PID/cgroup`, and names the owner through
/// [`Users`] (NSS on the host, the root's `etc/passwd` otherwise).
pub struct ProcResolver {
    procfs: PathBuf,
    users: Users,
}

impl ProcResolver {
    /// A resolver over the host's `/proc` at `procfs` and its root filesystem at `rootfs`.
    pub fn new(procfs: PathBuf, rootfs: &Path) -> ProcResolver {
        ProcResolver {
            procfs,
            users: Users::new(rootfs),
        }
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
            user: uid.map_or_else(|| UNKNOWN_USER.to_string(), |u| self.users.name(u)),
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
        let mut r = ProcResolver::new(dir.join("proc"), &dir.join("root"));
        let id = r.resolve(77);
        assert_eq!(id.user, "bob");
        assert_eq!(id.cgroup.slurm_job.as_deref(), Some("9"));
        assert_eq!(r.resolve(78).user, UNKNOWN_USER);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
