//! Text the host estimate reads (`backend::host_estimate::procfs`): `/proc/stat`,
//! `/proc/cpuinfo`, `/proc/meminfo` and the cgroup's `cpu.max`, `cpuset.cpus.effective` and
//! `memory.max` never panic the exporter, and what parses is usable by the model.
#![no_main]

use gpu_carbon_exporter::backend::host_estimate::{procfs, utilization, vcpus, CpuTimes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((times, online)) = procfs::parse_stat(text) {
        assert!(times.busy <= times.total && online >= 1);
        if let Some(u) = utilization(CpuTimes::default(), times) {
            assert!((0.0..=1.0).contains(&u));
        }
    }
    let _ = procfs::parse_cpuinfo(text);
    if let Some(bytes) = procfs::parse_meminfo(text) {
        assert_eq!(bytes % 1024, 0);
    }
    let quota = procfs::parse_cpu_max(text);
    if let Some(q) = quota {
        assert!(q > 0.0);
    }
    let cpuset = procfs::parse_cpuset(text);
    assert!(cpuset != Some(0));
    let n = vcpus(4, cpuset, quota);
    assert!(n >= 0.0 && n <= 4.0, "{n}");
    let _ = procfs::parse_memory_max(text);
});
