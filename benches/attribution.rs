//! Cost of attribution per sample with 8 GPUs × 20 processes: the split, the label lookup and
//! the workload table (identities cached, the steady state), and the identity resolution of
//! 160 new PIDs from a procfs tree (`/proc/PID/status`, `/proc/PID/cgroup`, passwd), which
//! happens once per PID. Run: `cargo bench --bench attribution`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use gpu_carbon_exporter::attribution::identity::{ProcResolver, Resolver};
use gpu_carbon_exporter::attribution::{Attributor, Settings};
use gpu_carbon_exporter::backend::{Capabilities, DeviceInfo, ProcessUse};
use gpu_carbon_exporter::energy::Step;
use gpu_carbon_exporter::units::{Grams, Joules, Watts};

/// What a ledger step of `energy` joules and `co2e` grams hands to the attributor.
fn step(energy: f64, co2e: f64) -> Step {
    Step {
        energy: Joules(energy),
        idle: Joules(0.0),
        co2e: Grams(co2e),
    }
}

const GPUS: u32 = 8;
const PROCESSES: u32 = 20;

/// A procfs tree with one Kubernetes pod process per PID and a passwd.
fn procfs() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gce-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/etc")).expect("mkdir");
    let passwd: String = (0..100)
        .map(|u| format!("user{u}:x:{}:100::/:/bin/sh\n", 1000 + u))
        .collect();
    std::fs::write(dir.join("root/etc/passwd"), passwd).expect("passwd");
    for pid in pids() {
        let p = dir.join(format!("proc/{pid}"));
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(
            p.join("status"),
            format!("Name:\tpython\nUid:\t{0}\t{0}\t{0}\t{0}\n", 1000 + pid % 50),
        )
        .expect("status");
        std::fs::write(
            p.join("cgroup"),
            format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4f1c3a2e_8b7d_4c1e_9f3a_{pid:012x}.slice/cri-containerd-{:064x}.scope\n", pid),
        )
        .expect("cgroup");
    }
    dir
}

fn pids() -> impl Iterator<Item = u32> {
    1000..1000 + GPUS * PROCESSES
}

fn gpus() -> Vec<DeviceInfo> {
    let caps = Capabilities {
        energy_counter: true,
        power: true,
        utilization: true,
        power_limit: true,
    };
    (0..GPUS)
        .map(|i| DeviceInfo::gpu(i, format!("GPU-{i}"), "H100".into(), caps))
        .collect()
}

fn processes(gpu: u32) -> Vec<ProcessUse> {
    (0..PROCESSES)
        .map(|i| ProcessUse {
            pid: 1000 + gpu * PROCESSES + i,
            sm_utilization: (i % 3 != 0).then_some(f64::from(i) / 40.0),
        })
        .collect()
}

fn one_sample(a: &mut Attributor, gpus: &[DeviceInfo], lists: &[Vec<ProcessUse>], t: f64) {
    a.begin();
    for (g, list) in gpus.iter().zip(lists) {
        a.account(g, Some(list), step(700.0, 0.1), Some(Watts(700.0)), t);
    }
    std::hint::black_box(a.finish(t));
}

fn bench(c: &mut Criterion) {
    let dir = procfs();
    let gpus = gpus();
    let lists: Vec<_> = (0..GPUS).map(processes).collect();
    let settings = Settings::default();
    let resolver = || Box::new(ProcResolver::new(dir.join("proc"), &dir.join("root")));
    let mut warm = Attributor::new(&settings, resolver(), None);
    one_sample(&mut warm, &gpus, &lists, 0.0);
    let mut t = 1.0;
    c.bench_function(
        "attribution sample, 8 GPUs x 20 processes, identities cached",
        |b| {
            b.iter(|| {
                one_sample(&mut warm, &gpus, &lists, t);
                t += 1.0;
            })
        },
    );
    c.bench_function(
        "attribution sample, 8 GPUs x 20 new processes (procfs reads)",
        |b| {
            b.iter(|| {
                let mut cold = Attributor::new(&settings, resolver(), None);
                one_sample(&mut cold, &gpus, &lists, 0.0);
            })
        },
    );
    let mut r = ProcResolver::new(dir.join("proc"), &dir.join("root"));
    c.bench_function("identity of one PID (status + cgroup)", |b| {
        b.iter(|| std::hint::black_box(r.resolve(1000)))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
