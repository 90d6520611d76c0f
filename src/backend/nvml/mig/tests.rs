//! MIG discovery and readings over an in-memory [`NvmlApi`]: what is probed once, what is read
//! every tick, and how each error is classified.

use std::sync::atomic::{AtomicU32, Ordering};

use nvml_wrapper::error::NvmlError;

use super::*;
use crate::backend::nvml::RawReading;
use crate::backend::Capabilities;

type Answer<T> = fn() -> Result<T, NvmlError>;

struct Api {
    mode: Answer<bool>,
    gpm: Answer<bool>,
    devices: Answer<(u32, Vec<MigDevice>)>,
    activity: fn(u32) -> Result<Option<f64>, NvmlError>,
    processes: fn(&str) -> Result<Vec<u32>, NvmlError>,
    mode_calls: AtomicU32,
}

fn device(gi: u32, ci: u32) -> MigDevice {
    MigDevice {
        mig_uuid: format!("MIG-{gi}-{ci}"),
        gpu_instance: gi,
        compute_instance: ci,
        profile: "1g.10gb".into(),
        sm_count: 16,
        memory_mb: 9984,
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            mode: || Ok(true),
            gpm: || Ok(true),
            devices: || Ok((132, vec![device(2, 0), device(1, 0), device(2, 1)])),
            activity: |gi| Ok(Some(f64::from(gi) * 25.0)),
            processes: |uuid| {
                Ok(if uuid == "MIG-1-0" {
                    vec![7, 7]
                } else {
                    vec![]
                })
            },
            mode_calls: AtomicU32::new(0),
        }
    }
}

impl NvmlApi for Api {
    fn device_count(&self) -> Result<u32, NvmlError> {
        Ok(1)
    }
    fn identity(&self, _: u32) -> Result<(String, String), NvmlError> {
        Ok(("GPU-0".into(), "Fake".into()))
    }
    fn read(&self, _: &str, _: Capabilities) -> Result<RawReading, NvmlError> {
        Ok(RawReading::default())
    }
    fn running_processes(&self, uuid: &str) -> Result<Vec<u32>, NvmlError> {
        (self.processes)(uuid)
    }
    fn mig_enabled(&self, _: &str) -> Result<bool, NvmlError> {
        self.mode_calls.fetch_add(1, Ordering::Relaxed);
        (self.mode)()
    }
    fn mig_devices(&self, _: &str) -> Result<(u32, Vec<MigDevice>), NvmlError> {
        (self.devices)()
    }
    fn gpm_supported(&self, _: &str) -> Result<bool, NvmlError> {
        (self.gpm)()
    }
    fn gpm_activity(&self, _: &str, gi: u32) -> Result<Option<f64>, NvmlError> {
        (self.activity)(gi)
    }
}

#[test]
fn mig_mode_and_gpm_are_probed_once_and_classified() {
    assert_eq!(probe(&Api::default(), "GPU-0"), MigProbe::On { gpm: true });
    let a100 = Api {
        gpm: || Err(NvmlError::NotSupported),
        ..Api::default()
    };
    assert_eq!(probe(&a100, "GPU-0"), MigProbe::On { gpm: false });
    let off = Api {
        mode: || Ok(false),
        ..Api::default()
    };
    assert_eq!(probe(&off, "GPU-0"), MigProbe::Off);
    let old = Api {
        mode: || Err(NvmlError::NotSupported),
        ..Api::default()
    };
    assert_eq!(
        probe(&old, "GPU-0"),
        MigProbe::Off,
        "no MIG is not an error"
    );
    let broken = Api {
        mode: || Err(NvmlError::Unknown),
        ..Api::default()
    };
    assert_eq!(probe(&broken, "GPU-0"), MigProbe::Unknown);
}

#[test]
fn a_reading_groups_devices_into_instances_with_activity_and_processes() {
    let api = Api::default();
    let mut p = MigProbe::On { gpm: true };
    let r = read(&api, "GPU-0", &mut p).expect("a MIG GPU");
    let layout = r.layout.expect("layout");
    assert_eq!((layout.sm_count, layout.gpm), (132, true));
    let gis: Vec<u32> = layout.instances.iter().map(|i| i.gpu_instance).collect();
    assert_eq!(gis, vec![1, 2]);
    assert_eq!(layout.instances[1].sm_count(), 32, "two compute instances");
    assert_eq!(layout.instances[0].gpm_activity, Some(0.25));
    let pids: Vec<u32> = layout.instances[0]
        .processes
        .iter()
        .flatten()
        .map(|p| p.pid)
        .collect();
    assert_eq!(pids, vec![7], "deduplicated");
    assert_eq!(r.gpm_errors, 0);
    assert_eq!(
        api.mode_calls.load(Ordering::Relaxed),
        0,
        "mode not read per tick"
    );
}

#[test]
fn a_gpu_not_in_mig_mode_has_no_mig_reading() {
    assert_eq!(read(&Api::default(), "GPU-0", &mut MigProbe::Off), None);
}

#[test]
fn gpm_failures_are_counted_and_leave_the_activity_to_the_process_rule() {
    let api = Api {
        activity: |gi| {
            if gi == 2 {
                Err(NvmlError::Unknown)
            } else {
                Ok(None)
            }
        },
        ..Api::default()
    };
    let r = read(&api, "GPU-0", &mut MigProbe::On { gpm: true }).expect("reading");
    assert_eq!(r.gpm_errors, 1);
    let layout = r.layout.expect("layout");
    assert!(layout.instances.iter().all(|i| i.gpm_activity.is_none()));
    let without = read(&api, "GPU-0", &mut MigProbe::On { gpm: false }).expect("reading");
    assert_eq!(
        without.gpm_errors, 0,
        "GPM is not asked for where unsupported"
    );
}

#[test]
fn unreadable_state_is_counted_every_tick_until_it_reads() {
    let broken = Api {
        mode: || Err(NvmlError::Unknown),
        ..Api::default()
    };
    let mut p = MigProbe::Unknown;
    let r = read(&broken, "GPU-0", &mut p).expect("an error reading");
    assert_eq!((r.layout, r.state_errors), (None, 1));
    assert_eq!(p, MigProbe::Unknown);
    let r = read(&Api::default(), "GPU-0", &mut p).expect("now MIG");
    assert!(r.layout.is_some());
    assert_eq!(p, MigProbe::On { gpm: true });
    let listing = Api {
        devices: || Err(NvmlError::Unknown),
        ..Api::default()
    };
    let r = read(&listing, "GPU-0", &mut p).expect("an error reading");
    assert_eq!((r.layout, r.state_errors), (None, 1));
}

#[test]
fn an_instance_whose_processes_cannot_be_listed_has_none() {
    let api = Api {
        processes: |_| Err(NvmlError::Unknown),
        ..Api::default()
    };
    let r = read(&api, "GPU-0", &mut MigProbe::On { gpm: false }).expect("reading");
    assert!(r
        .layout
        .expect("layout")
        .instances
        .iter()
        .all(|i| i.processes.is_none()));
}
