//! The devices part of `check`: open every enabled collector as the exporter would, sample
//! each device at `--sample.interval` for the check's duration, and report per device which
//! readings work and how its energy counter compares with its integrated power readings
//! (the same comparison as `gpu_energy_discrepancy_ratio`, over the whole check).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mig::MigProbe;
use super::report::{Section, Status};
use crate::backend::{Backend, DeviceError, DeviceInfo, DeviceKind, Field, Reading};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::energy::{EnergySource, Factors, Ledger};
use crate::sampler::sources_for;
use crate::startup::open_collectors;
use crate::units::{GramsPerKwh, Joules};

/// Largest disagreement between counter and integrated power (either way) that passes: the
/// threshold of the `GpuEnergyCounterDisagrees` alert.
pub const LIMIT: f64 = 0.1;

/// How many readings of one kind were taken and how many failed.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    got: u32,
    failed: u32,
}

/// One device over the check.
struct Probe {
    ledger: Ledger,
    samples: u32,
    unreadable: u32,
    last_error: Option<String>,
    power: Count,
    energy: Count,
    utilization: Count,
    processes_listed: u32,
    most_processes: usize,
    implausible: u32,
    mig: MigProbe,
}

impl Probe {
    fn new(source: EnergySource, max_gap: Duration) -> Probe {
        Probe {
            ledger: Ledger::new(source, max_gap),
            samples: 0,
            unreadable: 0,
            last_error: None,
            power: Count::default(),
            energy: Count::default(),
            utilization: Count::default(),
            processes_listed: 0,
            most_processes: 0,
            implausible: 0,
            mig: MigProbe::default(),
        }
    }

    fn record(&mut self, at: Duration, result: Result<Reading, DeviceError>) {
        self.samples += 1;
        let reading = match result {
            Ok(r) => r,
            Err(e) => {
                self.unreadable += 1;
                self.last_error = Some(e.to_string());
                return;
            }
        };
        let failed = |f| reading.failed.contains(&f);
        tally(
            &mut self.power,
            reading.power.is_some(),
            failed(Field::Power),
        );
        tally(
            &mut self.energy,
            reading.energy_uj.is_some(),
            failed(Field::Energy),
        );
        tally(
            &mut self.utilization,
            reading.utilization.is_some(),
            failed(Field::Utilization),
        );
        self.mig.record(reading.mig.as_ref());
        if let Some(list) = &reading.processes {
            self.processes_listed += 1;
            self.most_processes = self.most_processes.max(list.len());
        }
        let factors = Factors {
            pue: 1.0,
            intensity: GramsPerKwh(0.0),
        };
        let out = self.ledger.observe(at, &reading, factors);
        self.implausible += u32::from(out.implausible_power) + u32::from(out.implausible_energy);
    }
}

fn tally(count: &mut Count, got: bool, failed: bool) {
    count.got += u32::from(got);
    count.failed += u32::from(failed);
}

/// Samples every device of every enabled collector for `duration`; one section per device
/// (or one naming the collector that could not start).
pub fn check(config: &Config, duration: Duration) -> Vec<Section> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let (mut backends, collectors) = match open_collectors(&config.sources, Arc::clone(&clock)) {
        Ok(opened) => opened,
        Err(e) => {
            return vec![Section::new("devices").with("collectors", Status::Problem, e.to_string())]
        }
    };
    let mut sections = Vec::new();
    for c in collectors.iter().filter(|c| !c.up) {
        sections.push(Section::new(format!("collector {}", c.name)).with(
            "start",
            Status::Problem,
            "could not start (the log above says why)",
        ));
    }
    let max_gap = (config.sample_interval * 5).max(Duration::from_secs(5));
    let host = config
        .sources
        .host_estimate
        .as_ref()
        .map(|h| h.settings)
        .unwrap_or_default();
    let mut probes: Vec<Vec<Probe>> = backends
        .iter_mut()
        .map(|b| {
            b.watch_processes();
            sources_for(b.as_ref(), &config.sources.estimate, &host)
                .into_iter()
                .map(|source| Probe::new(source, max_gap))
                .collect()
        })
        .collect();
    if probes.iter().all(Vec::is_empty) {
        sections.push(Section::new("devices").with(
            "found",
            Status::Problem,
            "no device: enable a collector that finds one (--collector.*)",
        ));
        return sections;
    }
    sample(
        &mut backends,
        &mut probes,
        clock.as_ref(),
        config.sample_interval,
        duration,
    );
    let attribution = config.attribution.is_some();
    for (backend, probes) in backends.iter().zip(&probes) {
        for (info, probe) in backend.devices().iter().zip(probes) {
            sections.push(describe(backend.name(), info, probe, attribution));
        }
    }
    sections
}

/// Reads every device once now and then every `interval` until `duration` has passed.
fn sample(
    backends: &mut [Box<dyn Backend>],
    probes: &mut [Vec<Probe>],
    clock: &dyn Clock,
    interval: Duration,
    duration: Duration,
) {
    let ticks = (duration.as_secs_f64() / interval.as_secs_f64())
        .floor()
        .max(1.0) as u32;
    let start = Instant::now();
    for tick in 0..=ticks {
        if let Some(wait) = (start + interval * tick).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at = clock.now().mono;
        for (backend, probes) in backends.iter_mut().zip(probes.iter_mut()) {
            for (position, probe) in probes.iter_mut().enumerate() {
                probe.record(at, backend.read(position));
            }
        }
    }
}

fn title(collector: &str, info: &DeviceInfo) -> String {
    match info.kind {
        DeviceKind::Gpu => format!(
            "GPU {} {} {} ({collector})",
            info.index, info.name, info.uuid
        ),
        DeviceKind::HostDomain => format!("host domain {} ({collector})", info.name),
    }
}

fn describe(collector: &str, info: &DeviceInfo, p: &Probe, attribution: bool) -> Section {
    let mut s = Section::new(title(collector, info));
    let n = p.samples;
    if p.unreadable > 0 {
        let why = p.last_error.as_deref().unwrap_or("unknown");
        s.add(
            "device",
            Status::Problem,
            format!(
                "unreadable in {} of {n} samples (last: {why})",
                p.unreadable
            ),
        );
    }
    let caps = info.caps;
    capability(&mut s, "energy counter", caps.energy_counter, p.energy, n);
    capability(&mut s, "power", caps.power, p.power, n);
    capability(&mut s, "utilization", caps.utilization, p.utilization, n);
    if info.kind == DeviceKind::Gpu {
        processes(&mut s, collector, p, attribution);
        if collector == "nvml" {
            p.mig.report(&mut s, n - p.unreadable);
        }
    }
    if p.implausible > 0 {
        s.add(
            "plausibility",
            Status::Problem,
            format!("{} impossible readings rejected", p.implausible),
        );
    }
    energy(&mut s, p);
    s
}

fn capability(s: &mut Section, what: &str, supported: bool, c: Count, samples: u32) {
    if !supported {
        s.add(what, Status::Note, "not supported by this device");
    } else if c.failed > 0 || c.got == 0 {
        s.add(
            what,
            Status::Problem,
            format!("{} of {samples} readings failed", samples - c.got),
        );
    } else {
        s.add(what, Status::Ok, format!("{} of {samples} readings", c.got));
    }
}

fn processes(s: &mut Section, collector: &str, p: &Probe, attribution: bool) {
    let n = p.samples - p.unreadable;
    let (status, detail) = if p.processes_listed == n && n > 0 {
        let most = match p.most_processes {
            0 => "none running".to_string(),
            most => format!("at most {most} at once"),
        };
        (Status::Ok, format!("listed in {n} of {n} samples ({most})"))
    } else if p.processes_listed > 0 {
        let listed = p.processes_listed;
        (
            Status::Problem,
            format!("listed in {listed} of {n} samples"),
        )
    } else if !matches!(collector, "nvml" | "simulated") {
        let why = format!("the {collector} collector does not list them");
        (Status::Note, format!("{why}: its energy is not attributed"))
    } else if attribution {
        let why = "never listed, but --collector.attribution needs them";
        (Status::Problem, why.to_string())
    } else {
        (Status::Note, "never listed".to_string())
    };
    s.add("processes", status, detail);
}

fn energy(s: &mut Section, p: &Probe) {
    let total = p.ledger.totals().energy;
    match p.ledger.source() {
        EnergySource::Counter { .. } => counter_vs_power(s, p),
        EnergySource::Integrated => s.add(
            "energy",
            Status::Ok,
            format!(
                "{} from integrated power readings (no counter to compare with)",
                joules(total)
            ),
        ),
        EnergySource::Averaged => s.add(
            "energy",
            Status::Ok,
            format!(
                "{} from power averages the device timed itself (powermetrics)",
                joules(total)
            ),
        ),
        EnergySource::Estimated(_) => s.add(
            "energy",
            Status::Note,
            format!(
                "{} estimated from utilization: a power model, not a measurement",
                joules(total)
            ),
        ),
        EnergySource::Modelled(_) => s.add(
            "energy",
            Status::Note,
            format!(
                "{} estimated by the host model (Cloud Carbon Footprint): not a measurement",
                joules(total)
            ),
        ),
        EnergySource::Unavailable => s.add(
            "energy",
            Status::Problem,
            "no energy figure: no counter, no power reading and no power model for this device",
        ),
    }
}

fn counter_vs_power(s: &mut Section, p: &Probe) {
    let compared = p.ledger.discrepancy().comparison();
    let Some((c, ratio)) = compared.and_then(|c| c.ratio().map(|r| (c, r))) else {
        let why = if p.power.got == 0 {
            "no power reading to compare with"
        } else {
            "no interval with a counter step between two power readings"
        };
        s.add(
            "energy",
            Status::Note,
            format!("counter only: {} ({why})", joules(p.ledger.totals().energy)),
        );
        return;
    };
    let detail = format!(
        "counter {}, integrated power {} over {:.1} s: {:+.1} % (limit ±{:.0} %)",
        joules(c.counter),
        joules(c.integrated),
        c.covered.as_secs_f64(),
        // Rounded to what is printed, so that -0.00004 shows as +0.0, not -0.0.
        (ratio * 1000.0).round() / 10.0 + 0.0,
        LIMIT * 100.0
    );
    let status = if ratio.abs() > LIMIT {
        Status::Problem
    } else {
        Status::Ok
    };
    s.add("energy", status, detail);
}

fn joules(j: Joules) -> String {
    format!("{:.1} J", j.0)
}
