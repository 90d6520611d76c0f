//! Apple Silicon and Intel Mac power through Apple's `powermetrics` (`--collector.powermetrics`).
//!
//! `powermetrics --samplers cpu_power,gpu_power -i <ms> -f plist` runs as a long-lived child
//! (it needs root, as powermetrics does) and writes one property list per interval: each
//! domain's average power over the `elapsed_ns` it timed ([`plist`]). The [`child`] supervisor
//! reads it on threads of its own and restarts it with backoff when it exits, garbles or goes
//! silent; each tick the backend hands the sampler the averages that arrived since the last
//! one, which the accounting core sums as average × interval (`energy::averages`).
//!
//! The domains are those of the first sample, waited for at start-up: `cpu`, `gpu` and `ane`
//! on Apple Silicon, `package` on Intel Macs. They are exported as host domains
//! (`gpu_host_*{domain=…}`), labelled `energy_source="integrated"`.
//!
//! Nothing here is macOS-only: on Linux the collector runs a stand-in program
//! (`--powermetrics.path`), which is how its process handling is tested.

pub mod child;
pub mod plist;

use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use child::{Launch, Stats, Supervisor};
use plist::{Domain, Sample};

use super::{
    Backend, Capabilities, ChildCounts, DeviceError, DeviceInfo, DeviceKind, Field, PowerAverage,
    Reading,
};
use crate::units::Watts;

/// How to run powermetrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The program.
    pub program: PathBuf,
    /// Its sampling interval (`-i`), the exporter's `--sample.interval`.
    pub interval: Duration,
}

impl Settings {
    /// The supervisor's launch: the command line and timings derived from the interval.
    pub fn launch(&self) -> Launch {
        let ms = self.interval.as_millis().max(1);
        Launch {
            program: self.program.clone(),
            args: [
                "--samplers",
                "cpu_power,gpu_power",
                "-i",
                &ms.to_string(),
                "-f",
                "plist",
            ]
            .map(String::from)
            .to_vec(),
            stall_after: self.stale_after(),
            first_backoff: self.interval.max(Duration::from_millis(100)),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// How long without a sample before the child is restarted and its domains' power is
    /// reported missing: ten intervals, at least 10 s.
    pub fn stale_after(&self) -> Duration {
        (self.interval * 10).max(Duration::from_secs(10))
    }

    /// How long start-up waits for the first sample: three intervals, at least 5 s.
    pub fn first_sample_timeout(&self) -> Duration {
        (self.interval * 3).max(Duration::from_secs(5))
    }
}

/// The collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum PowermetricsError {
    /// The supervisor thread could not be started.
    #[error("cannot start the powermetrics supervisor: {0}")]
    Thread(#[from] std::io::Error),
    /// No sample arrived in time.
    #[error(
        "no sample from {program} within {waited:?} (it needs root; last error output: {stderr})"
    )]
    NoSample {
        /// The program.
        program: String,
        /// How long start-up waited.
        waited: Duration,
        /// The last line it wrote to standard error, or `none`.
        stderr: String,
    },
}

/// The powermetrics domains being read.
pub struct PowermetricsBackend {
    devices: Vec<DeviceInfo>,
    domains: Vec<Domain>,
    /// Averages received but not yet handed to the sampler, per domain.
    pending: Vec<Vec<PowerAverage>>,
    /// The latest average per domain, shown as the domain's power while it is fresh.
    latest: Vec<Option<Watts>>,
    last_sample: Instant,
    stale_after: Duration,
    samples: mpsc::Receiver<Sample>,
    stats: Arc<Stats>,
    // Dropped last: stops the child.
    _supervisor: Supervisor,
}

impl PowermetricsBackend {
    /// Starts powermetrics and waits for its first sample, whose domains become the devices
    /// (its averages are accounted like every later one).
    pub fn start(settings: &Settings) -> Result<PowermetricsBackend, PowermetricsError> {
        PowermetricsBackend::open(
            settings.launch(),
            settings.first_sample_timeout(),
            settings.stale_after(),
        )
    }

    /// [`PowermetricsBackend::start`] with the launch and timings given.
    pub fn open(
        launch: Launch,
        first_sample: Duration,
        stale_after: Duration,
    ) -> Result<PowermetricsBackend, PowermetricsError> {
        let program = launch.program.display().to_string();
        let (tx, samples) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let supervisor = Supervisor::start(launch, tx, Arc::clone(&stats))?;
        let first =
            samples
                .recv_timeout(first_sample)
                .map_err(|_| PowermetricsError::NoSample {
                    program,
                    waited: first_sample,
                    stderr: stats.last_stderr().unwrap_or_else(|| "none".into()),
                })?;
        let domains: Vec<Domain> = first.power.iter().map(|(d, _)| *d).collect();
        let devices = domains.iter().map(|d| device(*d)).collect();
        let mut backend = PowermetricsBackend {
            devices,
            pending: vec![Vec::new(); domains.len()],
            latest: vec![None; domains.len()],
            domains,
            last_sample: Instant::now(),
            stale_after,
            samples,
            stats,
            _supervisor: supervisor,
        };
        backend.take(first);
        Ok(backend)
    }

    fn take(&mut self, sample: Sample) {
        self.last_sample = Instant::now();
        for (domain, power) in sample.power {
            if let Some(i) = self.domains.iter().position(|d| *d == domain) {
                self.pending[i].push(PowerAverage {
                    power,
                    over: sample.elapsed,
                });
                self.latest[i] = Some(power);
            }
        }
    }
}

fn device(domain: Domain) -> DeviceInfo {
    DeviceInfo {
        kind: DeviceKind::HostDomain,
        index: 0,
        uuid: format!("powermetrics-{}", domain.as_str()),
        name: domain.as_str().to_string(),
        caps: Capabilities {
            energy_counter: false,
            power: true,
            utilization: false,
            power_limit: false,
        },
        wraps_at_uj: None,
        channel: None,
    }
}

impl Backend for PowermetricsBackend {
    fn name(&self) -> &'static str {
        "powermetrics"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        while let Ok(sample) = self.samples.try_recv() {
            self.take(sample);
        }
        let (Some(pending), Some(latest)) =
            (self.pending.get_mut(position), self.latest.get(position))
        else {
            return Err(DeviceError::Lost(format!(
                "no powermetrics domain {position}"
            )));
        };
        let averages = std::mem::take(pending);
        if self.last_sample.elapsed() > self.stale_after {
            return Ok(Reading {
                failed: vec![Field::Power],
                averages,
                ..Reading::default()
            });
        }
        Ok(Reading {
            power: *latest,
            averages,
            ..Reading::default()
        })
    }

    fn reports_averages(&self) -> bool {
        true
    }

    fn child_counts(&self) -> Option<ChildCounts> {
        Some(self.stats.counts())
    }
}

#[cfg(test)]
mod tests;
