//! The sampler over a fake backend whose reads take time on a manual clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{AccountingSettings, Sampler};
use crate::backend::{Backend, Capabilities, DeviceError, DeviceInfo, Reading};
use crate::carbon::FixedIntensity;
use crate::clock::{Clock, ManualClock};
use crate::snapshot::{CollectorStatus, ErrorKind, Snapshot};
use crate::units::Watts;

const WATTS: f64 = 300.0;
const START_UNIX: f64 = 1_800_000_000.0;

/// Two GPUs drawing 300 W, whose counters run with the clock; reading GPU 0 takes `delay_ms`.
struct SlowGpus {
    clock: Arc<ManualClock>,
    devices: Vec<DeviceInfo>,
    delay_ms: Arc<AtomicU64>,
}

impl Backend for SlowGpus {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn devices(&self) -> &[DeviceInfo] {
        &self.devices
    }

    fn read(&mut self, position: usize) -> Result<Reading, DeviceError> {
        if position == 0 {
            let delay = self.delay_ms.load(Ordering::Relaxed);
            self.clock.advance(Duration::from_millis(delay));
        }
        let seconds = self.clock.now().mono.as_secs_f64();
        Ok(Reading {
            power: Some(Watts(WATTS)),
            energy_uj: Some((WATTS * seconds * 1e6).round() as u64),
            power_limit: Some(Watts(700.0)),
            ..Reading::default()
        })
    }
}

/// A tick every 200 ms of which one read of GPU 0 hangs for 3 s.
fn ticks_through_a_hang() -> Vec<Snapshot> {
    let clock = Arc::new(ManualClock::new(START_UNIX));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let caps = Capabilities {
        energy_counter: true,
        power: true,
        utilization: false,
        power_limit: true,
    };
    let gpu = |i: u32| DeviceInfo::gpu(i, format!("GPU-{i}"), "Slow".into(), caps);
    let backend = SlowGpus {
        clock: Arc::clone(&clock),
        devices: vec![gpu(0), gpu(1)],
        delay_ms: Arc::clone(&delay_ms),
    };
    let mut sampler = Sampler::new(
        vec![Box::new(backend)],
        Box::new(FixedIntensity::custom(400.0)),
        AccountingSettings::with_pue(1.0),
        vec![CollectorStatus::new("slow", true)],
    );
    let mut snapshots = Vec::new();
    for tick in 0..8 {
        delay_ms.store(if tick == 4 { 3_000 } else { 0 }, Ordering::Relaxed);
        snapshots.push(sampler.tick(clock.as_ref()));
        clock.advance(Duration::from_millis(200));
    }
    snapshots
}

/// Readings are dated when the read returned: a 3 s read is not mistaken for a counter that
/// jumped by 3 s of energy in 200 ms (an impossible step), for the hung GPU or the one read
/// after it, and the energy is the counter's.
#[test]
fn a_slow_read_is_dated_when_it_returned() {
    let snapshots = ticks_through_a_hang();
    let hung = &snapshots[4];
    let end = START_UNIX + 0.8 + 3.0;
    let dated = hung.taken_at_unix;
    assert!(
        (dated - end).abs() < 1e-6,
        "dated {dated}, not at its end {end}"
    );
    let last = snapshots.last().expect("ticks");
    // 7 intervals of 200 ms and the 3 s hang since the first (baseline) reading.
    let want = WATTS * (7.0 * 0.2 + 3.0);
    for d in &last.devices {
        assert_eq!(
            d.errors.get(ErrorKind::ImplausibleEnergy),
            0,
            "{}",
            d.info.uuid
        );
        assert!(d.up, "{}", d.info.uuid);
        let joules = d.totals.energy.0;
        assert!(
            (joules - want).abs() < 1e-3,
            "{}: {joules} J, want {want}",
            d.info.uuid
        );
    }
    for pair in snapshots.windows(2) {
        for (a, b) in pair[0].devices.iter().zip(&pair[1].devices) {
            assert!(b.totals.energy >= a.totals.energy, "{}", b.info.uuid);
        }
    }
}
