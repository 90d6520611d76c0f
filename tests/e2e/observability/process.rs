//! Child processes and temporary files that clean up after themselves.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::WAIT_LIMIT;

/// Runs `bin args files…` to completion (bounded) and fails the test unless it succeeds.
pub fn run_ok(bin: &Path, args: &[&str], files: &[PathBuf]) {
    let mut cmd = Command::new(bin);
    cmd.args(args).args(files).stdin(Stdio::null());
    let (ok, out) = run_bounded(cmd);
    assert!(ok, "{} {args:?} failed:\n{out}", bin.display());
}

fn run_bounded(mut cmd: Command) -> (bool, String) {
    let out_file = temp_path("promtool-out");
    let sink = fs::File::create(&out_file).expect("create output file");
    cmd.stdout(sink.try_clone().expect("clone file"))
        .stderr(sink);
    let mut child = ChildGuard(cmd.spawn().expect("spawn tool"));
    let deadline = Instant::now() + WAIT_LIMIT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = fs::read_to_string(&out_file).unwrap_or_default();
    let _ = fs::remove_file(&out_file);
    match status {
        Some(s) => (s.success(), out),
        None => (false, format!("timed out after {WAIT_LIMIT:?}\n{out}")),
    }
}

pub fn temp_path(what: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    std::env::temp_dir().join(format!("gce-{what}-{}-{nanos}", std::process::id()))
}

/// Kills (by PID) and reaps the child when dropped, so no test leaves a process behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
