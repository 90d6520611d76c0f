//! The workload labels (`--attribution.labels`) and the values a process gets: namespace, pod
//! and container from its *own* cgroup (pod UID, container ID) looked up in the runtime's names,
//! user and Slurm job from its identity.

use tracing::debug;

use super::identity::Identity;
use super::kubernetes::PodView;

/// A workload label, chosen with `--attribution.labels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Kubernetes container name (or short container ID).
    Container,
    /// Kubernetes namespace.
    Namespace,
    /// Kubernetes pod name (or pod UID when the pod-resources API is unreachable).
    Pod,
    /// Slurm job ID.
    SlurmJob,
    /// Owner of the process.
    User,
}

impl Label {
    /// Every label, sorted by name.
    pub const ALL: [Label; 5] = [
        Label::Container,
        Label::Namespace,
        Label::Pod,
        Label::SlurmJob,
        Label::User,
    ];

    /// The label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Container => "container",
            Label::Namespace => "namespace",
            Label::Pod => "pod",
            Label::SlurmJob => "slurm_job",
            Label::User => "user",
        }
    }

    /// The label called `name`.
    pub fn parse(name: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// Whether a process's energy waits for its pod's name: it is in a pod no source has named
/// yet, the sources have not answered once, and start-up is recent.
pub(super) fn must_hold(
    view: &PodView,
    identity: &Identity,
    now_unix: f64,
    hold_until: f64,
) -> bool {
    let Some(uid) = &identity.cgroup.pod_uid else {
        return false;
    };
    !view.answered && now_unix < hold_until && !view.names.pods.contains_key(uid)
}

/// Characters of a container ID kept in the `container` label when the name is unknown.
const SHORT_ID: usize = 12;

/// The label values of a process: namespace, pod and container from its own pod UID and
/// container ID (names where a source knows them, else the pod UID and a short container ID);
/// the GPU's holder in pod-resources is only compared, never used.
pub(super) fn label_values(
    labels: &[Label],
    id: &Identity,
    view: &PodView,
    gpu_uuid: &str,
) -> Vec<String> {
    let uid = id.cgroup.pod_uid.as_ref();
    let named = uid.and_then(|u| view.names.pods.get(u));
    if let Some(name) = named {
        let holders = view.index.holders(gpu_uuid);
        if !holders.is_empty()
            && !holders
                .iter()
                .any(|h| h.namespace == name.namespace && h.pod == name.pod)
        {
            debug!(uuid = gpu_uuid, namespace = %name.namespace, pod = %name.pod, "Process of a pod that was not given this GPU; billed to its own pod");
        }
    }
    labels
        .iter()
        .map(|label| match label {
            Label::User => id.user.clone(),
            Label::Namespace => named.map(|n| n.namespace.clone()).unwrap_or_default(),
            Label::Pod => named
                .map(|n| n.pod.clone())
                .or_else(|| uid.cloned())
                .unwrap_or_default(),
            Label::Container => id
                .cgroup
                .container_id
                .as_ref()
                .map(|c| {
                    view.names
                        .containers
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| c[..SHORT_ID.min(c.len())].to_string())
                })
                .unwrap_or_default(),
            Label::SlurmJob => id.cgroup.slurm_job.clone().unwrap_or_default(),
        })
        .collect()
}
