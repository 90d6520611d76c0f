//! The MIG and GPM entry points, and how MIG device handles answer the ordinary queries.
//!
//! A MIG device handle encodes the parent's index and the instance's position among the
//! parent's `mig_instance` lines: `(gpu + 1) | (slot + 1) << 24`. Like real NVML, a MIG handle
//! answers name (`<GPU name> MIG <profile>`), UUID, GPU/compute instance IDs, attributes and
//! its compute processes, and `NVML_ERROR_NOT_SUPPORTED` for power, energy, utilization, limits
//! and per-process utilization (NVML measures those only for the parent). A handle of an
//! instance that no longer exists answers `NVML_ERROR_NOT_FOUND`; the parent's faults
//! (`lost_at`, `error_at`) apply to its MIG handles too.

use std::ffi::{c_char, c_uint};

use nvml_wrapper_sys::bindings::{
    nvmlDeviceAttributes_t, nvmlDevice_t, nvmlGpmMetricId_t_NVML_GPM_METRIC_GRAPHICS_UTIL,
    nvmlGpmMetricsGet_t, nvmlGpmSample_t, nvmlGpmSupport_t, nvmlGpuInstanceProfileInfo_t,
    nvmlReturn_t, NVML_GPU_INSTANCE_PROFILE_7_SLICE,
};

use super::{
    guard, initialized, put, put_str, GPU_IS_LOST, INSUFFICIENT_SIZE, INVALID_ARG, NOT_FOUND,
    NOT_SUPPORTED, SUCCESS, UNKNOWN,
};
use crate::device::Fault;
use crate::mig::{MigInstance, MigMode};
use crate::scenario::{Gpu, Scenario};

const MIG_SHIFT: usize = 24;

/// The handle of instance `slot` of GPU `gpu`.
fn encode_mig(gpu: usize, slot: usize) -> nvmlDevice_t {
    std::ptr::without_provenance_mut((gpu + 1) | ((slot + 1) << MIG_SHIFT))
}

/// `(gpu, slot)` of a MIG handle; `None` for a parent handle.
pub(crate) fn decode_mig(device: nvmlDevice_t) -> Option<(usize, usize)> {
    let addr = device.addr();
    let slot = (addr >> MIG_SHIFT).checked_sub(1)?;
    let gpu = (addr & ((1 << MIG_SHIFT) - 1)).checked_sub(1)?;
    Some((gpu, slot))
}

/// Whether `device` is a MIG handle.
pub(crate) fn is_mig(device: nvmlDevice_t) -> bool {
    decode_mig(device).is_some()
}

/// The parent's fault at `t` as an NVML return code, if any.
fn fault(gpu: &Gpu, t: f64, reading: bool) -> Option<nvmlReturn_t> {
    match gpu.fault_at(t) {
        Some(Fault::Lost) => Some(GPU_IS_LOST),
        Some(Fault::Transient) if reading => Some(UNKNOWN),
        _ => None,
    }
}

/// Runs `body` for a MIG handle whose instance exists now; `None` if `device` is not a MIG
/// handle (the caller answers for the parent).
pub(crate) fn mig_query(
    device: nvmlDevice_t,
    reading: bool,
    body: impl FnOnce(&Gpu, &MigInstance, f64) -> nvmlReturn_t,
) -> Option<nvmlReturn_t> {
    let (gpu, slot) = decode_mig(device)?;
    Some(initialized(|scenario, t| {
        let Some(gpu) = scenario.gpus.get(gpu) else {
            return INVALID_ARG;
        };
        let Some(instance) = gpu.mig_instances.get(slot) else {
            return INVALID_ARG;
        };
        if let Some(code) = fault(gpu, t, reading) {
            return code;
        }
        if gpu.mig != MigMode::On || !instance.present_at(t) {
            return NOT_FOUND;
        }
        body(gpu, instance, t)
    }))
}

/// Runs `body` for a parent handle, after its faults.
fn parent_query(
    scenario: &Scenario,
    t: f64,
    device: nvmlDevice_t,
    body: impl FnOnce(&Gpu) -> nvmlReturn_t,
) -> nvmlReturn_t {
    if is_mig(device) {
        return INVALID_ARG;
    }
    let Some(gpu) = super::decode_handle(device).and_then(|i| scenario.gpus.get(i)) else {
        return INVALID_ARG;
    };
    fault(gpu, t, true).unwrap_or_else(|| body(gpu))
}

/// The MIG device with `uuid` present now, as a handle.
pub(crate) fn handle_by_uuid(scenario: &Scenario, t: f64, uuid: &[u8]) -> Option<nvmlDevice_t> {
    scenario.gpus.iter().enumerate().find_map(|(g, gpu)| {
        let slot = gpu
            .mig_instances
            .iter()
            .position(|m| m.uuid.as_bytes() == uuid && m.present_at(t))?;
        (gpu.mig == MigMode::On).then(|| encode_mig(g, slot))
    })
}

/// Writes the MIG device's name, `<GPU name> MIG <profile>`.
///
/// # Safety
/// `name` must be null or valid for writes of `length` bytes.
pub(crate) unsafe fn name(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> Option<nvmlReturn_t> {
    mig_query(device, false, |gpu, m, _| {
        let full = format!("{} MIG {}", gpu.name, m.profile);
        // SAFETY: forwarded caller contract on `name` / `length`.
        unsafe { put_str(name, length, &full) }
    })
}

/// Writes the MIG device's UUID.
///
/// # Safety
/// `uuid` must be null or valid for writes of `length` bytes.
pub(crate) unsafe fn uuid(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> Option<nvmlReturn_t> {
    mig_query(device, false, |_, m, _| {
        // SAFETY: forwarded caller contract on `uuid` / `length`.
        unsafe { put_str(uuid, length, &m.uuid) }
    })
}

/// Writes MIG mode: current and pending are the same.
///
/// # Safety
/// `current` and `pending` must each be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        parent_query(scenario, t, device, |gpu| {
            let on = match gpu.mig {
                MigMode::On => 1,
                MigMode::Off => 0,
                MigMode::Unsupported => return NOT_SUPPORTED,
                MigMode::Unreadable => return UNKNOWN,
            };
            if current.is_null() || pending.is_null() {
                return INVALID_ARG;
            }
            // SAFETY: both pointers checked non-null; valid per the caller contract.
            unsafe {
                put(current, on);
                put(pending, on)
            }
        })
    })
}

/// Writes the most MIG devices the GPU can hold (7), or `NOT_SUPPORTED` without MIG mode.
///
/// # Safety
/// `count` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        parent_query(scenario, t, device, |gpu| match gpu.mig {
            MigMode::Unsupported | MigMode::Unreadable => NOT_SUPPORTED,
            // SAFETY: forwarded caller contract on `count`.
            MigMode::On | MigMode::Off => unsafe { put(count, 7) },
        })
    })
}

/// Writes the handle of the `index`-th MIG device that exists now (in `mig_instance` order);
/// past the last → `NVML_ERROR_NOT_FOUND`, as real NVML for an empty slot.
///
/// # Safety
/// `mig` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        let g = super::decode_handle(device).unwrap_or(usize::MAX);
        parent_query(scenario, t, device, |gpu| {
            if gpu.mig != MigMode::On {
                return NOT_SUPPORTED;
            }
            let slot = gpu
                .mig_instances
                .iter()
                .enumerate()
                .filter(|(_, m)| m.present_at(t))
                .nth(index as usize)
                .map(|(slot, _)| slot);
            match slot {
                // SAFETY: forwarded caller contract on `mig`.
                Some(slot) => unsafe { put(mig, encode_mig(g, slot)) },
                None => NOT_FOUND,
            }
        })
    })
}

/// Writes whether `device` is a MIG handle.
///
/// # Safety
/// `is_mig_device` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(
    device: nvmlDevice_t,
    is_mig_device: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `is_mig_device`.
    initialized(|_, _| unsafe { put(is_mig_device, c_uint::from(is_mig(device))) })
}

/// Writes the GPU instance ID of a MIG handle; a parent → `NVML_ERROR_NOT_SUPPORTED`.
///
/// # Safety
/// `id` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `id`.
    mig_query(device, false, |_, m, _| unsafe { put(id, m.gi) }).unwrap_or(NOT_SUPPORTED)
}

/// Writes the compute instance ID of a MIG handle; a parent → `NVML_ERROR_NOT_SUPPORTED`.
///
/// # Safety
/// `id` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(
    device: nvmlDevice_t,
    id: *mut c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `id`.
    mig_query(device, false, |_, m, _| unsafe { put(id, m.ci) }).unwrap_or(NOT_SUPPORTED)
}

/// Writes attributes: a MIG device's SM count and memory; a parent → `NVML_ERROR_NOT_SUPPORTED`
/// (real NVML answers this for MIG device handles only).
///
/// # Safety
/// `attributes` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetAttributes_v2(
    device: nvmlDevice_t,
    attributes: *mut nvmlDeviceAttributes_t,
) -> nvmlReturn_t {
    let attrs = |sm: u32, memory_mb: u64| nvmlDeviceAttributes_t {
        multiprocessorCount: sm,
        sharedCopyEngineCount: 0,
        sharedDecoderCount: 0,
        sharedEncoderCount: 0,
        sharedJpegCount: 0,
        sharedOfaCount: 0,
        gpuInstanceSliceCount: 0,
        computeInstanceSliceCount: 0,
        memorySizeMB: memory_mb,
    };
    // SAFETY: forwarded caller contract on `attributes`.
    let mig = mig_query(device, false, |_, m, _| unsafe {
        put(attributes, attrs(m.sm, m.memory_mb))
    });
    mig.unwrap_or_else(|| {
        initialized(|scenario, t| parent_query(scenario, t, device, |_| NOT_SUPPORTED))
    })
}

/// Writes a GPU instance profile's info: for the full-GPU profile
/// (`NVML_GPU_INSTANCE_PROFILE_7_SLICE`), 7 slices and `sm_count` SMs; any other profile, or a
/// GPU without MIG support → `NVML_ERROR_NOT_SUPPORTED`.
///
/// # Safety
/// `info` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceProfileInfo(
    device: nvmlDevice_t,
    profile: c_uint,
    info: *mut nvmlGpuInstanceProfileInfo_t,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        parent_query(scenario, t, device, |gpu| {
            let full = profile == NVML_GPU_INSTANCE_PROFILE_7_SLICE;
            if !full || matches!(gpu.mig, MigMode::Unsupported | MigMode::Unreadable) {
                return NOT_SUPPORTED;
            }
            let value = nvmlGpuInstanceProfileInfo_t {
                id: 0,
                isP2pSupported: 0,
                sliceCount: 7,
                instanceCount: 1,
                multiprocessorCount: gpu.sm_count,
                copyEngineCount: 0,
                decoderCount: 0,
                encoderCount: 0,
                jpegCount: 0,
                ofaCount: 0,
                memorySizeMB: 81_559,
            };
            // SAFETY: forwarded caller contract on `info`.
            unsafe { put(info, value) }
        })
    })
}

/// Writes whether the GPU supports GPM (`gpm = yes`).
///
/// # Safety
/// `support` must be null or valid for a read and a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: nvmlDevice_t,
    support: *mut nvmlGpmSupport_t,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        parent_query(scenario, t, device, |gpu| {
            if support.is_null() {
                return INVALID_ARG;
            }
            // SAFETY: non-null and valid for a read and a write per the caller contract.
            unsafe { (*support).isSupportedDevice = c_uint::from(gpu.gpm) };
            SUCCESS
        })
    })
}

/// What a GPM sample holds: which instance it measured, when.
#[derive(Debug, Default)]
struct Sample {
    taken: Option<(usize, usize, f64)>,
}

/// Allocates an empty sample.
///
/// # Safety
/// `sample` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    guard(|| {
        if sample.is_null() {
            return INVALID_ARG;
        }
        let raw = Box::into_raw(Box::new(Sample::default())).cast();
        // SAFETY: non-null and valid for a write per the caller contract.
        unsafe { put(sample, raw) }
    })
}

/// Frees a sample from [`nvmlGpmSampleAlloc`].
///
/// # Safety
/// `sample` must be null or from [`nvmlGpmSampleAlloc`] and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    guard(|| {
        if sample.is_null() {
            return INVALID_ARG;
        }
        // SAFETY: allocated by `nvmlGpmSampleAlloc` as a `Box<Sample>`, freed once.
        drop(unsafe { Box::from_raw(sample.cast::<Sample>()) });
        SUCCESS
    })
}

/// Fills `sample` for GPU instance `gi` of `device` at the current scenario time.
///
/// # Safety
/// `sample` must be null or from [`nvmlGpmSampleAlloc`].
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmMigSampleGet(
    device: nvmlDevice_t,
    gi: c_uint,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        let g = super::decode_handle(device).unwrap_or(usize::MAX);
        parent_query(scenario, t, device, |gpu| {
            if !gpu.gpm || gpu.mig != MigMode::On {
                return NOT_SUPPORTED;
            }
            let Some(slot) = gpu
                .mig_instances
                .iter()
                .position(|m| m.gi == gi && m.present_at(t))
            else {
                return INVALID_ARG;
            };
            if gpu.mig_instances[slot].gpm_failing_at(t) {
                return UNKNOWN;
            }
            if sample.is_null() {
                return INVALID_ARG;
            }
            // SAFETY: a live `Box<Sample>` from `nvmlGpmSampleAlloc` per the caller contract.
            unsafe { (*sample.cast::<Sample>()).taken = Some((g, slot, t)) };
            SUCCESS
        })
    })
}

/// Computes the requested metrics between two samples: `NVML_GPM_METRIC_GRAPHICS_UTIL` is the
/// exact mean of the instance's `activity` profile between the two sample times; any other
/// metric is `NVML_ERROR_NOT_SUPPORTED` in its slot.
///
/// # Safety
/// `request` must be null or valid for a read and a write, its samples filled by
/// [`nvmlGpmMigSampleGet`].
#[no_mangle]
pub unsafe extern "C" fn nvmlGpmMetricsGet(request: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    initialized(|scenario, _| {
        if request.is_null() {
            return INVALID_ARG;
        }
        // SAFETY: non-null and valid per the caller contract.
        let request = unsafe { &mut *request };
        if request.sample1.is_null() || request.sample2.is_null() {
            return INVALID_ARG;
        }
        // SAFETY: both are live `Box<Sample>`s per the caller contract.
        let (a, b) = unsafe {
            (
                (*request.sample1.cast::<Sample>()).taken,
                (*request.sample2.cast::<Sample>()).taken,
            )
        };
        let (Some((_, _, t1)), Some((g, slot, t2))) = (a, b) else {
            return INVALID_ARG;
        };
        let Some(m) = scenario
            .gpus
            .get(g)
            .and_then(|gpu| gpu.mig_instances.get(slot))
        else {
            return INVALID_ARG;
        };
        let n = request.numMetrics as usize;
        if n > request.metrics.len() {
            return INSUFFICIENT_SIZE;
        }
        for metric in &mut request.metrics[..n] {
            if metric.metricId == nvmlGpmMetricId_t_NVML_GPM_METRIC_GRAPHICS_UTIL {
                metric.value = m.mean_activity(t1.min(t2), t1.max(t2));
                metric.nvmlReturn = SUCCESS;
            } else {
                metric.nvmlReturn = NOT_SUPPORTED;
            }
        }
        SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mig_handles_round_trip_and_differ_from_parents() {
        for (g, s) in [(0, 0), (3, 6), (100, 1)] {
            assert_eq!(decode_mig(encode_mig(g, s)), Some((g, s)));
        }
        assert_eq!(decode_mig(super::super::encode_handle(5)), None);
    }
}
