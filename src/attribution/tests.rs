//! The attributor over an in-memory resolver: conservation, labels, caching, pods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::cgroup::CgroupInfo;
use super::kubernetes::podresources::*;
use super::kubernetes::{PodIndex, PodName, PodNames};
use super::*;
use crate::backend::{Capabilities, DeviceInfo};
use crate::energy::Step;

/// What a ledger step of `energy` joules and `co2e` grams hands to the attributor.
fn step(energy: f64, co2e: f64) -> Step {
    Step {
        energy: Joules(energy),
        idle: Joules(0.0),
        co2e: Grams(co2e),
    }
}

struct Fake(Arc<AtomicUsize>);

impl Resolver for Fake {
    fn resolve(&mut self, pid: u32) -> Identity {
        self.0.fetch_add(1, Ordering::Relaxed);
        let mut cgroup = CgroupInfo::default();
        match pid {
            1..=9 => cgroup.slurm_job = Some(format!("{}", 100 + pid)),
            10..=19 => {
                cgroup.pod_uid = Some("4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21".into());
                cgroup.container_id = Some("abcdef0123456789".repeat(4));
            }
            _ => {}
        }
        Identity {
            user: format!("user{}", pid % 3),
            cgroup,
        }
    }
}

fn gpu(index: u32) -> DeviceInfo {
    let caps = Capabilities {
        energy_counter: true,
        power: true,
        utilization: true,
        power_limit: true,
    };
    DeviceInfo::gpu(index, format!("GPU-{index}"), "Fake".into(), caps)
}

fn settings(labels: &[Label], max_series: usize) -> Settings {
    Settings {
        labels: labels.to_vec(),
        retention: Duration::from_secs(60),
        max_series,
    }
}

fn procs(list: &[(u32, Option<f64>)]) -> Vec<ProcessUse> {
    list.iter()
        .map(|&(pid, sm)| ProcessUse {
            pid,
            sm_utilization: sm,
        })
        .collect()
}

#[test]
fn conserves_energy_and_co2e_over_many_samples() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut a = Attributor::new(
        &settings(&[Label::SlurmJob, Label::User], 100),
        Box::new(Fake(calls.clone())),
        None,
    );
    let (mut device_e, mut device_c) = (0.0, 0.0);
    let mut last = AttributionSnapshot::default();
    for tick in 0..500u32 {
        a.begin();
        for g in 0..4 {
            let e = 100.0 + f64::from(tick % 7) * 13.37 + f64::from(g);
            let c = e * 0.4 / 3.6e6;
            device_e += e;
            device_c += c;
            let list = match (tick + g) % 4 {
                0 => procs(&[]),
                1 => procs(&[(1, Some(0.7)), (2, Some(0.1)), (21, None)]),
                2 => procs(&[(3, None), (4, None)]),
                _ => procs(&[(5, Some(0.33)), (1, Some(0.0))]),
            };
            let known = tick % 50 != 0;
            a.account(
                &gpu(g),
                known.then_some(&list[..]),
                step(e, c),
                Some(Watts(300.0)),
                f64::from(tick),
            );
        }
        last = a.finish(f64::from(tick));
    }
    let sum_e: f64 = last.workloads.iter().map(|w| w.energy.0).sum::<f64>()
        + last.unattributed.iter().map(|u| u.energy.0).sum::<f64>();
    let sum_c: f64 = last.workloads.iter().map(|w| w.co2e.0).sum::<f64>()
        + last.unattributed.iter().map(|u| u.co2e.0).sum::<f64>();
    assert!(
        (sum_e - device_e).abs() <= 1e-12 * device_e,
        "{sum_e} vs {device_e}"
    );
    assert!(
        (sum_c - device_c).abs() <= 1e-12 * device_c,
        "{sum_c} vs {device_c}"
    );
    assert_eq!(last.labels, vec!["slurm_job", "user"]);
    assert!(last.workloads.iter().any(|w| *w.labels == ["101", "user1"]));
    assert!(
        calls.load(Ordering::Relaxed) < 100,
        "identities are cached per PID"
    );
}

#[test]
fn sm_shares_split_power_and_energy() {
    let mut a = Attributor::new(
        &settings(&[Label::User], 100),
        Box::new(Fake(Default::default())),
        None,
    );
    a.begin();
    let list = procs(&[(1, Some(0.6)), (2, Some(0.2))]);
    a.account(
        &gpu(0),
        Some(&list),
        step(80.0, 8.0),
        Some(Watts(200.0)),
        0.0,
    );
    let s = a.finish(0.0);
    let user1 = s
        .workloads
        .iter()
        .find(|w| *w.labels == ["user1"])
        .expect("user1");
    assert!((user1.energy.0 - 60.0).abs() < 1e-9 && (user1.co2e.0 - 6.0).abs() < 1e-9);
    assert!((user1.power.expect("active").0 - 150.0).abs() < 1e-9);
}

const POD_UID: &str = "4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21";

/// GPU-0 given to `ml/owner-0` by pod-resources; the runtime names pod [`POD_UID`] (the one
/// the fake cgroups of PIDs 10–19 name) `dev/intruder` when `named`.
fn view(named: bool) -> PodView {
    let response = ListPodResourcesResponse {
        pod_resources: vec![PodResources {
            name: "owner-0".into(),
            namespace: "ml".into(),
            containers: vec![ContainerResources {
                name: "trainer".into(),
                devices: vec![ContainerDevices {
                    resource_name: "nvidia.com/gpu".into(),
                    device_ids: vec!["GPU-0".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut names = PodNames::default();
    if named {
        let name = PodName {
            namespace: "dev".into(),
            pod: "intruder".into(),
        };
        names.pods.insert(POD_UID.into(), name);
        names
            .containers
            .insert("abcdef0123456789".repeat(4), "shell".into());
    }
    PodView {
        up: Some(true),
        index: Arc::new(PodIndex::from_response(&response, &[])),
        names: Arc::new(names),
        answered: true,
    }
}

fn pod_attributor(initial: PodView) -> (Attributor, tokio::sync::watch::Sender<PodView>) {
    let (tx, rx) = tokio::sync::watch::channel(initial);
    let labels = [Label::Container, Label::Namespace, Label::Pod, Label::User];
    let a = Attributor::new(
        &settings(&labels, 100),
        Box::new(Fake(Default::default())),
        Some(rx),
    );
    (a, tx)
}

fn tick(a: &mut Attributor, pid: u32, t: f64) -> AttributionSnapshot {
    a.begin();
    a.account(
        &gpu(0),
        Some(&procs(&[(pid, None)])),
        step(1.0, 1.0),
        None,
        t,
    );
    a.finish(t)
}

#[test]
fn a_process_is_named_by_its_own_pod_never_the_gpus_holder() {
    let (mut a, _tx) = pod_attributor(view(true));
    let s = tick(&mut a, 10, 0.0);
    assert_eq!(s.kubernetes_up, Some(true));
    assert_eq!(s.workloads.len(), 1);
    assert_eq!(
        *s.workloads[0].labels,
        ["shell", "dev", "intruder", "user1"]
    );

    // Unnamed by every source: the pod UID, never the holder's namespace.
    let (mut a, _tx) = pod_attributor(view(false));
    let s = tick(&mut a, 10, 0.0);
    assert_eq!(
        *s.workloads[0].labels,
        ["abcdef012345", "", POD_UID, "user1"]
    );
}

#[test]
fn pod_energy_waits_for_the_first_answer_then_is_named() {
    let (mut a, tx) = pod_attributor(PodView::default());
    let s = tick(&mut a, 10, 0.0);
    assert!(s.workloads.is_empty(), "no pod-UID-only series: {s:?}");
    assert_eq!(
        s.unattributed.len(),
        1,
        "unattributed series from the start"
    );
    assert_eq!(s.unattributed[0].energy, Joules(0.0));
    // Processes outside pods are never held.
    let s = tick(&mut a, 1, 0.1);
    assert_eq!(s.workloads.len(), 1);
    tx.send(view(true)).expect("send");
    let s = tick(&mut a, 10, 1.0);
    let pod: Vec<_> = s
        .workloads
        .iter()
        .filter(|w| w.labels[2] == "intruder")
        .collect();
    assert_eq!(pod.len(), 1, "{s:?}");
    assert_eq!(
        pod[0].energy,
        Joules(2.0),
        "held energy is added once named"
    );
    assert!(s.workloads.iter().all(|w| w.labels[2] != POD_UID));
}

#[test]
fn without_any_answer_the_hold_ends_at_its_deadline() {
    let (mut a, _tx) = pod_attributor(PodView::default());
    assert!(tick(&mut a, 10, 0.0).workloads.is_empty());
    assert!(tick(&mut a, 10, HOLD_S - 0.5).workloads.is_empty());
    let s = tick(&mut a, 10, HOLD_S + 0.5);
    assert_eq!(s.workloads.len(), 1);
    assert_eq!(s.workloads[0].labels[2], POD_UID);
    assert_eq!(s.workloads[0].energy, Joules(3.0));
}

#[test]
fn ticks_between_nvml_samples_reuse_the_latest_shares() {
    let mut a = Attributor::new(
        &settings(&[Label::SlurmJob], 100),
        Box::new(Fake(Default::default())),
        None,
    );
    // NVML samples every 10th tick (a 1 s sample period at a 100 ms interval): 50 % vs 5 %.
    for tick in 0..100u32 {
        let fresh = tick % 10 == 0;
        let list = procs(&[(1, fresh.then_some(0.5)), (2, fresh.then_some(0.05))]);
        a.begin();
        let t = f64::from(tick) * 0.1;
        a.account(&gpu(0), Some(&list), step(1.0, 1.0), None, t);
        a.finish(t);
    }
    a.begin();
    let s = a.finish(10.0);
    let job = |j: &str| {
        s.workloads
            .iter()
            .find(|w| *w.labels == [j])
            .map(|w| w.energy.0)
    };
    let (j1, j2) = (job("101").unwrap_or(0.0), job("102").unwrap_or(0.0));
    assert!((j1 - 100.0 * 0.5 / 0.55).abs() < 1e-9, "{j1}");
    assert!((j2 - 100.0 * 0.05 / 0.55).abs() < 1e-9, "{j2}");
}

#[test]
fn ended_pids_are_forgotten_and_workloads_expire() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut a = Attributor::new(
        &settings(&[Label::User], 100),
        Box::new(Fake(calls.clone())),
        None,
    );
    for (t, pids) in [(0.0, vec![1]), (1.0, vec![]), (2.0, vec![1])] {
        a.begin();
        let list = procs(&pids.iter().map(|&p| (p, None)).collect::<Vec<_>>());
        a.account(&gpu(0), Some(&list), step(1.0, 1.0), None, t);
        a.finish(t);
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "PID 1 resolved again after it left"
    );
    a.begin();
    assert_eq!(a.finish(62.0).workloads.len(), 1);
    a.begin();
    let s = a.finish(62.5);
    assert!(s.workloads.is_empty());
    assert_eq!(s.unattributed[0].energy, Joules(1.0));
}

#[test]
fn cached_labels_follow_a_renamed_pod() {
    let (mut a, tx) = pod_attributor(view(false));
    assert_eq!(tick(&mut a, 10, 0.0).workloads[0].labels[2], POD_UID);
    tx.send(view(true)).expect("send");
    let s = tick(&mut a, 10, 1.0);
    let pods: Vec<&str> = s.workloads.iter().map(|w| w.labels[2].as_str()).collect();
    assert_eq!(
        pods,
        [POD_UID, "intruder"],
        "the new name from the next sample on"
    );
    assert_eq!(s.workloads[0].created_unix, Some(0.0));
    assert_eq!(s.workloads[1].created_unix, Some(1.0));
}

#[test]
fn the_snapshot_counts_series_against_the_cap() {
    let mut a = Attributor::new(
        &settings(&[Label::User], 2),
        Box::new(Fake(Default::default())),
        None,
    );
    a.begin();
    let list = procs(&[(1, None), (2, None), (3, None), (4, None)]);
    a.account(&gpu(0), Some(&list), step(4.0, 4.0), None, 0.0);
    let s = a.finish(0.0);
    assert_eq!(s.workloads.len(), 3, "two named and the overflow bucket");
    // Users 1 and 2 have series; user 0 (PID 3) is folded into the overflow bucket.
    assert_eq!(
        (s.named_series, s.max_series, s.folded_workloads),
        (2, 2, 1)
    );
}

/// Each workload's total equals the sum of the parts split to it, sample after sample, while
/// processes come and go across GPUs and ended workloads expire (which moves the others in the
/// table, so the position hints the attributor keeps per PID go stale).
#[test]
fn energy_lands_on_its_own_workload_through_churn_and_expiry() {
    // A deterministic xorshift: no dependency, reproducible.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let labels = [Label::SlurmJob, Label::User];
    let mut a = Attributor::new(
        &settings(&labels, 1000),
        Box::new(Fake(Default::default())),
        None,
    );
    let mut expected: HashMap<(String, Vec<String>), f64> = HashMap::new();
    let (mut t, mut expired_beside_live) = (0.0, 0);
    for _ in 0..3000 {
        t += (next() * 25.0).floor();
        a.begin();
        for g in 0..3 {
            let mut pids: Vec<u32> = (0..(next() * 6.0) as usize)
                .map(|_| 1 + (next() * 30.0) as u32)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let sm: Vec<Option<f64>> = pids.iter().map(|_| Some(0.05 + next())).collect();
            let energy = 100.0 * next();
            let (shares, _) = split::shares(&sm);
            for (pid, share) in pids.iter().zip(&shares) {
                let job = if (1..=9).contains(pid) {
                    format!("{}", 100 + pid)
                } else {
                    String::new()
                };
                let key = (format!("GPU-{g}"), vec![job, format!("user{}", pid % 3)]);
                *expected.entry(key).or_default() += energy * share;
            }
            let list = procs(
                &pids
                    .iter()
                    .zip(sm)
                    .map(|(p, s)| (*p, s))
                    .collect::<Vec<_>>(),
            );
            a.account(&gpu(g), Some(&list), step(energy, energy), None, t);
        }
        let snap = a.finish(t);
        for w in &snap.workloads {
            let key = (w.uuid.to_string(), w.labels.to_vec());
            let want = expected.get(&key).copied().unwrap_or(0.0);
            assert!(
                (w.energy.0 - want).abs() <= 1e-9 * want.max(1.0),
                "{key:?}: {} vs {want}",
                w.energy.0
            );
        }
        let before = expected.len();
        expected.retain(|(uuid, l), _| {
            snap.workloads
                .iter()
                .any(|w| *w.uuid == **uuid && *w.labels == l[..])
        });
        if expected.len() < before && !expected.is_empty() {
            expired_beside_live += 1;
        }
    }
    assert!(
        expired_beside_live > 50,
        "expiries while others lived: {expired_beside_live}"
    );
}
