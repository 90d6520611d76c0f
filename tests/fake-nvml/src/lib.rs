//! A fake `libnvidia-ml.so` driven by a scenario file, for testing
//! `gpu-carbon-exporter` without a GPU.
//!
//! Built as a `cdylib` (`target/debug/libfake_nvml.so`, also
//! `target/debug/deps/libfake_nvml.so`), it exports the NVML entry points the
//! exporter uses, so the real binary can load it with
//! `nvml_wrapper::Nvml::builder().lib_path(...)`. Every reading is a function
//! of *scenario time*, and the energy counter is the **exact** integral of
//! the power profile, so tests can assert against analytically known energy.
//! The `rlib` side exposes the same math ([`profile`], [`scenario`],
//! [`device`]) to compute expected values.
//!
//! # Loading a scenario
//!
//! `nvmlInit_v2` / `nvmlInitWithFlags` read the file named by the environment
//! variable `FAKE_NVML_SCENARIO` (re-read at every init). If it is unset,
//! unreadable or invalid, one line starting `fake-nvml:` is printed to stderr
//! and init returns `NVML_ERROR_UNKNOWN`. Init is reference-counted like real
//! NVML: each successful init needs one `nvmlShutdown`; any call made while
//! not initialized returns `NVML_ERROR_UNINITIALIZED`.
//!
//! # Scenario format
//!
//! UTF-8 text. `#` starts a comment (anywhere on a line, so values cannot
//! contain `#`); blank lines are ignored; settings are `key = value` lines
//! (spaces around `=` optional). Global keys come first, then one `[gpu]`
//! section per GPU; the section order is the device index. Errors name the
//! line (`line N: ...`); keys may not repeat except the list keys
//! `reset_at`, `error_at`, `glitch_at`, `hang_at`, `process` and `mig_instance`,
//! whose values accumulate.
//!
//! ```text
//! # Scenario time t = now - epoch (unix seconds).
//! epoch = 1718000000.25
//! init = ok
//!
//! [gpu]                              # index 0
//! name = NVIDIA H100 80GB HBM3
//! uuid = GPU-11111111-2222-3333-4444-555555555555
//! power = square:100:400:2           # 100 W, then 400 W, period 2 s
//! power_window = 1                   # readings are 1 s averages
//! limit_w = 700
//! util = trace:0=0,60=100
//! reset_at = 30                      # driver reload at t = 30 s
//! process = pid=4242 sm=const:60      # a compute process at 60 % SM ...
//! process = pid=4243 sm=none start=5  # ... and one without samples from t = 5 s
//! error_at = 10:0.5, 20:0.5          # transient NVML_ERROR_UNKNOWN
//!
//! [gpu]                              # index 1
//! power = trace:0=100,10=300         # linear ramp, then 300 W
//! counter = no                       # no total-energy counter
//! lost_at = 40                       # fell off the bus at t = 40 s ...
//! lost_until = 45                    # ... and is back at t = 45 s
//! ```
//!
//! ## Global keys
//!
//! | key | value | default |
//! |-----|-------|---------|
//! | `epoch` | unix seconds (float): scenario time `t = now - epoch` | `t` = seconds since the init that opened the session (first init after load or full shutdown) |
//! | `init` | `ok`, `driver_not_loaded`, `no_permission`, `unknown`: what init returns | `ok` |
//!
//! Scenario time before 0 is treated as 0.
//!
//! ## Per-GPU keys (`[gpu]` sections)
//!
//! | key | value | default |
//! |-----|-------|---------|
//! | `name` | device name | `NVIDIA H100 80GB HBM3` |
//! | `uuid` | device UUID (unique) | `GPU-00000000-0000-0000-0000-00000000000N`, `N` = index as 12 hex digits |
//! | `power` | profile in watts (never negative), or `unsupported` | `const:100` |
//! | `power_window` | `S` seconds: 0 = readings are `P(t)`; `S > 0` = readings are `(E(t) - E(t-S)) / S` | `0` |
//! | `limit_w` | enforced power limit in W, or `unsupported` | `700` |
//! | `counter` | `yes` / `no` (`no`: energy counter is `NVML_ERROR_NOT_SUPPORTED`) | `yes` |
//! | `counter_scale` | factor ≥ 0: the counter advances `F` times the profile's energy, as a miscalibrated counter would (power readings are unaffected) | `1` |
//! | `util` | profile in percent (clamped to 0..=100, rounded), or `unsupported`; memory utilization is half of it | `const:100` |
//! | `reset_at` | `T1,T2,...`: the energy counter restarts from 0 at each `Ti` | none |
//! | `lost_at`, `lost_until` | for `lost_at <= t < lost_until` every device query returns `NVML_ERROR_GPU_IS_LOST` (handle lookup still works) | never, forever |
//! | `error_at` | `T:D[,T:D...]`: for `T <= t < T+D` every reading returns `NVML_ERROR_UNKNOWN` | none |
//! | `glitch_at` | `T:D[,T:D...]`: for `T <= t < T+D` power reads 10 x `limit_w` (7000 W if the limit is unsupported); the counter is unaffected | none |
//! | `hang_at` | `T:D[,T:D...]`: a reading (power, energy, utilization, limits, process lists and samples, as for `error_at`) made at `T <= t < T+D` blocks until `t >= T+D` (until no window contains `t`), as a hung driver call does, then answers as at that time; other threads' calls are not held up | none |
//! | `process` | `pid=P [sm=PROFILE\|none] [start=T] [end=T] [kind=compute\|graphics]` (repeatable, one process each): present for `start <= t < end` in the compute (default) or graphics list; `sm` is its SM utilization in percent (`none`: no samples) | none; `start=0`, `end` never, `kind=compute` |
//! | `process_util` | `yes` / `no` (`no`: `nvmlDeviceGetProcessUtilization` is `NVML_ERROR_NOT_SUPPORTED`, as on MIG) | `yes` |
//! | `process_sample_period` | `S` seconds: per-process samples are taken at scenario times `k·S` only (a call between two returns the latest one, stamped with its scenario time in µs + 1, so it is new only once), as real NVML fills its buffer about once a second; `0` = a fresh sample at every call | `0` |
//! | `mig` | `yes`, `no`, `unsupported` (`nvmlDeviceGetMigMode` is `NOT_SUPPORTED`), `unreadable` (it is `UNKNOWN`) | `no` |
//! | `sm_count` | SMs usable in MIG mode: those of the full-GPU profile (`nvmlDeviceGetGpuInstanceProfileInfo`, `NVML_GPU_INSTANCE_PROFILE_7_SLICE`) | `132` |
//! | `gpm` | `yes` / `no`: GPM support (`nvmlGpmQueryDeviceSupport`; `no` as on A100: `nvmlGpmMigSampleGet` is `NOT_SUPPORTED`) | `no` |
//! | `mig_instance` | `gi=G [ci=C] [profile=P] [sm=N] [memory_mb=M] [activity=PROFILE] [start=T] [end=T] [uuid=U] [gpm_error=T:D]` (repeatable, one MIG device each, see [`mig`]): exists for `start <= t < end`; `activity` is the GPU instance's GPM graphics utilization in percent; `gpm_error`: `nvmlGpmMigSampleGet` is `UNKNOWN` for `T <= t < T+D` | none; `ci=0`, `profile=1g.10gb`, `sm=16`, `memory_mb=9984`, `activity=const:0`, `uuid=MIG-<index>-0000-0000-<gi>-<ci>` |
//!
//! A `process` line may also say `gi=G`: the process runs in MIG GPU instance `G` and is listed
//! on that instance's MIG device handle (and on the parent, as real NVML lists them all there).
//!
//! Profiles (`t` in seconds):
//!
//! * `const:W` — always `W`.
//! * `square:LOW:HIGH:PERIOD` — `LOW` while `t mod PERIOD < PERIOD/2`, else `HIGH`.
//! * `trace:T0=W0,T1=W1,...` — times strictly increasing; linear interpolation
//!   between points, `W0` before `T0`, the last value after the last point.
//!
//! ## Semantics
//!
//! * `E(t)` is the exact integral of the power profile from 0 to `t`
//!   (closed forms, no numeric stepping). The counter is
//!   `counter_scale × (E(t) - E(last reset_at <= t))`, reported in mJ, floored. Energy consumed
//!   while the device is lost or erroring is in the counter.
//! * With `power_window = S`, before `t = S` the average is taken over
//!   `[0, t]` (and at `t = 0` the reading is `P(0)`).
//! * `power = unsupported` also makes the energy counter unsupported.
//! * Power and limits are reported in mW (rounded); the power-limit
//!   constraints are `(limit / 4, limit)`.
//! * A `hang_at` wait comes first; then lost beats `error_at`, which beats `glitch_at`. "Readings" (affected by
//!   `error_at`) are power, energy, utilization and the two limit queries;
//!   name and UUID are only affected by `lost_at`.
//! * Driver version is `550.54.15`, NVML version `12.550.54.15`.
//!
//! # Exported functions
//!
//! `nvmlInit_v2`, `nvmlInitWithFlags` (flags ignored), `nvmlShutdown`,
//! `nvmlErrorString`, `nvmlSystemGetDriverVersion`,
//! `nvmlSystemGetNVMLVersion`, `nvmlDeviceGetCount_v2`,
//! `nvmlDeviceGetHandleByIndex_v2`, `nvmlDeviceGetHandleByUUID`,
//! `nvmlDeviceGetName`, `nvmlDeviceGetUUID`, `nvmlDeviceGetPowerUsage`,
//! `nvmlDeviceGetTotalEnergyConsumption`, `nvmlDeviceGetEnforcedPowerLimit`,
//! `nvmlDeviceGetPowerManagementLimitConstraints`,
//! `nvmlDeviceGetUtilizationRates`, `nvmlDeviceGetComputeRunningProcesses_v3`,
//! `nvmlDeviceGetGraphicsRunningProcesses_v3`, `nvmlDeviceGetProcessUtilization`; for MIG
//! and GPM (in `mig_api`): `nvmlDeviceGetMigMode`, `nvmlDeviceGetMaxMigDeviceCount`,
//! `nvmlDeviceGetMigDeviceHandleByIndex`, `nvmlDeviceIsMigDeviceHandle`,
//! `nvmlDeviceGetGpuInstanceId`, `nvmlDeviceGetComputeInstanceId`,
//! `nvmlDeviceGetAttributes_v2` (MIG handles only, as real NVML),
//! `nvmlDeviceGetGpuInstanceProfileInfo` (the full-GPU profile), `nvmlGpmQueryDeviceSupport`, `nvmlGpmSampleAlloc`,
//! `nvmlGpmSampleFree`, `nvmlGpmMigSampleGet`, `nvmlGpmMetricsGet`. MIG device handles answer
//! name, UUID, IDs, attributes and compute processes, and `NOT_SUPPORTED` for power, energy,
//! utilization and limits, as real NVML.
//! Process lists follow NVML's two-call size protocol (`NVML_ERROR_INSUFFICIENT_SIZE` with the
//! needed count); utilization samples are stamped with the wall clock in µs, one per process
//! per call, and only returned when newer than `lastSeenTimeStamp` (else
//! `NVML_ERROR_NOT_FOUND`, as real NVML). Device handles encode `index + 1` in the
//! pointer value. All functions are thread-safe and never unwind into C.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod device;
pub mod mig;
mod mig_api;
pub mod process;
pub mod profile;
pub mod scenario;
mod state;

pub use state::SCENARIO_ENV;

use device::Fault;
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlProcessInfo_t, nvmlProcessUtilizationSample_t,
    nvmlReturn_enum_NVML_ERROR_ALREADY_INITIALIZED as ALREADY_INITIALIZED,
    nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED as DRIVER_NOT_LOADED,
    nvmlReturn_enum_NVML_ERROR_FUNCTION_NOT_FOUND as FUNCTION_NOT_FOUND,
    nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST as GPU_IS_LOST,
    nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE as INSUFFICIENT_SIZE,
    nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT as INVALID_ARG,
    nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND as LIBRARY_NOT_FOUND,
    nvmlReturn_enum_NVML_ERROR_NOT_FOUND as NOT_FOUND,
    nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED as NOT_SUPPORTED,
    nvmlReturn_enum_NVML_ERROR_NO_PERMISSION as NO_PERMISSION,
    nvmlReturn_enum_NVML_ERROR_UNINITIALIZED as UNINITIALIZED,
    nvmlReturn_enum_NVML_ERROR_UNKNOWN as UNKNOWN, nvmlReturn_enum_NVML_SUCCESS as SUCCESS,
    nvmlReturn_t, nvmlUtilization_t,
};
use scenario::{Gpu, InitOutcome};
use state::InitError;
use std::ffi::{c_char, c_uint, c_ulonglong, CStr};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// Driver version reported by `nvmlSystemGetDriverVersion`.
pub const DRIVER_VERSION: &str = "550.54.15";
/// NVML version reported by `nvmlSystemGetNVMLVersion`.
pub const NVML_VERSION: &str = "12.550.54.15";

/// Runs an FFI body, turning a panic into `NVML_ERROR_UNKNOWN`.
fn guard(body: impl FnOnce() -> nvmlReturn_t) -> nvmlReturn_t {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(UNKNOWN)
}

/// Runs `body` with the scenario and time if initialized.
fn initialized(body: impl FnOnce(&scenario::Scenario, f64) -> nvmlReturn_t) -> nvmlReturn_t {
    guard(|| state::with_scenario(body).unwrap_or(UNINITIALIZED))
}

fn encode_handle(index: usize) -> nvmlDevice_t {
    std::ptr::without_provenance_mut(index + 1)
}

fn decode_handle(device: nvmlDevice_t) -> Option<usize> {
    device.addr().checked_sub(1)
}

/// Which faults a device query is subject to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Query {
    /// Name / UUID: only `lost_at`.
    Identity,
    /// Power, energy, utilization, limits: `lost_at` and `error_at`.
    Reading,
}

/// Common path of every per-device query: initialized → valid handle →
/// non-null outputs → faults → `body`.
fn device_query(
    device: nvmlDevice_t,
    outputs_non_null: bool,
    query: Query,
    body: impl FnOnce(&Gpu, f64) -> nvmlReturn_t,
) -> nvmlReturn_t {
    if mig_api::is_mig(device) {
        // NVML answers these for the parent only; name, UUID and processes are answered by
        // `mig_api` before this.
        let reading = query == Query::Reading;
        return mig_api::mig_query(device, reading, |_, _, _| NOT_SUPPORTED).unwrap_or(INVALID_ARG);
    }
    if query == Query::Reading {
        wait_out_hang(device);
    }
    initialized(|scenario, t| {
        let Some(gpu) = decode_handle(device).and_then(|i| scenario.gpus.get(i)) else {
            return INVALID_ARG;
        };
        if !outputs_non_null {
            return INVALID_ARG;
        }
        match gpu.fault_at(t) {
            Some(Fault::Lost) => GPU_IS_LOST,
            Some(Fault::Transient) if query == Query::Reading => UNKNOWN,
            _ => body(gpu, t),
        }
    })
}

/// Blocks while a `hang_at` window of `device` contains the scenario time, sleeping without
/// holding the library's lock (so other threads' calls, and shutdown, go on meanwhile).
fn wait_out_hang(device: nvmlDevice_t) {
    loop {
        let left = state::with_scenario(|scenario, t| {
            let gpu = decode_handle(device).and_then(|i| scenario.gpus.get(i))?;
            gpu.hang_until(t).map(|end| end - t)
        });
        match left.flatten() {
            Some(s) if s > 0.0 && s.is_finite() => std::thread::sleep(Duration::from_secs_f64(s)),
            _ => return,
        }
    }
}

/// Writes `value` through `out`.
///
/// # Safety
/// `out` must be null or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> nvmlReturn_t {
    if out.is_null() {
        return INVALID_ARG;
    }
    // SAFETY: `out` is non-null and, per this function's contract, valid for writes.
    unsafe { out.write(value) };
    SUCCESS
}

/// Copies `s` plus a NUL terminator into `buf` of `length` bytes.
///
/// # Safety
/// `buf` must be null or valid for writes of `length` bytes.
unsafe fn put_str(buf: *mut c_char, length: c_uint, s: &str) -> nvmlReturn_t {
    if buf.is_null() {
        return INVALID_ARG;
    }
    let bytes = s.as_bytes();
    if bytes.len() >= length as usize {
        return INSUFFICIENT_SIZE;
    }
    // SAFETY: `buf` is non-null and valid for `length > bytes.len()` bytes, so
    // both the copy and the terminator are in bounds; `bytes` is a separate
    // Rust allocation, so the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        buf.add(bytes.len()).write(0);
    }
    SUCCESS
}

fn init_common() -> nvmlReturn_t {
    guard(|| match state::init() {
        Ok(()) => SUCCESS,
        Err(InitError::Scenario(msg)) => {
            // Ignore a failing stderr: there is nowhere else to report it.
            let _ = writeln!(std::io::stderr(), "fake-nvml: {msg}");
            UNKNOWN
        }
        Err(InitError::Refused(outcome)) => match outcome {
            InitOutcome::Ok => SUCCESS,
            InitOutcome::DriverNotLoaded => DRIVER_NOT_LOADED,
            InitOutcome::NoPermission => NO_PERMISSION,
            InitOutcome::Unknown => UNKNOWN,
        },
    })
}

/// Initializes the library from `$FAKE_NVML_SCENARIO`.
///
/// # Safety
/// No pointer arguments; safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    init_common()
}

/// Same as [`nvmlInit_v2`]; `flags` are ignored.
///
/// # Safety
/// No pointer arguments; safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    init_common()
}

/// Releases one successful init.
///
/// # Safety
/// No pointer arguments; safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    guard(|| {
        if state::shutdown() {
            SUCCESS
        } else {
            UNINITIALIZED
        }
    })
}

fn error_c_str(result: nvmlReturn_t) -> &'static CStr {
    match result {
        SUCCESS => c"Success",
        UNINITIALIZED => c"Uninitialized",
        INVALID_ARG => c"Invalid Argument",
        NOT_SUPPORTED => c"Not Supported",
        NO_PERMISSION => c"Insufficient Permissions",
        ALREADY_INITIALIZED => c"Already Initialized",
        NOT_FOUND => c"Not Found",
        INSUFFICIENT_SIZE => c"Insufficient Size",
        DRIVER_NOT_LOADED => c"Driver Not Loaded",
        LIBRARY_NOT_FOUND => c"NVML Shared Library Not Found",
        FUNCTION_NOT_FOUND => c"Function Not Found",
        GPU_IS_LOST => c"GPU is lost",
        _ => c"Unknown Error",
    }
}

/// Static, NUL-terminated description of `result` (works without init).
///
/// # Safety
/// No pointer arguments; the returned pointer is valid for the life of the
/// library and must not be freed.
#[no_mangle]
pub unsafe extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    panic::catch_unwind(|| error_c_str(result))
        .unwrap_or(c"Unknown Error")
        .as_ptr()
}

/// Writes the driver version (`550.54.15`).
///
/// # Safety
/// `version` must be null or valid for writes of `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `version` / `length`.
    initialized(|_, _| unsafe { put_str(version, length, DRIVER_VERSION) })
}

/// Writes the NVML version (`12.550.54.15`).
///
/// # Safety
/// `version` must be null or valid for writes of `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `version` / `length`.
    initialized(|_, _| unsafe { put_str(version, length, NVML_VERSION) })
}

/// Writes the number of `[gpu]` sections.
///
/// # Safety
/// `device_count` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count: *mut c_uint) -> nvmlReturn_t {
    initialized(|scenario, _| {
        let count = c_uint::try_from(scenario.gpus.len()).unwrap_or(c_uint::MAX);
        // SAFETY: forwarded caller contract on `device_count`.
        unsafe { put(device_count, count) }
    })
}

/// Writes the handle of device `index`; out of range → `NVML_ERROR_INVALID_ARGUMENT`.
///
/// # Safety
/// `device` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    initialized(|scenario, _| {
        let index = index as usize;
        if index >= scenario.gpus.len() {
            return INVALID_ARG;
        }
        // SAFETY: forwarded caller contract on `device`.
        unsafe { put(device, encode_handle(index)) }
    })
}

/// Writes the handle of the device with this UUID; unknown → `NVML_ERROR_NOT_FOUND`.
///
/// # Safety
/// `uuid` must be null or a valid NUL-terminated string; `device` must be
/// null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetHandleByUUID(
    uuid: *const c_char,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    initialized(|scenario, t| {
        if uuid.is_null() || device.is_null() {
            return INVALID_ARG;
        }
        // SAFETY: `uuid` is non-null and NUL-terminated per the caller contract.
        let wanted = unsafe { CStr::from_ptr(uuid) }.to_bytes();
        match scenario
            .gpus
            .iter()
            .position(|g| g.uuid.as_bytes() == wanted)
        {
            // SAFETY: `device` is non-null and valid for writes per the caller contract.
            Some(index) => unsafe { put(device, encode_handle(index)) },
            None => match mig_api::handle_by_uuid(scenario, t, wanted) {
                // SAFETY: `device` is non-null and valid for writes per the caller contract.
                Some(mig) => unsafe { put(device, mig) },
                None => NOT_FOUND,
            },
        }
    })
}

/// Writes the device name.
///
/// # Safety
/// `name` must be null or valid for writes of `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `name` / `length`.
    if let Some(code) = unsafe { mig_api::name(device, name, length) } {
        return code;
    }
    device_query(device, !name.is_null(), Query::Identity, |gpu, _| {
        // SAFETY: forwarded caller contract on `name` / `length`.
        unsafe { put_str(name, length, &gpu.name) }
    })
}

/// Writes the device UUID.
///
/// # Safety
/// `uuid` must be null or valid for writes of `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract on `uuid` / `length`.
    if let Some(code) = unsafe { mig_api::uuid(device, uuid, length) } {
        return code;
    }
    device_query(device, !uuid.is_null(), Query::Identity, |gpu, _| {
        // SAFETY: forwarded caller contract on `uuid` / `length`.
        unsafe { put_str(uuid, length, &gpu.uuid) }
    })
}

/// Writes the power reading in mW (see [`scenario::Gpu::power_reading_mw`]).
///
/// # Safety
/// `power` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: nvmlDevice_t,
    power: *mut c_uint,
) -> nvmlReturn_t {
    device_query(device, !power.is_null(), Query::Reading, |gpu, t| {
        match gpu.power_reading_mw(t) {
            // SAFETY: forwarded caller contract on `power`.
            Some(mw) => unsafe { put(power, mw) },
            None => NOT_SUPPORTED,
        }
    })
}

/// Writes the energy counter in mJ (see [`scenario::Gpu::counter_mj`]).
///
/// # Safety
/// `energy` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetTotalEnergyConsumption(
    device: nvmlDevice_t,
    energy: *mut c_ulonglong,
) -> nvmlReturn_t {
    device_query(device, !energy.is_null(), Query::Reading, |gpu, t| {
        match gpu.counter_mj(t) {
            // SAFETY: forwarded caller contract on `energy`.
            Some(mj) => unsafe { put(energy, mj) },
            None => NOT_SUPPORTED,
        }
    })
}

/// Writes the enforced power limit in mW.
///
/// # Safety
/// `limit` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetEnforcedPowerLimit(
    device: nvmlDevice_t,
    limit: *mut c_uint,
) -> nvmlReturn_t {
    device_query(device, !limit.is_null(), Query::Reading, |gpu, _| {
        match gpu.limit_mw() {
            // SAFETY: forwarded caller contract on `limit`.
            Some(mw) => unsafe { put(limit, mw) },
            None => NOT_SUPPORTED,
        }
    })
}

/// Writes the power-limit constraints in mW: `limit / 4` and `limit`.
///
/// # Safety
/// `min_limit` and `max_limit` must each be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetPowerManagementLimitConstraints(
    device: nvmlDevice_t,
    min_limit: *mut c_uint,
    max_limit: *mut c_uint,
) -> nvmlReturn_t {
    let non_null = !min_limit.is_null() && !max_limit.is_null();
    device_query(device, non_null, Query::Reading, |gpu, _| {
        match gpu.limit_constraints_mw() {
            // SAFETY: forwarded caller contract; both pointers checked non-null.
            Some((min, max)) => unsafe {
                put(min_limit, min);
                put(max_limit, max)
            },
            None => NOT_SUPPORTED,
        }
    })
}

/// Writes GPU and memory utilization in percent.
///
/// # Safety
/// `utilization` must be null or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    device_query(device, !utilization.is_null(), Query::Reading, |gpu, t| {
        match gpu.utilization(t) {
            // SAFETY: forwarded caller contract on `utilization`.
            Some((gpu, memory)) => unsafe { put(utilization, nvmlUtilization_t { gpu, memory }) },
            None => NOT_SUPPORTED,
        }
    })
}

/// Writes the running processes of `kind` at `t` with NVML's two-call size protocol.
///
/// # Safety
/// `count` must be null or valid for a read and a write; `infos` must be null or valid for
/// writes of `*count` entries.
unsafe fn running_processes(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    kind: process::Kind,
) -> nvmlReturn_t {
    let list = |processes: &[process::Process], t: f64, gi: Option<u32>| {
        let found: Vec<(u32, Option<u32>)> = processes
            .iter()
            .filter(|p| p.kind == kind && p.running_at(t))
            .filter(|p| gi.is_none() || p.gi == gi)
            .map(|p| (p.pid, p.gi))
            .collect();
        // SAFETY: forwarded caller contract.
        unsafe { write_processes(count, infos, found) }
    };
    let on_mig = mig_api::mig_query(device, true, |gpu, m, t| match kind {
        process::Kind::Compute => list(&gpu.processes, t, Some(m.gi)),
        process::Kind::Graphics => NOT_SUPPORTED,
    });
    on_mig.unwrap_or_else(|| {
        device_query(device, !count.is_null(), Query::Reading, |gpu, t| {
            list(&gpu.processes, t, None)
        })
    })
}

/// Writes `(pid, gpu instance)` entries with NVML's two-call size protocol.
///
/// # Safety
/// As [`running_processes`].
unsafe fn write_processes(
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
    found: Vec<(u32, Option<u32>)>,
) -> nvmlReturn_t {
    if count.is_null() {
        return INVALID_ARG;
    }
    // SAFETY: `count` is non-null and valid per the contract.
    let capacity = unsafe { count.read() } as usize;
    // SAFETY: as above.
    unsafe { count.write(found.len() as c_uint) };
    if found.is_empty() {
        return SUCCESS;
    }
    if infos.is_null() || capacity < found.len() {
        return INSUFFICIENT_SIZE;
    }
    for (i, (pid, gi)) in found.into_iter().enumerate() {
        let info = nvmlProcessInfo_t {
            pid,
            usedGpuMemory: 1 << 30,
            gpuInstanceId: gi.unwrap_or(u32::MAX),
            computeInstanceId: gi.map_or(u32::MAX, |_| 0),
        };
        // SAFETY: `infos` holds at least `capacity > i` entries per the contract.
        unsafe { infos.add(i).write(info) };
    }
    SUCCESS
}

/// Writes the compute processes running now (`process` lines with `kind=compute`).
///
/// # Safety
/// `count` must be null or valid for a read and a write; `infos` must be null or valid for
/// writes of `*count` entries.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract.
    unsafe { running_processes(device, count, infos, process::Kind::Compute) }
}

/// Writes the graphics processes running now (`process` lines with `kind=graphics`).
///
/// # Safety
/// As [`nvmlDeviceGetComputeRunningProcesses_v3`].
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetGraphicsRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    // SAFETY: forwarded caller contract.
    unsafe { running_processes(device, count, infos, process::Kind::Graphics) }
}

/// Writes one utilization sample, stamped now (wall clock, µs), per running process that has
/// an `sm` profile, if now is after `last_seen`; none → `NVML_ERROR_NOT_FOUND` as real NVML.
/// `process_util = no` → `NVML_ERROR_NOT_SUPPORTED`.
///
/// # Safety
/// `count` must be null or valid for a read and a write; `samples` must be null or valid for
/// writes of `*count` entries.
#[no_mangle]
pub unsafe extern "C" fn nvmlDeviceGetProcessUtilization(
    device: nvmlDevice_t,
    samples: *mut nvmlProcessUtilizationSample_t,
    count: *mut c_uint,
    last_seen: c_ulonglong,
) -> nvmlReturn_t {
    device_query(device, !count.is_null(), Query::Reading, |gpu, t| {
        if !gpu.process_util {
            return NOT_SUPPORTED;
        }
        let mut now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let period = gpu.process_sample_period;
        let mut t = t;
        if period > 0.0 {
            // The latest sample was taken at the last multiple of the period; its stamp is
            // derived from that time alone (µs, +1 so the first is after 0), so repeated calls
            // between two samples return the same stamp and it is new only once.
            let taken = (t.max(0.0) / period).floor() * period;
            now_us = (taken * 1e6).round() as u64 + 1;
            t = taken;
        }
        let found: Vec<(u32, u32)> = if now_us > last_seen {
            gpu.processes
                .iter()
                .filter(|p| p.running_at(t))
                .filter_map(|p| p.sm_at(t).map(|sm| (p.pid, sm)))
                .collect()
        } else {
            Vec::new()
        };
        // SAFETY: `count` is non-null (checked by `device_query`) and valid per the contract.
        let capacity = unsafe { count.read() } as usize;
        // SAFETY: as above.
        unsafe { count.write(found.len() as c_uint) };
        if found.is_empty() {
            return NOT_FOUND;
        }
        if samples.is_null() || capacity < found.len() {
            return INSUFFICIENT_SIZE;
        }
        for (i, (pid, sm)) in found.into_iter().enumerate() {
            let sample = nvmlProcessUtilizationSample_t {
                pid,
                timeStamp: now_us,
                smUtil: sm,
                memUtil: sm / 2,
                encUtil: 0,
                decUtil: 0,
            };
            // SAFETY: `samples` holds at least `capacity > i` entries per the contract.
            unsafe { samples.add(i).write(sample) };
        }
        SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip() {
        for i in [0, 1, 7, 1000] {
            assert_eq!(decode_handle(encode_handle(i)), Some(i));
        }
        assert_eq!(decode_handle(std::ptr::null_mut()), None);
    }

    #[test]
    fn put_str_respects_length() {
        let mut buf = [0x55 as c_char; 8];
        // SAFETY: `buf` is valid for 8 bytes; lengths passed never exceed it.
        unsafe {
            assert_eq!(put_str(buf.as_mut_ptr(), 7, "1234567"), INSUFFICIENT_SIZE);
            assert_eq!(put_str(buf.as_mut_ptr(), 8, "1234567"), SUCCESS);
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_bytes(), b"1234567");
            assert_eq!(put_str(std::ptr::null_mut(), 8, "x"), INVALID_ARG);
        }
    }

    #[test]
    fn error_strings_are_static() {
        assert_eq!(error_c_str(GPU_IS_LOST), c"GPU is lost");
        assert_eq!(error_c_str(12345), c"Unknown Error");
    }
}
