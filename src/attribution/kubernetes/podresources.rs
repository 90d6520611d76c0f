//! The kubelet pod-resources API v1 (`v1.PodResourcesLister/List`) over its unix socket.
//!
//! gRPC here is one unary call, so it is written over `hyper`'s HTTP/2 client (already the
//! exporter's HTTP stack) with the few messages declared by hand with `prost` derives: no
//! `protoc`, no generated code, no second HTTP stack. Only the fields the exporter reads are
//! declared; protobuf skips the others.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

/// The RPC's path: package `v1`, service `PodResourcesLister`, method `List`.
pub const LIST_PATH: &str = "/v1.PodResourcesLister/List";

/// `ListPodResourcesRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodResourcesRequest {}

/// `ListPodResourcesResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodResourcesResponse {
    /// Every pod on the node.
    #[prost(message, repeated, tag = "1")]
    pub pod_resources: Vec<PodResources>,
}

/// `PodResources`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodResources {
    /// Pod name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Pod namespace.
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// Its containers.
    #[prost(message, repeated, tag = "3")]
    pub containers: Vec<ContainerResources>,
}

/// `ContainerResources`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerResources {
    /// Container name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Devices assigned by device plugins.
    #[prost(message, repeated, tag = "2")]
    pub devices: Vec<ContainerDevices>,
}

/// `ContainerDevices`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerDevices {
    /// Extended resource name, e.g. `nvidia.com/gpu`.
    #[prost(string, tag = "1")]
    pub resource_name: String,
    /// Device IDs; for NVIDIA's plugin, GPU UUIDs (with `::N` for time-sliced replicas).
    #[prost(string, repeated, tag = "2")]
    pub device_ids: Vec<String>,
}

/// Why the pod-resources API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PodResourcesError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// HTTP/2 failed.
    #[error("HTTP/2: {0}")]
    Http(#[from] hyper::Error),
    /// The server answered with a gRPC error.
    #[error("gRPC status {code}: {message}")]
    Status {
        /// gRPC status code.
        code: u32,
        /// `grpc-message`.
        message: String,
    },
    /// The answer is not a valid response.
    #[error("invalid response: {0}")]
    Invalid(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A message in gRPC's length-prefixed framing (uncompressed).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The one message of a unary gRPC response body.
pub fn unframe(body: &[u8]) -> Result<&[u8], PodResourcesError> {
    let invalid = |m: &str| PodResourcesError::Invalid(m.to_string());
    let (header, rest) = body
        .split_at_checked(5)
        .ok_or_else(|| invalid("body shorter than a gRPC frame header"))?;
    if header[0] != 0 {
        return Err(invalid("compressed message"));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    rest.get(..len)
        .ok_or_else(|| invalid("truncated gRPC message"))
}

/// Calls `List` on the kubelet socket at `socket`, giving up after `timeout`.
pub async fn list(
    socket: &Path,
    timeout: Duration,
) -> Result<ListPodResourcesResponse, PodResourcesError> {
    tokio::time::timeout(timeout, call(socket))
        .await
        .map_err(|_| PodResourcesError::Timeout(timeout))?
}

async fn call(socket: &Path) -> Result<ListPodResourcesResponse, PodResourcesError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| PodResourcesError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let body = Full::new(Bytes::from(frame(
        &ListPodResourcesRequest {}.encode_to_vec(),
    )));
    let request = hyper::Request::post(format!("http://localhost{LIST_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .map_err(|e| PodResourcesError::Invalid(e.to_string()))?;
    let response = sender.send_request(request).await?;
    if response.status() != hyper::StatusCode::OK {
        return Err(PodResourcesError::Invalid(format!(
            "HTTP status {}",
            response.status()
        )));
    }
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = trailers.get("grpc-status").or(headers.get("grpc-status"));
    let code = status
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if code != Some(0) {
        let message = trailers
            .get("grpc-message")
            .or(headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no grpc-status")
            .to_string();
        return Err(PodResourcesError::Status {
            code: code.unwrap_or(2),
            message,
        });
    }
    let bytes = collected.to_bytes();
    ListPodResourcesResponse::decode(unframe(&bytes)?)
        .map_err(|e| PodResourcesError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips() {
        let msg = ListPodResourcesResponse {
            pod_resources: vec![PodResources {
                name: "train-0".into(),
                namespace: "ml".into(),
                containers: vec![ContainerResources {
                    name: "trainer".into(),
                    devices: vec![ContainerDevices {
                        resource_name: "nvidia.com/gpu".into(),
                        device_ids: vec!["GPU-1".into()],
                    }],
                }],
            }],
        };
        let framed = frame(&msg.encode_to_vec());
        let back =
            ListPodResourcesResponse::decode(unframe(&framed).expect("frame")).expect("decode");
        assert_eq!(back, msg);
        assert!(unframe(&[0, 0, 0]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).is_err());
    }
}
