//! Deterministic simulated GPUs, so the exporter, dashboards and docs can be tried without a
//! GPU (`--demo`). Power is a closed-form function of time and the energy counter is its exact
//! integral, so what the exporter reports can be checked by hand. Never chosen silently: only
//! `--demo` / `--backend=simulated` select it.

use std::f64::consts::TAU;
use std::sync::Arc;

use super::{Backend, Capabilities, DeviceError, DeviceInfo, Reading};
use crate::clock::Clock;
use crate::units::Watts;

pub mod demo;

/// Board power limit of the simulated H100 SXM (700 W, NVIDIA H100 datasheet, 2023).
const LIMIT_W: f64 = 700.0;
/// Energy (µJ) the simulated counters show at start, as if the driver had been loaded for days.
const COUNTER_START_UJ: u64 = 1_000_000_000_000;

/// A load pattern of a simulated GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Steady training: 600–690 W, ~97 % utilization.
    Training,
    /// Bursty inference: 150–450 W, utilization following load.
    Inference,
    /// Batch jobs: 70 s busy at ~500 W, then 50 s idle at 70 W and 0 % utilization.
    Batch,
    /// Allocated but unused: ~65 W at 0 % utilization (the waste users look for).
    Idle,
}

/// Batch cycle: busy for the first `BATCH_BUSY_S` of every `BATCH_PERIOD_S`.
const BATCH_PERIOD_S: f64 = 120.0;
const BATCH_BUSY_S: f64 = 70.0;

/// `amp·sin(2πt/period)` and its integral from 0.
fn sine(amp: f64, period: f64, t: f64) -> (f64, f64) {
    let w = TAU / period;
    (amp * (w * t).sin(), amp / w * (1.0 - (w * t).cos()))
}

impl Profile {
    /// Power (W) at `t` seconds, and the exact energy (J) from 0 to `t`.
    pub fn power_and_energy(self, t: f64) -> (f64, f64) {
        match self {
            Profile::Training => {
                let (p1, e1) = sine(35.0, 37.0, t);
                let (p2, e2) = sine(10.0, 7.3, t);
                (645.0 + p1 + p2, 645.0 * t + e1 + e2)
            }
            Profile::Inference => {
                let (p, e) = sine(150.0, 20.0, t);
                (300.0 + p, 300.0 * t + e)
            }
            Profile::Batch => {
                let cycles = (t / BATCH_PERIOD_S).floor();
                let phase = t - cycles * BATCH_PERIOD_S;
                let per_cycle = 500.0 * BATCH_BUSY_S + 70.0 * (BATCH_PERIOD_S - BATCH_BUSY_S);
                let (p, e) = if phase < BATCH_BUSY_S {
                    (500.0, 500.0 * phase)
                } else {
                    (70.0, 500.0 * BATCH_BUSY_S + 70.0 * (phase - BATCH_BUSY_S))
                };
                (p, cycles * per_cycle + e)
            }
            Profile::Idle => {
                let (p, e) = sine(1.5, 60.0, t);
                (65.0 + p, 65.0 * t + e)
            }
        }
    }

    /// Utilization (0–1) at `t` seconds.
    pub fn utilization(self, t: f64) -> f64 {
        match self {
            Profile::Training => 0.97,
            Profile::Inference => ((self.power_and_energy(t).0 - 120.0) / 400.0).clamp(0.0, 1.0),
            Profile::Batch if t % BATCH_PERIOD_S < BATCH_BUSY_S => 0.85,
            Profile::Batch | Profile::Idle => 0.0,
        }
    }
}

/// The profiles given to simulated GPUs 0, 1, 2, … in turn.
const PROFILES: [Profile; 4] = [
    Profile::Training,
    Profile::Inference,
    Profile::Batch,
    Profile::Idle,
];

/// Simulated GPUs driven by a clock.
pub struct SimulatedBackend {
    devices: Vec<DeviceInfo>,
    clock: Arc<dyn Clock>,
    origin: f64,
    processes: bool,
}

impl SimulatedBackend {
    /// `count` simulated H100s; every fourth one (the idle one) has no energy counter, so both
    /// energy sources are shown.
    pub fn new(count: u32, clock: Arc<dyn Clock>) -> SimulatedBackend {
        let devices = (0..count)
            .map(|index| {
                DeviceInfo::gpu(
                    index,
                    format!("GPU-5e1f0000-0000-4000-8000-{index:012x}"),
                    "NVIDIA H100 80GB HBM3".to_string(),
                    Capabilities {
                        energy_counter: profile_of(index) != Profile::Idle,
                        power: true,
                        utilization: true,
                        power_limit: true,
                    },
                )
            })
            .collect();
        let origin = clock.now().mono.as_secs_f64();
        SimulatedBackend {
            devices,
            clock,
            origin,
            processes: false,
        }
    }
}

fn profile_of(index: u32) -> Profile {
    PROFILES[index as usize % PROFILES.len()]
}

impl Backend for SimulatedBackend {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn watch_processes(&mut self) {
        self.processes = true;
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        let info = self
            .devices
            .get(position)
            .ok_or_else(|| DeviceError::Lost(format!("no simulated device {position}")))?;
        let profile = profile_of(info.index);
        let t = (self.clock.now().mono.as_secs_f64() - self.origin).max(0.0);
        let (power, energy_j) = profile.power_and_energy(t);
        let util = profile.utilization(t);
        let processes = self.processes.then(|| demo::processes(info.index, util));
        Ok(Reading {
            power: Some(Watts(power)),
            energy_uj: info
                .caps
                .energy_counter
                .then(|| COUNTER_START_UJ + (energy_j * 1e6) as u64),
            utilization: Some(util),
            power_limit: Some(Watts(LIMIT_W)),
            failed: Vec::new(),
            host_size: None,
            averages: Vec::new(),
            mig: demo::mig(info.index, util, processes.as_deref()),
            processes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed-form energies match a fine numeric integration of the power functions.
    #[test]
    fn energy_is_the_integral_of_power() {
        for profile in PROFILES {
            let (t_end, steps) = (250.0, 250_000);
            let dt = t_end / steps as f64;
            let numeric: f64 = (0..steps)
                .map(|i| profile.power_and_energy((i as f64 + 0.5) * dt).0 * dt)
                .sum();
            let exact = profile.power_and_energy(t_end).1;
            assert!(
                (numeric - exact).abs() < 1e-3 * exact,
                "{profile:?}: numeric {numeric} vs closed form {exact}"
            );
        }
    }

    #[test]
    fn profiles_stay_inside_the_board_limit() {
        for profile in PROFILES {
            for i in 0..2400 {
                let (p, _) = profile.power_and_energy(i as f64 * 0.1);
                assert!((0.0..=LIMIT_W).contains(&p), "{profile:?} at {i}: {p}");
                let u = profile.utilization(i as f64 * 0.1);
                assert!((0.0..=1.0).contains(&u));
            }
        }
    }
}
