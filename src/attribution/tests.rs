//! The attributor over an in-memory resolver: conservation, labels, caching, pods.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::cgroup::CgroupInfo;
use super::kubernetes::podresources::*;
use super::kubernetes::PodIndex;
use super::*;
use crate::backend::{Capabilities, DeviceInfo};

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
                Joules(e),
                Grams(c),
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
    assert!(last.workloads.iter().any(|w| w.labels == ["101", "user1"]));
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
        Joules(80.0),
        Grams(8.0),
        Some(Watts(200.0)),
        0.0,
    );
    let s = a.finish(0.0);
    let user1 = s
        .workloads
        .iter()
        .find(|w| w.labels == ["user1"])
        .expect("user1");
    assert!((user1.energy.0 - 60.0).abs() < 1e-9 && (user1.co2e.0 - 6.0).abs() < 1e-9);
    assert!((user1.power.expect("active").0 - 150.0).abs() < 1e-9);
}

#[test]
fn pods_named_from_the_index_else_by_uid() {
    let (tx, rx) = tokio::sync::watch::channel(PodView::default());
    let labels = [Label::Container, Label::Namespace, Label::Pod, Label::User];
    let mut a = Attributor::new(
        &settings(&labels, 100),
        Box::new(Fake(Default::default())),
        Some(rx),
    );
    let list = procs(&[(10, None)]);
    a.begin();
    a.account(&gpu(0), Some(&list), Joules(1.0), Grams(1.0), None, 0.0);
    let s = a.finish(0.0);
    assert_eq!(s.kubernetes_up, Some(false));
    assert_eq!(
        s.workloads[0].labels,
        [
            "abcdef012345",
            "",
            "4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21",
            "user1"
        ]
    );
    let response = ListPodResourcesResponse {
        pod_resources: vec![PodResources {
            name: "train-0".into(),
            namespace: "ml".into(),
            containers: vec![ContainerResources {
                name: "trainer".into(),
                devices: vec![ContainerDevices {
                    resource_name: "nvidia.com/gpu".into(),
                    device_ids: vec!["GPU-0".into()],
                }],
            }],
        }],
    };
    tx.send(PodView {
        up: true,
        index: Arc::new(PodIndex::from_response(&response)),
    })
    .expect("send");
    a.begin();
    a.account(&gpu(0), Some(&list), Joules(1.0), Grams(1.0), None, 1.0);
    let s = a.finish(1.0);
    assert_eq!(s.kubernetes_up, Some(true));
    assert!(s
        .workloads
        .iter()
        .any(|w| w.labels == ["trainer", "ml", "train-0", "user1"]));
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
        a.account(&gpu(0), Some(&list), Joules(1.0), Grams(1.0), None, t);
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
