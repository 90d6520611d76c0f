//! The generated gRPC clients (tonic + prost, from the official `.proto` files vendored under
//! `proto/`, compiled by `build.rs`) and the one way the exporter reaches them: a unix socket
//! with a deadline on the whole call.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Kubelet pod-resources API v1 (`k8s.io/kubelet/pkg/apis/podresources/v1`), package `v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod podresources_v1 {
    tonic::include_proto!("v1");
}

/// Container Runtime Interface (`k8s.io/cri-api/pkg/apis/runtime/v1`), package `runtime.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod runtime_v1 {
    tonic::include_proto!("runtime.v1");
}

/// Largest answer accepted: a busy node's container list is a few MB; the default 4 MiB is
/// the limit the kubelet itself raised for the same reason.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Why a gRPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The socket could not be reached or HTTP/2 failed.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: String,
        /// What failed.
        source: tonic::transport::Error,
    },
    /// The server answered with a gRPC error status.
    #[error("gRPC status {}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A channel to the gRPC server on the unix socket `socket` (the URI is a placeholder: the
/// connector ignores it).
pub async fn connect(socket: &Path) -> Result<Channel, GrpcError> {
    let path: PathBuf = socket.to_path_buf();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| GrpcError::Connect {
            path: socket.display().to_string(),
            source,
        })
}

/// `call` on a fresh channel to `socket`, given up after `timeout` (connection included).
pub async fn with_deadline<T, F, Fut>(
    socket: &Path,
    timeout: Duration,
    call: F,
) -> Result<T, GrpcError>
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = Result<T, GrpcError>>,
{
    let work = async {
        let channel = connect(socket).await?;
        call(channel).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| GrpcError::Timeout(timeout))?
}
