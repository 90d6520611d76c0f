//! Cost of MIG per sampling tick with 8 GPUs × 7 instances: reading the GPUs through the real
//! NVML code path (nvml-wrapper over the fake `libnvidia-ml.so`: MIG device handles, IDs,
//! attributes, processes and a GPM sample per instance), against the same 8 GPUs without MIG,
//! and the accounting alone (the split and the totals of 56 instances). Against real NVML the
//! per-call cost is the driver's; this measures the exporter's side and the number of calls.
//! Run: `cargo build -p fake-nvml --release && cargo bench --bench mig`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use gpu_carbon_exporter::backend::mig::{InstanceReading, MigDevice, MigLayout, MigReading};
use gpu_carbon_exporter::backend::nvml::{NvmlBackend, NvmlLibrary};
use gpu_carbon_exporter::backend::{Backend, ProcessUse};
use gpu_carbon_exporter::energy::mig::MigAccounts;
use gpu_carbon_exporter::energy::Step;
use gpu_carbon_exporter::units::{Grams, Joules, Watts};

const GPUS: u32 = 8;
const INSTANCES: u32 = 7;

/// The fake NVML built next to this bench (or by `cargo build -p fake-nvml --release`).
fn fake_nvml() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    [
        deps.join("libfake_nvml.so"),
        deps.join("../libfake_nvml.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

fn scenario(mig: bool) -> String {
    let mut s = String::new();
    for g in 0..GPUS {
        s.push_str("[gpu]\npower = const:300\n");
        if mig {
            s.push_str("mig = yes\ngpm = yes\n");
            for i in 0..INSTANCES {
                let gi = 7 + i;
                s.push_str(&format!(
                    "mig_instance = gi={gi} sm=16 activity=const:{}\nprocess = pid={} gi={gi}\n",
                    10 * i,
                    1000 + g * INSTANCES + i
                ));
            }
        }
    }
    s
}

fn backend(mig: bool) -> NvmlBackend<NvmlLibrary> {
    let path = std::env::temp_dir().join(format!("gce-bench-mig-{mig}-{}", std::process::id()));
    std::fs::write(&path, scenario(mig)).expect("scenario");
    std::env::set_var("FAKE_NVML_SCENARIO", &path);
    let lib = fake_nvml().expect("libfake_nvml.so: run cargo build -p fake-nvml --release");
    let nvml = NvmlLibrary::open(Some(&lib)).expect("fake NVML");
    NvmlBackend::discover(nvml).expect("discover")
}

fn reading() -> MigReading {
    let instances = (0..INSTANCES)
        .map(|i| InstanceReading {
            gpu_instance: 7 + i,
            devices: vec![MigDevice {
                mig_uuid: format!("MIG-{i}"),
                gpu_instance: 7 + i,
                compute_instance: 0,
                profile: "1g.10gb".into(),
                sm_count: 16,
                memory_mb: 9984,
            }],
            gpm_activity: Some(f64::from(i) / 10.0),
            processes: Some(vec![ProcessUse {
                pid: 1000 + i,
                sm_utilization: None,
            }]),
        })
        .collect();
    MigReading {
        layout: Some(MigLayout {
            sm_count: 132,
            gpm: true,
            instances,
        }),
        state_errors: 0,
        gpm_errors: 0,
    }
}

fn bench(c: &mut Criterion) {
    for (name, mig) in [
        ("read 8 GPUs, no MIG", false),
        ("read 8 GPUs × 7 MIG instances, GPM", true),
    ] {
        let mut b = backend(mig);
        for p in 0..GPUS as usize {
            let _ = b.read(p);
        }
        c.bench_function(name, |bench| {
            bench.iter(|| {
                for p in 0..GPUS as usize {
                    let _ = std::hint::black_box(b.read(p));
                }
            })
        });
    }
    let uuids: Vec<String> = (0..GPUS).map(|g| format!("GPU-{g}")).collect();
    let r = reading();
    let step = Step {
        energy: Joules(300.0),
        idle: Joules(0.0),
        co2e: Grams(33.0),
    };
    let mut accounts = MigAccounts::new(600.0);
    let mut now = 0.0;
    c.bench_function("account 8 GPUs × 7 MIG instances + snapshot", |bench| {
        bench.iter(|| {
            now += 1.0;
            for (g, uuid) in uuids.iter().enumerate() {
                let shares = accounts.account(g as u32, uuid, &r, step, Some(Watts(300.0)), now);
                std::hint::black_box(shares);
            }
            accounts.expire(now);
            std::hint::black_box(accounts.snapshot())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
