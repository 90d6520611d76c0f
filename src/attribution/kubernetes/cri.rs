//! Pod and container names from the container runtime's CRI API (`runtime.v1.RuntimeService`
//! `ListPodSandbox` and `ListContainers`, containerd or CRI-O over their unix socket): the pod
//! UID a process's cgroup names → namespace/pod, its container ID → container name.

use std::path::Path;
use std::time::Duration;

use super::grpc::runtime_v1::runtime_service_client::RuntimeServiceClient;
use super::grpc::runtime_v1::{ListContainersRequest, ListPodSandboxRequest};
use super::grpc::{self, GrpcError};
use super::names::{PodName, PodNames};

/// The names of every pod sandbox and container the runtime at `socket` knows.
pub async fn names(socket: &Path, timeout: Duration) -> Result<PodNames, GrpcError> {
    grpc::with_deadline(socket, timeout, |channel| async move {
        let mut client =
            RuntimeServiceClient::new(channel).max_decoding_message_size(grpc::MAX_MESSAGE);
        let sandboxes = client
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items;
        let containers = client
            .list_containers(ListContainersRequest { filter: None })
            .await?
            .into_inner()
            .containers;
        let mut names = PodNames::default();
        for s in sandboxes {
            if let Some(m) = s.metadata {
                names.pods.insert(
                    m.uid,
                    PodName {
                        namespace: m.namespace,
                        pod: m.name,
                    },
                );
            }
        }
        for c in containers {
            if let Some(m) = c.metadata {
                names.containers.insert(c.id, m.name);
            }
        }
        Ok(names)
    })
    .await
}
