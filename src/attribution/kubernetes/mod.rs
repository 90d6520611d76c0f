//! Kubernetes facts for attribution, refreshed by one background task so a sample or a scrape
//! never waits for the kubelet or the runtime:
//! - [`names`]: pod UID → namespace/pod and container ID → container name, from the runtime's
//!   CRI API ([`cri`]) with the kubelet's log directories as fallback. This is how a process,
//!   whose cgroup names its own pod UID and container ID, gets its labels.
//! - [`podresources`]: which GPUs each pod was given ([`PodIndex`]), from the kubelet's
//!   pod-resources API. Used to notice a process on a GPU its pod was not given, never to name
//!   a process (a GPU's holder is not whoever runs on it).
//!
//! Both gRPC clients are generated from the official `.proto` files ([`grpc`]).

pub mod cri;
pub mod devices;
pub mod grpc;
pub mod names;
pub mod podresources;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use devices::{PodIndex, PodRef};
pub use names::{PodName, PodNames};

/// How long one refresh waits for each API: well under the refresh interval's default.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The latest view of the Kubernetes sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// Whether the pod-resources API answered at the latest refresh; `None` when not used.
    pub up: Option<bool>,
    /// GPU → pods it was given (empty when pod-resources failed).
    pub index: Arc<PodIndex>,
    /// Pod and container names known to the CRI API or the log directories.
    pub names: Arc<PodNames>,
    /// Whether a refresh has completed: before that, names may be missing only because nobody
    /// has asked yet.
    pub answered: bool,
}

/// Where the sampler reads the latest [`PodView`].
pub type PodViews = watch::Receiver<PodView>;

/// What the refresh task reads.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Kubelet pod-resources socket, if used.
    pub pod_resources: Option<PathBuf>,
    /// CRI runtime socket (containerd or CRI-O), if used.
    pub cri: Option<PathBuf>,
    /// Host root filesystem, for `var/log/pods` and `var/log/containers`.
    pub rootfs: PathBuf,
    /// Time between refreshes.
    pub refresh: Duration,
    /// (NVML index, UUID) of each GPU, for device plugins that report indexes.
    pub gpus: Vec<(u32, String)>,
}

/// Starts refreshing from `sources` on the current Tokio runtime; returns what it learns and
/// the task, which its owner stops at shutdown (it also ends when every receiver is gone).
pub fn spawn(sources: Sources) -> (PodViews, tokio::task::JoinHandle<()>) {
    let initial = PodView {
        up: sources.pod_resources.as_ref().map(|_| false),
        ..PodView::default()
    };
    let (tx, rx) = watch::channel(initial);
    let task = tokio::spawn(async move {
        let mut was = (None, None);
        loop {
            let (view, now) = refresh(&sources, was).await;
            was = now;
            if tx.send(view).is_err() {
                return;
            }
            tokio::time::sleep(sources.refresh).await;
        }
    });
    (rx, task)
}

type Up = (Option<bool>, Option<bool>);

/// One refresh; logs only when a source changes between up and down.
async fn refresh(s: &Sources, was: Up) -> (PodView, Up) {
    let mut view = PodView {
        answered: true,
        ..PodView::default()
    };
    if let Some(socket) = &s.pod_resources {
        match podresources::list(socket, CALL_TIMEOUT).await {
            Ok(response) => {
                let index = PodIndex::from_response(&response, &s.gpus);
                debug!(
                    pods = response.pod_resources.len(),
                    gpus = index.gpus(),
                    "Pod resources refreshed"
                );
                if was.0 != Some(true) {
                    info!(socket = %socket.display(), "Kubernetes pod-resources API reachable: GPU assignments known");
                }
                view.index = Arc::new(index);
                view.up = Some(true);
            }
            Err(err) => {
                if was.0 != Some(false) {
                    warn!(socket = %socket.display(), error = %err, "Kubernetes pod-resources API unreachable: GPU assignments unknown (gpu_carbon_exporter_kubernetes_pod_resources_up 0)");
                }
                view.up = Some(false);
            }
        }
    }
    let mut names = PodNames::default();
    let mut cri_up = None;
    if let Some(socket) = &s.cri {
        match cri::names(socket, CALL_TIMEOUT).await {
            Ok(found) => {
                if was.1 != Some(true) {
                    info!(socket = %socket.display(), pods = found.pods.len(), "Container runtime CRI API reachable: pods and containers are named");
                }
                names = found;
                cri_up = Some(true);
            }
            Err(err) => {
                if was.1 != Some(false) {
                    warn!(socket = %socket.display(), error = %err, "Container runtime CRI API unreachable: pods named from /var/log/pods where possible, else by pod UID");
                }
                cri_up = Some(false);
            }
        }
    }
    let rootfs = s.rootfs.clone();
    let logs = tokio::task::spawn_blocking(move || names::from_log_dirs(&rootfs))
        .await
        .unwrap_or_default();
    names.fill_from(logs);
    view.names = Arc::new(names);
    (view.clone(), (view.up, cri_up))
}
