//! What is served while the ledger cannot be written: the live snapshot with every persisted
//! counter held at its last durable value. Power, utilization, intensity and health stay live;
//! the counters catch up, with nothing lost, at the first commit that succeeds again (the
//! sampler keeps accounting in memory all along).

use std::collections::HashMap;

use super::{SavedDevice, StateFile};
use crate::energy::Totals;
use crate::snapshot::Snapshot;
use crate::units::{Grams, Joules};

/// `live` with the counters of `durable`. An entry `durable` has never seen (a first start
/// whose writes fail from the beginning) is held at zero, or left out for workloads, so no
/// counter is ever served above what the ledger holds.
pub fn held(live: &Snapshot, durable: &StateFile) -> Snapshot {
    let saved: HashMap<&str, &SavedDevice> = durable
        .devices
        .iter()
        .map(|d| (d.uuid.as_str(), d))
        .collect();
    let mut out = live.clone();
    for d in &mut out.devices {
        let s = saved.get(d.info.uuid.as_str());
        d.totals = s.map_or(Totals::default(), |s| s.totals());
        d.embodied = d
            .embodied
            .map(|_| Grams(s.and_then(|s| s.embodied_g).unwrap_or(0.0)));
        d.counter = s.and_then(|s| s.counter);
    }
    if let Some(a) = &mut out.attribution {
        let saved = durable
            .attribution
            .as_ref()
            .filter(|s| s.labels.iter().eq(a.labels.iter()));
        let workloads: HashMap<(&str, &[String]), (f64, f64)> = saved
            .iter()
            .flat_map(|s| &s.workloads)
            .map(|w| {
                (
                    (w.uuid.as_str(), w.labels.as_slice()),
                    (w.energy_j, w.co2e_g),
                )
            })
            .collect();
        a.workloads
            .retain_mut(|w| match workloads.get(&(&*w.uuid, &*w.labels)) {
                Some(&(energy, co2e)) => {
                    w.energy = Joules(energy);
                    w.co2e = Grams(co2e);
                    true
                }
                None => false,
            });
        let unattributed: HashMap<&str, (f64, f64)> = saved
            .iter()
            .flat_map(|s| &s.unattributed)
            .map(|u| (u.uuid.as_str(), (u.energy_j, u.co2e_g)))
            .collect();
        a.unattributed
            .retain_mut(|u| match unattributed.get(&*u.uuid) {
                Some(&(energy, co2e)) => {
                    u.energy = Joules(energy);
                    u.co2e = Grams(co2e);
                    true
                }
                None => false,
            });
    }
    super::mig::hold(&mut out.mig, &durable.mig);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::IntensityProvider;
    use crate::state::tests::{attribution, device};
    use crate::state::VERSION;

    #[test]
    fn counters_are_held_and_gauges_stay_live() {
        let durable = StateFile {
            version: VERSION,
            written_at_unix: 1.0,
            seq: 0,
            devices: vec![device()],
            attribution: Some(attribution()),
            mig: Vec::new(),
        };
        let mut live_file = durable.clone();
        live_file.devices[0].energy_j *= 2.0;
        live_file.attribution.as_mut().expect("a").workloads[0].energy_j *= 2.0;
        let mut live = Snapshot {
            taken_at_unix: 2.0,
            sample_duration: std::time::Duration::ZERO,
            skipped_samples: 0,
            intensity: crate::carbon::FixedIntensity::custom(100.0).intensity_at(2.0),
            carbon: crate::carbon::ProviderStatus {
                provider: "static",
                fetch_errors: 0,
                last_update_unix: None,
            },
            pue: 1.0,
            devices: vec![live_file.devices[0].retained_snapshot()],
            collectors: Vec::new(),
            attribution: live_file.attribution.as_ref().map(|a| a.to_snapshot()),
            mig: Default::default(),
        };
        live.devices[0].power = Some(crate::units::Watts(300.0));
        let mut stranger = device().retained_snapshot();
        stranger.info.uuid = "GPU-new".into();
        live.devices.push(stranger);
        let out = held(&live, &durable);
        assert_eq!(out.devices[0].totals, durable.devices[0].totals());
        assert_eq!(out.devices[0].power, Some(crate::units::Watts(300.0)));
        assert_eq!(out.devices[1].totals, Totals::default(), "never seen: zero");
        let a = out.attribution.expect("attribution");
        assert_eq!(a.workloads[0].energy.0, 3.0e6);
        assert_eq!(out.taken_at_unix, 2.0);
    }
}
