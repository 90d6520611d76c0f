//! A fake kubelet pod-resources server (gRPC `v1.PodResourcesLister/List`) on a unix socket,
//! served over HTTP/2 by hyper, as the exporter's client expects a kubelet to answer.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gpu_carbon_exporter::attribution::kubernetes::podresources::{
    frame, ContainerDevices, ContainerResources, ListPodResourcesResponse, PodResources, LIST_PATH,
};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;

/// One pod holding one GPU: (namespace, pod, container, device ID).
pub type Assignment<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The `List` answer for `pods`.
pub fn response(pods: &[Assignment]) -> ListPodResourcesResponse {
    ListPodResourcesResponse {
        pod_resources: pods
            .iter()
            .map(|(ns, pod, container, device)| PodResources {
                name: pod.to_string(),
                namespace: ns.to_string(),
                containers: vec![ContainerResources {
                    name: container.to_string(),
                    devices: vec![ContainerDevices {
                        resource_name: "nvidia.com/gpu".into(),
                        device_ids: vec![device.to_string()],
                    }],
                }],
            })
            .collect(),
    }
}

/// Serves `answer` on a new socket at `path` from a thread of its own, for the life of the
/// test process.
pub fn serve(path: &Path, answer: ListPodResourcesResponse) -> PathBuf {
    let _ = std::fs::remove_file(path);
    let std_listener = std::os::unix::net::UnixListener::bind(path).expect("bind fake kubelet");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let body = Bytes::from(frame(&answer.encode_to_vec()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(std_listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let body = body.clone();
                            async move {
                                let ok = req.uri().path() == LIST_PATH;
                                let status = if ok { "0" } else { "12" };
                                let data = if ok { body } else { Bytes::new() };
                                let trailers = async move {
                                    let mut h = HeaderMap::new();
                                    h.insert("grpc-status", HeaderValue::from_static(status));
                                    Some(Ok::<_, Infallible>(h))
                                };
                                let response = hyper::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(Full::new(data).with_trailers(trailers))
                                    .expect("response");
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    path.to_path_buf()
}

/// A socket that accepts connections and closes them at once: a broken kubelet.
pub fn serve_broken(path: &Path) -> PathBuf {
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind broken kubelet");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    path.to_path_buf()
}
