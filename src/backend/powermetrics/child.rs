//! The `powermetrics` child process, supervised on a thread of its own: started, read, and
//! restarted with backoff when it exits, writes garbage or goes silent. The sampler never waits
//! on it: parsed samples go into a channel that the backend drains at each tick, so a sample
//! that was read is never lost, whatever happens to the child afterwards.
//!
//! Output is split at NUL bytes (powermetrics ends each plist sample with one). A sample that
//! can't be parsed is skipped and counted; [`GARBLED_IN_A_ROW`] of them in a row, or a sample
//! larger than [`MAX_SAMPLE_BYTES`], and the child is restarted. The child runs in a process
//! group of its own, which is killed whole, so nothing it started outlives it.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::plist::{parse, Sample};
use crate::backend::ChildCounts;

/// Malformed samples in a row after which the child is restarted.
pub const GARBLED_IN_A_ROW: u32 = 3;
/// The largest sample accepted; a child writing more without a NUL is restarted.
pub const MAX_SAMPLE_BYTES: usize = 4 << 20;
/// Lines of a child's standard error that are logged (the rest are dropped).
const STDERR_LINES: usize = 20;

/// What to run, and how patiently.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The program (`/usr/bin/powermetrics`, or a stand-in for tests).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// A child that writes nothing for this long is restarted.
    pub stall_after: Duration,
    /// The first wait before a restart; doubled for each restart in a row, up to
    /// `max_backoff`, and back to this once a child has run longer than `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait before a restart.
    pub max_backoff: Duration,
}

/// Counts shared between the supervisor and the backend.
#[derive(Debug, Default)]
pub struct Stats {
    exited: AtomicU64,
    garbled: AtomicU64,
    stalled: AtomicU64,
    malformed: AtomicU64,
    last_stderr: Mutex<Option<String>>,
}

impl Stats {
    /// The counts now.
    pub fn counts(&self) -> ChildCounts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ChildCounts {
            exited: get(&self.exited),
            garbled: get(&self.garbled),
            stalled: get(&self.stalled),
            malformed: get(&self.malformed),
        }
    }

    /// The last line a child wrote to its standard error, if any.
    pub fn last_stderr(&self) -> Option<String> {
        self.last_stderr.lock().ok().and_then(|l| l.clone())
    }
}

/// Splits a byte stream into NUL-terminated frames.
#[derive(Debug, Default)]
pub struct Frames {
    partial: Vec<u8>,
}

/// A frame grew past [`MAX_SAMPLE_BYTES`] without a NUL.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversize;

impl Frames {
    /// Adds `bytes`, calling `each` with every frame they complete.
    pub fn push(&mut self, bytes: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), Oversize> {
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|b| *b == 0) {
            self.partial.extend_from_slice(&rest[..at]);
            each(&self.partial);
            self.partial.clear();
            rest = &rest[at + 1..];
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_SAMPLE_BYTES {
            return Err(Oversize);
        }
        Ok(())
    }

    /// What is left at the end of the stream (a sample cut short), unless only whitespace.
    pub fn rest(&self) -> Option<&[u8]> {
        Some(self.partial.as_slice()).filter(|p| !p.trim_ascii().is_empty())
    }
}

/// What the reader of one child saw.
enum Seen {
    Sample(Sample),
    Malformed(String),
    Oversize,
    End,
}

/// A message to the supervisor: from the reader of child number `.0`, or the stop signal.
enum Message {
    Child(u64, Seen),
    Stop,
}

/// Why a child was given up on.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Exited,
    Garbled,
    Stalled,
    Stop,
}

/// The supervisor thread; stopped (and its child killed) when dropped.
pub struct Supervisor {
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts supervising `launch`, sending every parsed sample to `samples`.
    pub fn start(
        launch: Launch,
        samples: mpsc::Sender<Sample>,
        stats: Arc<Stats>,
    ) -> std::io::Result<Supervisor> {
        let (tx, rx) = mpsc::channel();
        let own = tx.clone();
        let thread = std::thread::Builder::new()
            .name("powermetrics".into())
            .spawn(move || supervise(&launch, &own, &rx, &samples, &stats))?;
        Ok(Supervisor {
            stop: tx,
            thread: Some(thread),
        })
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                warn!("powermetrics supervisor panicked");
            }
        }
    }
}

fn supervise(
    launch: &Launch,
    tx: &mpsc::Sender<Message>,
    rx: &mpsc::Receiver<Message>,
    samples: &mpsc::Sender<Sample>,
    stats: &Arc<Stats>,
) {
    let mut backoff = launch.first_backoff;
    for generation in 0.. {
        let started = Instant::now();
        let ended = match spawn(launch, generation, tx, stats) {
            Ok(mut child) => {
                let ended = watch(launch, generation, rx, samples, stats);
                kill(&mut child);
                ended
            }
            Err(e) => {
                warn!(program = %launch.program.display(), error = %e, "Could not start powermetrics");
                Ended::Exited
            }
        };
        let counter = match ended {
            Ended::Stop => return,
            Ended::Exited => &stats.exited,
            Ended::Garbled => &stats.garbled,
            Ended::Stalled => &stats.stalled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        backoff = if started.elapsed() > launch.max_backoff {
            launch.first_backoff
        } else {
            backoff
        };
        warn!(reason = ?ended, after = ?backoff, "powermetrics restarting; samples already read are kept");
        if wait(rx, backoff) {
            return;
        }
        backoff = (backoff * 2).min(launch.max_backoff);
    }
}

/// Waits `backoff`; true if told to stop meanwhile.
fn wait(rx: &mpsc::Receiver<Message>, backoff: Duration) -> bool {
    let until = Instant::now() + backoff;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            // A reader of an earlier child, still draining.
            Ok(Message::Child(..)) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => return false,
        }
    }
}

/// Follows child `generation` until it ends, forwarding its samples.
fn watch(
    launch: &Launch,
    generation: u64,
    rx: &mpsc::Receiver<Message>,
    samples: &mpsc::Sender<Sample>,
    stats: &Stats,
) -> Ended {
    let mut in_a_row = 0;
    loop {
        let seen = match rx.recv_timeout(launch.stall_after) {
            Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ended::Stop,
            Err(mpsc::RecvTimeoutError::Timeout) => return Ended::Stalled,
            Ok(Message::Child(g, seen)) if g == generation => seen,
            Ok(Message::Child(..)) => continue,
        };
        match seen {
            Seen::Sample(s) => {
                in_a_row = 0;
                if samples.send(s).is_err() {
                    return Ended::Stop;
                }
            }
            Seen::Malformed(why) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                in_a_row += 1;
                warn!(error = %why, "Skipped a powermetrics sample that could not be parsed");
                if in_a_row >= GARBLED_IN_A_ROW {
                    return Ended::Garbled;
                }
            }
            Seen::Oversize => return Ended::Garbled,
            Seen::End => return Ended::Exited,
        }
    }
}

fn spawn(
    launch: &Launch,
    generation: u64,
    tx: &mpsc::Sender<Message>,
    stats: &Arc<Stats>,
) -> std::io::Result<Child> {
    let mut child = Command::new(&launch.program)
        .args(&launch.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    debug!(pid = child.id(), generation, "powermetrics started");
    if let Err(e) = follow(&mut child, generation, tx, stats) {
        kill(&mut child);
        return Err(e);
    }
    Ok(child)
}

/// Starts the threads that read the child's standard output (samples) and error (logged; the
/// last line kept for a failed start's message).
fn follow(
    child: &mut Child,
    generation: u64,
    tx: &mpsc::Sender<Message>,
    stats: &Arc<Stats>,
) -> std::io::Result<()> {
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("powermetrics-out".into())
            .spawn(move || read(out, generation, &tx))?;
    }
    if let Some(err) = child.stderr.take() {
        let stats = Arc::clone(stats);
        std::thread::Builder::new()
            .name("powermetrics-err".into())
            .spawn(move || {
                let lines = BufReader::new(err).lines().map_while(Result::ok);
                for (n, line) in lines.enumerate() {
                    if n < STDERR_LINES {
                        warn!(line = %line, "powermetrics wrote to standard error");
                    }
                    if let Ok(mut l) = stats.last_stderr.lock() {
                        *l = Some(line);
                    }
                }
            })?;
    }
    Ok(())
}

/// Reads a child's standard output to its end.
fn read(mut out: impl Read, generation: u64, tx: &mpsc::Sender<Message>) {
    let send = |seen| tx.send(Message::Child(generation, seen)).is_ok();
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut open = true;
        let pushed = frames.push(&buf[..n], |frame| {
            if frame.trim_ascii().is_empty() {
                return;
            }
            let seen = match parse(frame) {
                Ok(s) => Seen::Sample(s),
                Err(e) => Seen::Malformed(e.to_string()),
            };
            open &= send(seen);
        });
        if pushed.is_err() {
            send(Seen::Oversize);
            return;
        }
        if !open {
            return;
        }
    }
    if frames.rest().is_some() {
        send(Seen::Malformed(
            "sample cut short at the end of the output".into(),
        ));
    }
    send(Seen::End);
}

/// Kills the child's whole process group and reaps the child.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads (it was
        // started with process_group(0)); it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
