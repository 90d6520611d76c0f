//! Loads the built `libfake_nvml.so` through `nvml-wrapper`, exactly as the
//! exporter does, and checks what it reports.
//!
//! The library keeps process-global state and reads `FAKE_NVML_SCENARIO` at
//! init, so every test takes `LOCK` for its whole duration.

use fake_nvml::scenario::Scenario;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings::{self as sys, NvmlLib};
use std::ffi::{c_char, c_uint, CStr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static LOCK: Mutex<()> = Mutex::new(());

/// The cdylib built by this `cargo test` invocation. Cargo writes it next to
/// the test executable (`target/debug/deps/`); only `cargo build` copies it
/// to `target/debug/`, so that copy may be stale and is the fallback.
fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a parent dir");
    let candidates = [
        deps.join("libfake_nvml.so"),
        deps.parent()
            .expect("deps has a parent dir")
            .join("libfake_nvml.so"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| panic!("libfake_nvml.so not found in {candidates:?}"))
}

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Holds the test lock and the scenario file for one test.
struct Setup {
    path: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

impl Setup {
    fn new(scenario: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = std::env::temp_dir().join(format!(
            "fake-nvml-test-{}-{}.scenario",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // Scenarios used here must be valid unless a test wants otherwise.
        std::fs::write(&path, scenario).expect("write scenario");
        std::env::set_var(fake_nvml::SCENARIO_ENV, &path);
        Self { path, _lock: lock }
    }

    fn init(&self) -> Result<Nvml, NvmlError> {
        let lib = lib_path();
        Nvml::builder().lib_path(lib.as_os_str()).init()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn devices_names_uuids_versions() {
    let setup = Setup::new(
        "# two GPUs\n\
         [gpu]\n\
         [gpu]\n\
         name=NVIDIA A100-SXM4-40GB\n\
         uuid = GPU-abcdef\n",
    );
    let nvml = setup.init().expect("init");
    assert_eq!(nvml.device_count().expect("count"), 2);
    assert_eq!(nvml.sys_driver_version().expect("driver"), "550.54.15");
    assert_eq!(nvml.sys_nvml_version().expect("nvml"), "12.550.54.15");

    let d0 = nvml.device_by_index(0).expect("gpu 0");
    assert_eq!(d0.name().expect("name"), "NVIDIA H100 80GB HBM3");
    assert_eq!(
        d0.uuid().expect("uuid"),
        "GPU-00000000-0000-0000-0000-000000000000"
    );
    let d1 = nvml.device_by_index(1).expect("gpu 1");
    assert_eq!(d1.name().expect("name"), "NVIDIA A100-SXM4-40GB");
    assert_eq!(d1.uuid().expect("uuid"), "GPU-abcdef");
    let by_uuid = nvml.device_by_uuid("GPU-abcdef").expect("by uuid");
    assert_eq!(by_uuid.name().expect("name"), "NVIDIA A100-SXM4-40GB");

    assert!(matches!(
        nvml.device_by_index(2),
        Err(NvmlError::InvalidArg)
    ));
    assert!(matches!(
        nvml.device_by_uuid("GPU-nope"),
        Err(NvmlError::NotFound)
    ));
}

#[test]
fn power_energy_limits_utilization() {
    let epoch = wall();
    let setup = Setup::new(&format!(
        "epoch = {epoch}\n[gpu]\npower = const:250\nlimit_w = 400\nutil = const:63.6\n"
    ));
    let nvml = setup.init().expect("init");
    let gpu = nvml.device_by_index(0).expect("gpu 0");
    assert_eq!(gpu.power_usage().expect("power"), 250_000);
    assert_eq!(gpu.enforced_power_limit().expect("limit"), 400_000);
    let c = gpu
        .power_management_limit_constraints()
        .expect("constraints");
    assert_eq!((c.min_limit, c.max_limit), (100_000, 400_000));
    let u = gpu.utilization_rates().expect("util");
    assert_eq!((u.gpu, u.memory), (64, 32));

    // counter = floor(250 W * (now - epoch) s in mJ), bracketed by wall time.
    let mut last = 0;
    let mut first = None;
    for _ in 0..5 {
        let before = wall();
        let mj = gpu.total_energy_consumption().expect("energy");
        let after = wall();
        let low = (250.0 * (before - epoch) * 1000.0).floor() as u64;
        let high = (250.0 * (after - epoch) * 1000.0).ceil() as u64;
        assert!(low <= mj && mj <= high, "{low} <= {mj} <= {high}");
        assert!(mj >= last, "counter went backwards: {last} -> {mj}");
        last = mj;
        first.get_or_insert((before, mj));
        sleep(Duration::from_millis(60));
    }
    // Δenergy ≈ P·Δt between the first and last reading.
    let (t0, e0) = first.expect("first reading");
    let dt = wall() - t0;
    let de = (last - e0) as f64 / 1000.0;
    assert!(de > 0.0 && de <= 250.0 * dt + 1e-3, "ΔE {de} J over {dt} s");
}

#[test]
fn square_wave_with_reset_matches_model() {
    // Scenario time ≈ 1000 s at init; reset at 900 s.
    let epoch = wall() - 1000.0;
    let text = format!("epoch = {epoch}\n[gpu]\npower = square:100:400:0.2\nreset_at = 900\n");
    let model = Scenario::parse(&text).expect("parse").gpus.remove(0);
    let setup = Setup::new(&text);
    let nvml = setup.init().expect("init");
    let gpu = nvml.device_by_index(0).expect("gpu 0");
    for _ in 0..5 {
        let before = wall() - epoch;
        let mj = gpu.total_energy_consumption().expect("energy");
        let after = wall() - epoch;
        let low = model.counter_mj(before).expect("counter");
        let high = model.counter_mj(after).expect("counter");
        assert!(low <= mj && mj <= high, "{low} <= {mj} <= {high}");
        // Analytic: the counter holds E(t) - E(900) = 250 W average * (t - 900)
        // within one half-period's worth of imbalance (0.1 s * 150 W).
        let avg = 250.0 * (before - 900.0) * 1000.0;
        assert!((mj as f64 - avg).abs() < 15_000.0 + 250.0 * (after - before) * 1000.0);
        let p = gpu.power_usage().expect("power");
        assert!(p == 100_000 || p == 400_000, "{p}");
        sleep(Duration::from_millis(37));
    }
}

#[test]
fn gpu_lost_window() {
    let epoch = wall();
    let setup = Setup::new(&format!(
        "epoch = {epoch}\n\
         [gpu]\npower = const:100\nlost_at = 0\nlost_until = 1.0\n\
         [gpu]\nlost_at = 0\n"
    ));
    let nvml = setup.init().expect("init");
    // Handle lookup still succeeds while lost.
    let recovering = nvml.device_by_index(0).expect("gpu 0");
    let gone = nvml.device_by_index(1).expect("gpu 1");
    assert!(nvml
        .device_by_uuid("GPU-00000000-0000-0000-0000-000000000001")
        .is_ok());

    assert!(matches!(gone.power_usage(), Err(NvmlError::GpuLost)));
    assert!(matches!(
        gone.total_energy_consumption(),
        Err(NvmlError::GpuLost)
    ));
    assert!(matches!(gone.name(), Err(NvmlError::GpuLost)));
    assert!(matches!(gone.uuid(), Err(NvmlError::GpuLost)));
    assert!(matches!(gone.utilization_rates(), Err(NvmlError::GpuLost)));
    assert!(matches!(
        gone.enforced_power_limit(),
        Err(NvmlError::GpuLost)
    ));

    let r = recovering.power_usage();
    if wall() - epoch < 1.0 {
        assert!(matches!(r, Err(NvmlError::GpuLost)), "{r:?}");
    }
    while wall() - epoch < 1.05 {
        sleep(Duration::from_millis(50));
    }
    assert_eq!(
        recovering.power_usage().expect("power after recovery"),
        100_000
    );
    // Energy consumed while lost is in the counter.
    let mj = recovering.total_energy_consumption().expect("energy");
    assert!(mj >= 104_900, "{mj}");
    assert!(matches!(gone.power_usage(), Err(NvmlError::GpuLost)));
}

#[test]
fn unsupported_features() {
    let setup = Setup::new(
        "[gpu]\ncounter = no\nutil = unsupported\nlimit_w = unsupported\n\
         [gpu]\npower = unsupported\n",
    );
    let nvml = setup.init().expect("init");
    let g0 = nvml.device_by_index(0).expect("gpu 0");
    assert!(matches!(
        g0.total_energy_consumption(),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(
        g0.utilization_rates(),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(
        g0.enforced_power_limit(),
        Err(NvmlError::NotSupported)
    ));
    assert!(matches!(
        g0.power_management_limit_constraints(),
        Err(NvmlError::NotSupported)
    ));
    assert_eq!(g0.power_usage().expect("power"), 100_000);
    let g1 = nvml.device_by_index(1).expect("gpu 1");
    assert!(matches!(g1.power_usage(), Err(NvmlError::NotSupported)));
    assert!(matches!(
        g1.total_energy_consumption(),
        Err(NvmlError::NotSupported)
    ));
}

#[test]
fn transient_errors_and_glitches() {
    let setup = Setup::new(
        "[gpu]\nerror_at = 0:1000\n\
         [gpu]\nlimit_w = 300\nglitch_at = 0:1000\n",
    );
    let started = std::time::Instant::now();
    let nvml = setup.init().expect("init");
    let erroring = nvml.device_by_index(0).expect("gpu 0");
    assert!(matches!(erroring.power_usage(), Err(NvmlError::Unknown)));
    assert!(matches!(
        erroring.total_energy_consumption(),
        Err(NvmlError::Unknown)
    ));
    assert!(matches!(
        erroring.utilization_rates(),
        Err(NvmlError::Unknown)
    ));
    assert_eq!(erroring.name().expect("name"), "NVIDIA H100 80GB HBM3");
    let glitching = nvml.device_by_index(1).expect("gpu 1");
    assert_eq!(glitching.power_usage().expect("power"), 3_000_000);
    // The counter is unaffected: 100 W since init.
    let mj = glitching.total_energy_consumption().expect("energy");
    assert!(mj as f64 <= 100.0 * started.elapsed().as_secs_f64() * 1000.0 + 1.0);
}

#[test]
fn init_failures() {
    for (value, check) in [
        (
            "driver_not_loaded",
            (|e| matches!(e, NvmlError::DriverNotLoaded)) as fn(&NvmlError) -> bool,
        ),
        ("no_permission", |e| matches!(e, NvmlError::NoPermission)),
        ("unknown", |e| matches!(e, NvmlError::Unknown)),
    ] {
        let setup = Setup::new(&format!("init = {value}\n[gpu]\n"));
        let Err(err) = setup.init() else {
            panic!("init = {value} must fail");
        };
        assert!(check(&err), "init = {value}: {err:?}");
    }

    // Invalid scenario, missing file, unset variable → Unknown (and a
    // `fake-nvml:` line on stderr).
    let setup = Setup::new("[gpu]\npower = sideways\n");
    assert!(matches!(setup.init(), Err(NvmlError::Unknown)));
    std::env::set_var(fake_nvml::SCENARIO_ENV, "/nonexistent/fake-nvml.scenario");
    assert!(matches!(setup.init(), Err(NvmlError::Unknown)));
    std::env::remove_var(fake_nvml::SCENARIO_ENV);
    assert!(matches!(setup.init(), Err(NvmlError::Unknown)));
}

#[test]
fn raw_abi_edge_cases() {
    let setup = Setup::new("[gpu]\nname = ABCDEFGH\n");
    // SAFETY: loading our own test library; its initializers are trivial.
    let lib = unsafe { NvmlLib::new(lib_path()) }.expect("load");
    let mut count: c_uint = 0;
    let mut handle: sys::nvmlDevice_t = std::ptr::null_mut();
    let mut buf = [0 as c_char; 16];
    // SAFETY: every pointer passed is null (on purpose) or points to a live
    // local of the right type; buffer lengths never exceed `buf`.
    unsafe {
        let msg = CStr::from_ptr(lib.nvmlErrorString(sys::nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST));
        assert_eq!(msg.to_str().expect("utf8"), "GPU is lost");

        assert_eq!(
            lib.nvmlDeviceGetCount_v2(&mut count),
            sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
        );
        assert_eq!(
            lib.nvmlShutdown(),
            sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
        );

        // Init is reference counted: two inits need two shutdowns.
        assert_eq!(lib.nvmlInit_v2(), sys::nvmlReturn_enum_NVML_SUCCESS);
        assert_eq!(lib.nvmlInitWithFlags(0), sys::nvmlReturn_enum_NVML_SUCCESS);
        assert_eq!(lib.nvmlShutdown(), sys::nvmlReturn_enum_NVML_SUCCESS);

        assert_eq!(
            lib.nvmlDeviceGetCount_v2(&mut count),
            sys::nvmlReturn_enum_NVML_SUCCESS
        );
        assert_eq!(count, 1);
        assert_eq!(
            lib.nvmlDeviceGetCount_v2(std::ptr::null_mut()),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetHandleByIndex_v2(0, std::ptr::null_mut()),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetHandleByIndex_v2(0, &mut handle),
            sys::nvmlReturn_enum_NVML_SUCCESS
        );
        // Name needs 9 bytes with the NUL.
        assert_eq!(
            lib.nvmlDeviceGetName(handle, buf.as_mut_ptr(), 8),
            sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
        );
        assert_eq!(
            lib.nvmlDeviceGetName(handle, buf.as_mut_ptr(), 9),
            sys::nvmlReturn_enum_NVML_SUCCESS
        );
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_bytes(), b"ABCDEFGH");
        assert_eq!(
            lib.nvmlDeviceGetUUID(handle, buf.as_mut_ptr(), 16),
            sys::nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE
        );
        assert_eq!(
            lib.nvmlDeviceGetName(handle, std::ptr::null_mut(), 16),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        let mut mw: c_uint = 0;
        assert_eq!(
            lib.nvmlDeviceGetPowerUsage(std::ptr::null_mut(), &mut mw),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetPowerUsage(std::ptr::without_provenance_mut(2), &mut mw),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetPowerUsage(handle, std::ptr::null_mut()),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetHandleByUUID(std::ptr::null(), &mut handle),
            sys::nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT
        );

        assert_eq!(lib.nvmlShutdown(), sys::nvmlReturn_enum_NVML_SUCCESS);
        assert_eq!(
            lib.nvmlDeviceGetPowerUsage(handle, &mut mw),
            sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
        );
        assert_eq!(
            lib.nvmlSystemGetDriverVersion(buf.as_mut_ptr(), 16),
            sys::nvmlReturn_enum_NVML_ERROR_UNINITIALIZED
        );
    }
    drop(setup);
}

#[test]
fn processes_and_their_utilization() {
    let setup = Setup::new(
        "[gpu]\n\
         process = pid=11 sm=const:60\n\
         process = pid=12 sm=none\n\
         process = pid=13 kind=graphics sm=const:25\n\
         process = pid=14 start=1000\n\
         [gpu]\n\
         process_util = no\n",
    );
    let nvml = setup.init().expect("init");
    let d0 = nvml.device_by_index(0).expect("gpu 0");
    let compute: Vec<u32> = d0
        .running_compute_processes()
        .expect("compute")
        .iter()
        .map(|p| p.pid)
        .collect();
    assert_eq!(compute, [11, 12]);
    let graphics = d0.running_graphics_processes().expect("graphics");
    assert_eq!(graphics.len(), 1);
    assert_eq!(graphics[0].gpu_instance_id, None, "not MIG");
    let samples = d0.process_utilization_stats(0).expect("samples");
    let mut seen: Vec<(u32, u32)> = samples.iter().map(|s| (s.pid, s.sm_util)).collect();
    seen.sort_unstable();
    assert_eq!(seen, [(11, 60), (13, 25)]);
    let newest = samples.iter().map(|s| s.timestamp).max().expect("stamped");
    assert!(matches!(
        d0.process_utilization_stats(newest + 60_000_000),
        Err(NvmlError::NotFound)
    ));
    let d1 = nvml.device_by_index(1).expect("gpu 1");
    assert!(d1.running_compute_processes().expect("none").is_empty());
    assert!(matches!(
        d1.process_utilization_stats(0),
        Err(NvmlError::NotSupported)
    ));
}

#[test]
fn a_hung_reading_blocks_only_its_caller_until_the_window_ends() {
    let epoch = wall();
    let setup = Setup::new(&format!(
        "epoch = {epoch}\n[gpu]\npower = const:100\nhang_at = 0:2\n[gpu]\n"
    ));
    let nvml = setup.init().expect("init");
    let (hung, other) = (
        nvml.device_by_index(0).expect("gpu 0"),
        nvml.device_by_index(1).expect("gpu 1"),
    );
    let returned = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let caller = s.spawn(|| {
            let mj = hung.total_energy_consumption();
            returned.store(true, Ordering::SeqCst);
            (mj, wall() - epoch)
        });
        sleep(Duration::from_millis(100));
        // Meanwhile identity queries and the other GPU answer.
        assert_eq!(hung.name().expect("name"), "NVIDIA H100 80GB HBM3");
        assert_eq!(other.power_usage().expect("power"), 100_000);
        assert!(
            !returned.load(Ordering::SeqCst),
            "the hung call returned early"
        );
        let (mj, t) = caller.join().expect("caller");
        assert!(t >= 2.0, "returned at t = {t}");
        // It answers as at the time it returns: 100 W for at least 2 s.
        assert!(mj.expect("energy") >= 200_000);
    });
    // After the window readings answer at once.
    assert_eq!(hung.power_usage().expect("power"), 100_000);
}
