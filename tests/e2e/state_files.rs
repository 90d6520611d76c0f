//! `--state.file` is a file, and only that file (with its journal and temp files) is touched:
//! anything else is refused at start with exit 2 naming the flag, nothing is moved or written
//! before start-up has succeeded, two exporters never share one ledger, and the journal stays
//! bounded whatever the flush interval.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{run_to_exit, temp_file, Exporter};

fn dir() -> PathBuf {
    temp_file("placeholder", "")
        .parent()
        .expect("dir")
        .to_path_buf()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn refused(state: &Path, kind: &str) {
    let flag = format!("--state.file={}", state.display());
    let (status, out) = run_to_exit(&["--demo", "--web.listen-address=127.0.0.1:0", &flag], &[]);
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(
        out.contains("--state.file") && out.contains(kind),
        "names the flag and says what it found: {out}"
    );
}

#[test]
fn a_directory_a_fifo_a_device_or_a_link_is_refused_untouched() {
    let d = dir();
    let as_dir = d.join("state-dir");
    std::fs::create_dir(&as_dir).expect("mkdir");
    std::fs::write(as_dir.join("inside"), "keep").expect("write");
    refused(&as_dir, "a directory");

    let fifo = d.join("state-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    refused(&fifo, "a FIFO");

    refused(Path::new("/dev/null"), "a device");

    let target = d.join("elsewhere.json");
    std::fs::write(&target, "keep").expect("write");
    let link = d.join("state-link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    refused(&link, "a symbolic link");

    let blocked = d.join("blocked.json");
    std::fs::create_dir(d.join("blocked.json.journal")).expect("mkdir");
    refused(&blocked, "its journal");

    assert_eq!(
        entries(&d),
        [
            "blocked.json.journal",
            "elsewhere.json",
            "placeholder",
            "state-dir",
            "state-fifo",
            "state-link.json"
        ]
    );
    assert_eq!(entries(&as_dir), ["inside"]);
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
    assert!(Path::new("/dev/null").exists());
}

/// A corrupt ledger is only moved aside once the exporter is serving: when start-up fails
/// (here, the address is taken), the file stays exactly as it was and nothing is created.
#[test]
fn nothing_is_moved_or_written_when_start_up_fails() {
    let d = dir();
    let state = d.join("state.json");
    std::fs::write(&state, "{ torn").expect("write");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("--web.listen-address={}", taken.local_addr().expect("addr"));
    let flag = format!("--state.file={}", state.display());
    let (status, out) = run_to_exit(&["--demo", &addr, &flag], &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("cannot listen"), "{out}");
    assert_eq!(entries(&d), ["placeholder", "state.json"]);
    assert_eq!(std::fs::read_to_string(&state).expect("read"), "{ torn");
}

/// A second exporter pointed at the same ledger refuses to start; the first goes on.
#[test]
fn two_exporters_never_share_a_ledger() {
    let d = dir();
    let flag = format!("--state.file={}", d.join("state.json").display());
    let first = Exporter::start(&["--demo", &flag], &[]);
    first.wait_ready();
    let (status, out) = run_to_exit(&["--demo", "--web.listen-address=127.0.0.1:0", &flag], &[]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("--state.file") && out.contains("locked by another process"),
        "{out}"
    );
    assert_eq!(
        first
            .scrape()
            .value("gpu_carbon_exporter_state_counters_held", &[]),
        0.0
    );
    assert_eq!(first.terminate().code(), Some(0));
}

/// The ledger's files are private to the exporter's user.
#[test]
fn ledger_files_are_created_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let state = d.join("state.json");
    let flag = format!("--state.file={}", state.display());
    let e = Exporter::start(&["--demo", &flag], &[]);
    e.wait_ready();
    assert_eq!(e.terminate().code(), Some(0));
    for f in [state.clone(), d.join("state.json.journal")] {
        let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

/// Between rewrites of the state file the journal grows by a line a sample; past 4 MiB the
/// next commit rewrites the state file and empties the journal, whatever
/// `--state.flush-interval` says, so the ledger's disk use stays bounded.
#[test]
fn the_journal_is_compacted_past_4_mib_whatever_the_flush_interval() {
    const MAX_JOURNAL: u64 = 4 << 20;
    let d = dir().join("compaction");
    std::fs::create_dir_all(&d).expect("mkdir");
    let state = d.join("state.json");
    let journal = d.join("state.json.journal");
    let flag = format!("--state.file={}", state.display());
    // 64 GPUs change every sample: tens of kB a line, so 4 MiB within seconds.
    let e = Exporter::start(
        &[
            "--demo",
            "--simulated.gpus=64",
            "--sample.interval=50ms",
            "--state.flush-interval=1h",
            &flag,
        ],
        &[],
    );
    e.wait_ready();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let (mut largest, mut shrank, mut written) = (0, 0, 0.0);
    let mut last = 0;
    while written < 3.0 * MAX_JOURNAL as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {written} bytes written in 90 s"
        );
        let len = std::fs::metadata(&journal).map_or(0, |m| m.len());
        largest = largest.max(len);
        shrank += u32::from(len < last);
        last = len;
        written = e
            .scrape()
            .value("gpu_carbon_exporter_state_written_bytes_total", &[]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(shrank >= 1, "the journal was never emptied");
    // At most one line past the limit: the line that crossed it.
    assert!(
        largest <= MAX_JOURNAL + (512 << 10),
        "journal reached {largest} bytes"
    );
    assert!(
        largest > MAX_JOURNAL / 2,
        "journal reached only {largest} bytes"
    );
    assert_eq!(e.terminate().code(), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}
