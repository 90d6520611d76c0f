//! Kubernetes pod names and namespaces from the kubelet's pod-resources API, which also maps
//! GPU UUIDs to the pods they are assigned to (as dcgm-exporter uses it). A background task
//! refreshes a [`PodIndex`]; the sampler only reads the latest one, so a scrape or a sample
//! never waits for the kubelet.

pub mod podresources;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use podresources::ListPodResourcesResponse;

/// A container that holds a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
}

/// GPU UUID → the containers it is assigned to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodIndex {
    by_gpu: HashMap<String, Vec<PodRef>>,
}

impl PodIndex {
    /// Indexes a `List` response: every device ID of a GPU resource (`nvidia.com/gpu`,
    /// `nvidia.com/mig-…`, or any resource whose name contains `gpu`), with a time-slicing
    /// replica suffix (`::N`) removed.
    pub fn from_response(response: &ListPodResourcesResponse) -> PodIndex {
        let mut by_gpu: HashMap<String, Vec<PodRef>> = HashMap::new();
        for pod in &response.pod_resources {
            for c in &pod.containers {
                for d in &c.devices {
                    let gpu_resource = d.resource_name.starts_with("nvidia.com/")
                        || d.resource_name.contains("gpu");
                    if !gpu_resource {
                        continue;
                    }
                    for id in &d.device_ids {
                        let uuid = id.split("::").next().unwrap_or(id).to_string();
                        let entry = PodRef {
                            namespace: pod.namespace.clone(),
                            pod: pod.name.clone(),
                            container: c.name.clone(),
                        };
                        let list = by_gpu.entry(uuid).or_default();
                        if !list.contains(&entry) {
                            list.push(entry);
                        }
                    }
                }
            }
        }
        PodIndex { by_gpu }
    }

    /// The one pod holding GPU `uuid`, with its container where there is one; `None` when no
    /// pod or several pods share it (then only the pod UID from the cgroup is known).
    pub fn sole_pod(&self, uuid: &str) -> Option<(&str, &str, Option<&str>)> {
        let refs = self.by_gpu.get(uuid)?;
        let first = refs.first()?;
        if refs
            .iter()
            .any(|r| r.namespace != first.namespace || r.pod != first.pod)
        {
            return None;
        }
        let container = (refs.len() == 1).then_some(first.container.as_str());
        Some((&first.namespace, &first.pod, container))
    }

    /// Number of GPUs with at least one pod.
    pub fn gpus(&self) -> usize {
        self.by_gpu.len()
    }
}

/// The latest view of the pod-resources API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// Whether the latest `List` call succeeded.
    pub up: bool,
    /// What it returned (empty when it failed: a stale index could name the wrong pod).
    pub index: Arc<PodIndex>,
}

/// Where the sampler reads the latest [`PodView`].
pub type PodViews = watch::Receiver<PodView>;

/// Starts refreshing the index from `socket` every `interval` on the current Tokio runtime.
/// The task ends when the returned receiver and all its clones are dropped.
pub fn spawn(socket: PathBuf, interval: Duration) -> PodViews {
    let (tx, rx) = watch::channel(PodView::default());
    tokio::spawn(async move {
        let mut was_up = None;
        loop {
            let view = match podresources::list(&socket, Duration::from_secs(5)).await {
                Ok(response) => {
                    let index = PodIndex::from_response(&response);
                    debug!(
                        pods = response.pod_resources.len(),
                        gpus = index.gpus(),
                        "Pod resources refreshed"
                    );
                    if was_up != Some(true) {
                        info!(socket = %socket.display(), "Kubernetes pod-resources API reachable: pods are named");
                    }
                    PodView {
                        up: true,
                        index: Arc::new(index),
                    }
                }
                Err(err) => {
                    if was_up != Some(false) {
                        warn!(socket = %socket.display(), error = %err, "Kubernetes pod-resources API unreachable: workloads in pods are labelled with the pod UID only (gpu_carbon_exporter_kubernetes_pod_resources_up 0)");
                    }
                    PodView::default()
                }
            };
            was_up = Some(view.up);
            if tx.send(view).is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::podresources::*;
    use super::*;

    fn pod(ns: &str, name: &str, container: &str, resource: &str, ids: &[&str]) -> PodResources {
        PodResources {
            name: name.into(),
            namespace: ns.into(),
            containers: vec![ContainerResources {
                name: container.into(),
                devices: vec![ContainerDevices {
                    resource_name: resource.into(),
                    device_ids: ids.iter().map(|s| s.to_string()).collect(),
                }],
            }],
        }
    }

    #[test]
    fn maps_gpus_to_pods() {
        let response = ListPodResourcesResponse {
            pod_resources: vec![
                pod(
                    "ml",
                    "train-0",
                    "trainer",
                    "nvidia.com/gpu",
                    &["GPU-a", "GPU-b"],
                ),
                pod("ml", "infer", "server", "nvidia.com/gpu", &["GPU-c::0"]),
                pod("web", "shared", "s", "nvidia.com/gpu", &["GPU-c::1"]),
                pod("x", "nic", "n", "example.com/nic", &["GPU-d"]),
            ],
        };
        let index = PodIndex::from_response(&response);
        assert_eq!(
            index.sole_pod("GPU-a"),
            Some(("ml", "train-0", Some("trainer")))
        );
        assert_eq!(
            index.sole_pod("GPU-c"),
            None,
            "time-sliced between two pods"
        );
        assert_eq!(index.sole_pod("GPU-d"), None, "not a GPU resource");
        assert_eq!(index.gpus(), 3);
    }
}
