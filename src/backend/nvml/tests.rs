//! The NVML backend's start-up probing and error classification, over an in-memory [`NvmlApi`].

use std::sync::{Arc, Mutex};

use super::*;

type Answer<T> = fn() -> Result<T, NvmlError>;

/// Each field answers with a fixed function; `lookup` decides whether the UUID is found.
#[derive(Clone)]
struct FakeApi {
    power: Answer<u32>,
    energy: Answer<u64>,
    util: Answer<u32>,
    limit: Answer<u32>,
    lookup: Arc<Mutex<Answer<()>>>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi {
            power: || Ok(250_000),
            energy: || Ok(9_000_000),
            util: || Ok(40),
            limit: || Ok(700_000),
            lookup: Arc::new(Mutex::new(|| Ok(()))),
        }
    }
}

impl NvmlApi for FakeApi {
    fn device_count(&self) -> Result<u32, NvmlError> {
        Ok(2)
    }

    fn identity(&self, index: u32) -> Result<(String, String), NvmlError> {
        if index == 1 {
            return Err(NvmlError::Unknown);
        }
        Ok((format!("GPU-{index}"), "Fake GPU".into()))
    }

    fn read(&self, _uuid: &str, ask: Capabilities) -> Result<RawReading, NvmlError> {
        (self.lookup.lock().expect("lock"))()?;
        Ok(RawReading {
            power_mw: ask.power.then(self.power),
            energy_mj: ask.energy_counter.then(self.energy),
            utilization_pct: ask.utilization.then(self.util),
            power_limit_mw: ask.power_limit.then(self.limit),
        })
    }
}

#[test]
fn discovery_skips_unidentifiable_gpus_and_probes_support() {
    let api = FakeApi {
        energy: || Err(NvmlError::NotSupported),
        util: || Err(NvmlError::Unknown),
        ..FakeApi::default()
    };
    let backend = NvmlBackend::discover(api).expect("discover");
    let devices = backend.devices();
    assert_eq!(devices.len(), 1, "GPU 1 has no identity and is skipped");
    assert_eq!(devices[0].uuid, "GPU-0");
    assert_eq!(
        devices[0].caps,
        Capabilities {
            energy_counter: false,
            power: true,
            utilization: true, // a transient failure at start-up keeps the reading enabled
            power_limit: true,
        }
    );
}

#[test]
fn readings_are_converted_to_units() {
    let mut backend = NvmlBackend::discover(FakeApi::default()).expect("discover");
    let reading = backend.read(0).expect("read");
    assert_eq!(reading.power, Some(Watts(250.0)));
    assert_eq!(reading.energy_uj, Some(9_000_000_000));
    assert_eq!(reading.utilization, Some(0.4));
    assert_eq!(reading.power_limit, Some(Watts(700.0)));
    assert!(reading.failed.is_empty());
}

#[test]
fn a_failing_field_is_reported_and_the_rest_still_read() {
    let api = FakeApi::default();
    let mut backend = NvmlBackend::discover(api.clone()).expect("discover");
    backend.api.power = || Err(NvmlError::Timeout);
    let reading = backend.read(0).expect("read");
    assert_eq!(reading.power, None);
    assert_eq!(reading.failed, vec![Field::Power]);
    assert_eq!(reading.energy_uj, Some(9_000_000_000));
}

#[test]
fn a_lost_gpu_fails_the_whole_read_and_comes_back() {
    let api = FakeApi::default();
    let lookup = Arc::clone(&api.lookup);
    let mut backend = NvmlBackend::discover(api).expect("discover");
    *lookup.lock().expect("lock") = || Err(NvmlError::GpuLost);
    assert!(matches!(backend.read(0), Err(DeviceError::Lost(_))));
    *lookup.lock().expect("lock") = || Err(NvmlError::NotFound);
    assert!(matches!(backend.read(0), Err(DeviceError::Lost(_))));
    *lookup.lock().expect("lock") = || Ok(());
    assert!(backend.read(0).is_ok(), "re-attached by UUID");
}

#[test]
fn gpu_lost_on_one_field_marks_the_device_lost() {
    let mut backend = NvmlBackend::discover(FakeApi::default()).expect("discover");
    backend.api.energy = || Err(NvmlError::GpuLost);
    assert!(matches!(backend.read(0), Err(DeviceError::Lost(_))));
}

#[test]
fn classification() {
    assert_eq!(classify(&NvmlError::NotSupported), ErrorClass::NotSupported);
    assert_eq!(classify(&NvmlError::GpuLost), ErrorClass::Lost);
    assert_eq!(classify(&NvmlError::Unknown), ErrorClass::Transient);
    assert_eq!(classify(&NvmlError::Timeout), ErrorClass::Transient);
}
