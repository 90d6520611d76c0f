//! MIG accounts over sequences of intervals: conservation, monotonic totals, retention.

use super::*;
use crate::backend::mig::{InstanceReading, MigLayout};

fn device(gi: u32, sm: u32) -> MigDevice {
    MigDevice {
        mig_uuid: format!("MIG-{gi}"),
        gpu_instance: gi,
        compute_instance: 0,
        profile: "1g.10gb".into(),
        sm_count: sm,
        memory_mb: 9984,
    }
}

fn inst(gi: u32, sm: u32, gpm: Option<f64>, pids: &[u32]) -> InstanceReading {
    InstanceReading {
        gpu_instance: gi,
        devices: vec![device(gi, sm)],
        gpm_activity: gpm,
        processes: Some(
            pids.iter()
                .map(|&pid| ProcessUse {
                    pid,
                    sm_utilization: None,
                })
                .collect(),
        ),
    }
}

fn reading(instances: Vec<InstanceReading>) -> MigReading {
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

fn step(j: f64) -> Step {
    Step {
        energy: Joules(j),
        idle: Joules(0.0),
        co2e: Grams(j * 0.1),
    }
}

fn sum(g: &MigGpu) -> f64 {
    g.unallocated_energy_j + g.instances.iter().map(|i| i.energy_j).sum::<f64>()
}

#[test]
fn a_split_interval_gives_each_instance_its_share_and_power() {
    let mut a = MigAccounts::new(600.0);
    let r = reading(vec![
        inst(1, 16, Some(0.5), &[]),
        inst(2, 32, Some(1.0), &[7]),
    ]);
    let shares = a
        .account(0, "GPU-a", &r, step(1000.0), Some(Watts(500.0)), 10.0)
        .expect("a layout");
    let g = &a.gpus()[0];
    assert!((g.instances[0].energy_j - 200.0).abs() < 1e-9);
    assert!((g.instances[1].energy_j - 800.0).abs() < 1e-9);
    assert!((g.instances[1].co2e_g - 80.0).abs() < 1e-9);
    assert_eq!(g.instances[1].power_w, Some(400.0));
    assert_eq!(shares[1].processes.len(), 1);
    assert!(g.unallocated_energy_j < 1e-9);
}

#[test]
fn totals_conserve_and_never_decrease_while_instances_come_and_go() {
    let mut a = MigAccounts::new(600.0);
    let mut device_total = 0.0;
    let mut before: Vec<f64> = Vec::new();
    for tick in 0..200u32 {
        let mut instances = vec![inst(1, 16, Some(f64::from(tick % 3) / 2.0), &[])];
        if tick % 50 < 25 {
            instances.push(inst(2, 32, None, if tick % 2 == 0 { &[9] } else { &[] }));
        }
        if tick % 7 == 0 {
            instances.push(inst(5, 48, Some(0.0), &[]));
        }
        let energy = 100.0 + f64::from(tick % 13) * 17.3;
        device_total += energy;
        let r = if tick == 100 {
            MigReading {
                layout: None,
                state_errors: 1,
                gpm_errors: 0,
            }
        } else {
            reading(instances)
        };
        a.account(0, "GPU-a", &r, step(energy), None, f64::from(tick));
        let g = &a.gpus()[0];
        assert!(((sum(g) - device_total) / device_total).abs() <= 1e-9);
        let now: Vec<f64> = std::iter::once(g.unallocated_energy_j)
            .chain(g.instances.iter().map(|i| i.energy_j))
            .collect();
        for (b, n) in before.iter().zip(&now) {
            assert!(n >= b, "a total decreased at tick {tick}");
        }
        before = now;
    }
    assert_eq!(a.errors()[0].1.state, 1);
}

#[test]
fn gone_instances_stay_for_the_retention_then_go() {
    let mut a = MigAccounts::new(60.0);
    a.account(
        0,
        "GPU-a",
        &reading(vec![inst(1, 16, None, &[1])]),
        step(10.0),
        None,
        0.0,
    );
    a.account(0, "GPU-a", &reading(vec![]), step(10.0), None, 30.0);
    a.expire(30.0);
    let g = &a.gpus()[0];
    assert_eq!(g.instances.len(), 1, "retained");
    assert!(g.instances[0].devices.is_empty() && g.instances[0].power_w.is_none());
    assert_eq!(g.instances[0].energy_j, 10.0);
    a.account(0, "GPU-a", &reading(vec![]), step(10.0), None, 61.0);
    a.expire(61.0);
    assert!(a.gpus()[0].instances.is_empty(), "expired");
    assert_eq!(a.gpus()[0].unallocated_energy_j, 20.0);
}

#[test]
fn a_gpu_whose_mig_state_never_reads_has_errors_but_no_accounts() {
    let mut a = MigAccounts::new(60.0);
    let failed = MigReading {
        layout: None,
        state_errors: 1,
        gpm_errors: 0,
    };
    a.account(3, "GPU-b", &failed, step(10.0), None, 0.0);
    a.account(3, "GPU-b", &failed, step(10.0), None, 1.0);
    assert!(a.gpus().is_empty());
    assert_eq!(
        a.errors()[0].1,
        MigErrors {
            gpu: 3,
            state: 2,
            gpm: 0
        }
    );
}

#[test]
fn restored_accounts_continue() {
    let mut a = MigAccounts::new(600.0);
    a.account(
        0,
        "GPU-a",
        &reading(vec![inst(1, 16, None, &[1])]),
        step(10.0),
        None,
        0.0,
    );
    let saved = a.gpus();
    let mut b = MigAccounts::new(600.0);
    b.restore(&saved);
    b.account(
        0,
        "GPU-a",
        &reading(vec![inst(1, 16, None, &[1])]),
        step(5.0),
        None,
        1.0,
    );
    assert_eq!(b.gpus()[0].instances[0].energy_j, 15.0);
}
