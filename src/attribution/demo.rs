//! Who runs the processes of `--demo` (see [`crate::backend::simulated::demo`]) and the pods
//! they belong to, so per-workload series, dashboards and rules can be tried without a GPU, a
//! cluster or a Slurm controller: two ranks of a training pod (`ml-research/llm-pretrain-N`,
//! user `alice`), an inference pod (`serving/chat-api-N`, user `svc-infer`), a Slurm batch job
//! (`4821N`, user `bob`), and an idle GPU whose energy is unattributed.

use std::sync::Arc;

use super::cgroup::CgroupInfo;
use super::identity::{Identity, Resolver};
use super::kubernetes::podresources::{
    ContainerDevices, ContainerResources, ListPodResourcesResponse, PodResources,
};
use super::kubernetes::{PodIndex, PodName, PodNames, PodView};
use super::{Attributor, Settings};
use crate::backend::simulated::demo::PID_BASE;
use crate::backend::DeviceInfo;

fn pod_uid(index: u32) -> String {
    format!("00000000-0000-4000-8000-{index:012x}")
}

/// Identities of the demo PIDs.
pub struct DemoResolver;

impl Resolver for DemoResolver {
    fn resolve(&mut self, pid: u32) -> Identity {
        let index = pid.saturating_sub(PID_BASE) / 10;
        let mut cgroup = CgroupInfo::default();
        let user = match index % 4 {
            0 | 1 => {
                cgroup.pod_uid = Some(pod_uid(index));
                cgroup.qos = Some("guaranteed".into());
                if index.is_multiple_of(4) {
                    "alice"
                } else {
                    "svc-infer"
                }
            }
            _ => {
                cgroup.slurm_job = Some(format!("{}", 48_210 + index));
                "bob"
            }
        };
        Identity {
            user: user.into(),
            cgroup,
        }
    }
}

/// An attributor for the simulated GPUs `gpus`: demo identities and demo pods.
pub fn attributor(settings: &Settings, gpus: &[DeviceInfo]) -> Attributor {
    // The sender may go: a receiver keeps the last value.
    let (_, pods) = tokio::sync::watch::channel(pods(gpus));
    Attributor::new(settings, Box::new(DemoResolver), Some(pods))
}

/// What a kubelet would answer for the demo pods on `gpus`.
pub fn pods(gpus: &[DeviceInfo]) -> PodView {
    let pod = |d: &DeviceInfo, ns: &str, name: String, container: &str| PodResources {
        name,
        namespace: ns.into(),
        containers: vec![ContainerResources {
            name: container.into(),
            devices: vec![ContainerDevices {
                resource_name: "nvidia.com/gpu".into(),
                device_ids: vec![d.uuid.clone()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let pod_resources = gpus
        .iter()
        .filter_map(|d| match d.index % 4 {
            0 => Some(pod(
                d,
                "ml-research",
                format!("llm-pretrain-{}", d.index / 4),
                "trainer",
            )),
            1 => Some(pod(
                d,
                "serving",
                format!("chat-api-{}", d.index / 4),
                "server",
            )),
            _ => None,
        })
        .collect::<Vec<_>>();
    // The runtime's names of the same pods, by the UIDs the demo cgroups name.
    let mut names = PodNames::default();
    for d in gpus {
        for p in pod_resources.iter().filter(|p| {
            p.containers
                .iter()
                .any(|c| c.devices.iter().any(|x| x.device_ids.contains(&d.uuid)))
        }) {
            let name = PodName {
                namespace: p.namespace.clone(),
                pod: p.name.clone(),
            };
            names.pods.insert(pod_uid(d.index), name);
        }
    }
    let response = ListPodResourcesResponse { pod_resources };
    PodView {
        up: Some(true),
        index: Arc::new(PodIndex::from_response(&response, &[])),
        names: Arc::new(names),
        answered: true,
    }
}
