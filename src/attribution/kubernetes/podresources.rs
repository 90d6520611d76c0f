//! The kubelet pod-resources API v1 (`v1.PodResourcesLister/List`) over its unix socket: which
//! devices each pod's containers were given. It is the source of *which GPU a pod holds*,
//! never of who a process is (the API has no pod UIDs; see [`super::names`]).

use std::path::Path;
use std::time::Duration;

pub use super::grpc::podresources_v1::{
    CdiDevice, ClaimResource, ContainerDevices, ContainerResources, DynamicResource,
    ListPodResourcesRequest, ListPodResourcesResponse, PodResources,
};
use super::grpc::{
    self, podresources_v1::pod_resources_lister_client::PodResourcesListerClient, GrpcError,
};

/// Calls `List` on the kubelet socket at `socket`, giving up after `timeout`.
pub async fn list(socket: &Path, timeout: Duration) -> Result<ListPodResourcesResponse, GrpcError> {
    grpc::with_deadline(socket, timeout, |channel| async move {
        let mut client =
            PodResourcesListerClient::new(channel).max_decoding_message_size(grpc::MAX_MESSAGE);
        Ok(client.list(ListPodResourcesRequest {}).await?.into_inner())
    })
    .await
}
