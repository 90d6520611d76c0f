use super::*;
use crate::backend::sysfs::fake::Tree;

/// Writes cumulative counters of `busy` of `total` ticks, with `cpus` online.
fn stat(t: &Tree, busy: u64, total: u64, cpus: u32) {
    let mut text = format!("cpu  {busy} 0 0 {} 0 0 0 0 0 0\n", total - busy);
    for i in 0..cpus {
        text.push_str(&format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n"));
    }
    t.file("proc/stat", &text);
}

/// A 4-CPU Cascade Lake host with 16 GiB.
fn host(name: &str) -> Tree {
    let t = Tree::new(name);
    stat(&t, 0, 0, 4);
    t.file("proc/meminfo", "MemTotal:       16777216 kB");
    t.file(
        "proc/cpuinfo",
        "vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nstepping\t: 7",
    );
    t.dir("sys/fs/cgroup");
    t
}

fn backend(t: &Tree) -> HostEstimateBackend {
    HostEstimateBackend::discover(
        &t.root().join("proc"),
        Some(&t.root().join("sys/fs/cgroup")),
    )
    .expect("discover")
}

fn cpu(b: &mut HostEstimateBackend) -> (Option<f64>, Option<f64>) {
    let r = b.read(0).expect("read");
    (r.utilization, r.host_size)
}

#[test]
fn utilization_and_vcpus_follow_the_counters_hot_plug_and_cgroup() {
    let t = host("host-est-cpu");
    let mut b = backend(&t);
    assert_eq!(b.cpu_identity().and_then(|i| i.model), Some(85));
    stat(&t, 100, 400, 4);
    assert_eq!(cpu(&mut b), (Some(0.25), Some(4.0)));
    // No time counted since: the same load.
    assert_eq!(cpu(&mut b), (Some(0.25), Some(4.0)));
    // 75 % over the next interval, with a CPU hot-plugged in.
    stat(&t, 400, 800, 5);
    assert_eq!(cpu(&mut b), (Some(0.75), Some(5.0)));
    // A cgroup allowing 2.5 CPUs of time, on 3 of them.
    t.file("sys/fs/cgroup/cpu.max", "250000 100000");
    t.file("sys/fs/cgroup/cpuset.cpus.effective", "0-2");
    stat(&t, 500, 1200, 5);
    assert_eq!(cpu(&mut b), (Some(0.25), Some(2.5)));
}

#[test]
fn garbage_and_counters_going_back_degrade_the_reading() {
    let t = host("host-est-faults");
    let mut b = backend(&t);
    t.file("proc/stat", "cpu  banana\n");
    let r = b.read(0).expect("read");
    assert_eq!((r.utilization, r.host_size), (None, None));
    assert_eq!(r.failed, vec![Field::Utilization]);
    // The next good read measures from the last good one.
    stat(&t, 200, 400, 4);
    assert_eq!(cpu(&mut b), (Some(0.5), Some(4.0)));
    // Counters going back: the last load is kept, the fault counted, counting restarts.
    stat(&t, 10, 20, 4);
    let r = b.read(0).expect("read");
    assert_eq!(r.utilization, Some(0.5));
    assert_eq!(r.failed, vec![Field::Utilization]);
    stat(&t, 10, 420, 4);
    assert_eq!(cpu(&mut b), (Some(0.0), Some(4.0)));
}

#[test]
fn memory_from_installed_memory_and_its_limit() {
    let t = host("host-est-mem");
    let mut b = backend(&t);
    assert_eq!(b.read(1).expect("read").host_size, Some(16.0));
    t.file("sys/fs/cgroup/memory.max", "4294967296");
    assert_eq!(b.read(1).expect("read").host_size, Some(4.0));
    // Counting the whole machine ignores the limit.
    let mut machine =
        HostEstimateBackend::discover(&t.root().join("proc"), None).expect("discover");
    assert_eq!(machine.read(1).expect("read").host_size, Some(16.0));
    t.file("proc/meminfo", "nothing");
    assert_eq!(b.read(1).expect("read").failed, vec![Field::Power]);
}

#[test]
fn start_needs_stat_and_meminfo() {
    let t = Tree::new("host-est-missing");
    let dirs = (t.root().join("proc"), t.root().join("cgroup"));
    assert!(matches!(
        HostEstimateBackend::discover(&dirs.0, Some(&dirs.1)),
        Err(HostEstimateError::Read(_))
    ));
    t.file("proc/stat", "garbage");
    t.file("proc/meminfo", "MemTotal: 1 kB");
    assert!(matches!(
        HostEstimateBackend::discover(&dirs.0, Some(&dirs.1)),
        Err(HostEstimateError::Parse { .. })
    ));
    // Without cpuinfo the processor is unknown (the average coefficients apply).
    stat(&t, 0, 0, 2);
    let b = HostEstimateBackend::discover(&dirs.0, Some(&dirs.1)).expect("discover");
    assert_eq!(b.cpu_identity(), Some(&CpuIdentity::default()));
}
