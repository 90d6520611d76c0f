//! Loads the built `libfake_nvml.so` through `nvml-wrapper` and checks its MIG and GPM answers:
//! the calls the exporter makes on a MIG GPU, as real NVML answers them.
//!
//! The library keeps process-global state and reads `FAKE_NVML_SCENARIO` at init, so the
//! tests of this binary run one at a time under `LOCK`.

use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::Nvml;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

static LOCK: Mutex<()> = Mutex::new(());

fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    [
        deps.join("libfake_nvml.so"),
        deps.join("../libfake_nvml.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("libfake_nvml.so next to the test")
}

fn with_scenario<R>(name: &str, text: &str, body: impl FnOnce(&Nvml) -> R) -> R {
    let _lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join(format!("fake-nvml-mig-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write scenario");
    std::env::set_var(fake_nvml::SCENARIO_ENV, &path);
    let nvml = Nvml::builder()
        .lib_path(lib_path().as_os_str())
        .init()
        .expect("init");
    let out = body(&nvml);
    drop(nvml);
    let _ = std::fs::remove_file(&path);
    out
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[test]
fn mig_devices_answer_identity_processes_and_not_power() {
    let text = "[gpu]\nmig = yes\nsm_count = 132\n\
                mig_instance = gi=1 sm=16 profile=1g.10gb uuid=MIG-a\n\
                mig_instance = gi=2 sm=32 profile=2g.20gb memory_mb=19968\n\
                mig_instance = gi=5 start=1000\n\
                process = pid=10 gi=1\nprocess = pid=11 gi=2\nprocess = pid=12 gi=2\n";
    with_scenario("identity", text, |nvml| {
        let gpu = nvml.device_by_index(0).expect("gpu");
        assert_eq!(gpu.mig_mode().expect("mode").current, 1);
        assert_eq!(gpu.mig_device_count().expect("max"), 7);
        // As real NVML: attributes for MIG handles only; the full-GPU profile gives the SMs.
        assert!(matches!(gpu.attributes(), Err(NvmlError::NotSupported)));
        let full = nvml_wrapper_sys::bindings::NVML_GPU_INSTANCE_PROFILE_7_SLICE;
        assert_eq!(
            gpu.profile_info(full)
                .expect("profile")
                .multiprocessor_count,
            132
        );
        let a = gpu.mig_device_by_index(0).expect("first");
        let b = gpu.mig_device_by_index(1).expect("second");
        // The third exists only from t = 1000.
        assert!(matches!(
            gpu.mig_device_by_index(2),
            Err(NvmlError::NotFound)
        ));
        assert_eq!(a.uuid().expect("uuid"), "MIG-a");
        assert_eq!(a.name().expect("name"), "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
        assert!(a.mig_is_mig_device_handle().expect("is mig"));
        assert!(!gpu.mig_is_mig_device_handle().expect("is mig"));
        let attrs = b.attributes().expect("attrs");
        assert_eq!(
            (attrs.multiprocessor_count, attrs.memory_size_mb),
            (32, 19968)
        );
        assert_eq!(
            b.uuid().expect("uuid"),
            "MIG-00000000-0000-0000-0002-000000000000"
        );
        let pids = |d: &nvml_wrapper::Device| -> Vec<u32> {
            let mut p: Vec<u32> = d
                .running_compute_processes()
                .expect("processes")
                .iter()
                .map(|p| p.pid)
                .collect();
            p.sort_unstable();
            p
        };
        assert_eq!(pids(&a), vec![10]);
        assert_eq!(pids(&b), vec![11, 12]);
        assert_eq!(pids(&gpu), vec![10, 11, 12], "the parent lists them all");
        let by_uuid = nvml.device_by_uuid("MIG-a").expect("by MIG uuid");
        assert_eq!(pids(&by_uuid), vec![10]);
        // NVML measures power and energy for the parent only.
        assert!(matches!(a.power_usage(), Err(NvmlError::NotSupported)));
        assert!(matches!(
            a.total_energy_consumption(),
            Err(NvmlError::NotSupported)
        ));
        assert!(matches!(
            a.utilization_rates(),
            Err(NvmlError::NotSupported)
        ));
        assert!(matches!(
            a.running_graphics_processes(),
            Err(NvmlError::NotSupported)
        ));
        assert!(gpu.power_usage().is_ok());
    });
}

#[test]
fn gpm_gives_the_exact_mean_activity_between_two_samples() {
    let epoch = now();
    let text = format!(
        "epoch = {epoch}\n[gpu]\nmig = yes\ngpm = yes\n\
         mig_instance = gi=3 activity=const:40\n\
         mig_instance = gi=4 activity=const:70 gpm_error=0:1000\n"
    );
    with_scenario("gpm", &text, |nvml| {
        let gpu = nvml.device_by_index(0).expect("gpu");
        assert!(gpu.gpm_support().expect("support"));
        let s1 = gpu.gpm_mig_sample(3).expect("sample");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let s2 = gpu.gpm_mig_sample(3).expect("sample");
        let ids = [GpmMetricId::GraphicsUtil, GpmMetricId::SmUtil];
        let got = gpm_metrics_get(nvml, &s1, &s2, &ids).expect("metrics");
        assert_eq!(got[0].as_ref().expect("graphics").value, 40.0);
        assert!(matches!(got[1], Err(NvmlError::NotSupported)));
        assert!(matches!(gpu.gpm_mig_sample(4), Err(NvmlError::Unknown)));
        assert!(matches!(gpu.gpm_mig_sample(9), Err(NvmlError::InvalidArg)));
    });
}

#[test]
fn without_gpm_or_mig_the_calls_say_so() {
    let text = "[gpu]\nmig = yes\nmig_instance = gi=1\n[gpu]\n[gpu]\nmig = unreadable\n";
    with_scenario("nogpm", text, |nvml| {
        let a100 = nvml.device_by_index(0).expect("gpu");
        assert!(!a100.gpm_support().expect("support"));
        assert!(matches!(
            a100.gpm_mig_sample(1),
            Err(NvmlError::NotSupported)
        ));
        let plain = nvml.device_by_index(1).expect("gpu");
        assert_eq!(plain.mig_mode().expect("mode").current, 0);
        assert!(matches!(
            plain.mig_device_by_index(0),
            Err(NvmlError::NotSupported)
        ));
        let broken = nvml.device_by_index(2).expect("gpu");
        assert!(matches!(broken.mig_mode(), Err(NvmlError::Unknown)));
    });
}
