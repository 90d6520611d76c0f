//! Which GPU each pod was given, from a pod-resources `List` answer, with device IDs as device
//! plugins and DRA drivers really report them:
//! - NVIDIA device plugin: `GPU-<uuid>` / `MIG-<uuid>`, time-slicing replicas `GPU-<uuid>::<n>`;
//! - `DEVICE_ID_STRATEGY=index`: `0`, `1`, … (MIG: `0:1`), mapped by NVML index;
//! - Dynamic Resource Allocation (`dynamic_resources`): a `GPU-`/`MIG-` UUID inside the device
//!   or CDI device name where the driver puts one, else NVIDIA's DRA driver's canonical device
//!   names `gpu-<index>` and `gpu-<index>-mig-<profile>-<start>-<size>` by NVML index.

use std::collections::HashMap;

use super::podresources::{ContainerResources, ListPodResourcesResponse};

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
    /// Indexes a `List` response; `gpus` are the (NVML index, UUID) pairs of this node.
    pub fn from_response(response: &ListPodResourcesResponse, gpus: &[(u32, String)]) -> PodIndex {
        let mut by_gpu: HashMap<String, Vec<PodRef>> = HashMap::new();
        for pod in &response.pod_resources {
            for c in &pod.containers {
                for uuid in container_gpus(c, gpus) {
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
        PodIndex { by_gpu }
    }

    /// The containers given GPU `uuid` (empty when none or unknown).
    pub fn holders(&self, uuid: &str) -> &[PodRef] {
        self.by_gpu.get(uuid).map_or(&[], Vec::as_slice)
    }

    /// The containers given any of a MIG instance's devices, by MIG UUID (the ID the NVIDIA
    /// device plugin reports for MIG devices with both `single` and `mixed` strategies).
    pub fn holders_of<'a>(&'a self, mig_uuids: &'a [String]) -> impl Iterator<Item = &'a PodRef> {
        mig_uuids.iter().flat_map(|u| self.holders(u))
    }

    /// Number of GPUs with at least one pod.
    pub fn gpus(&self) -> usize {
        self.by_gpu.len()
    }
}

/// The GPU UUIDs container `c` was given by device plugins or DRA.
fn container_gpus(c: &ContainerResources, gpus: &[(u32, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for d in &c.devices {
        let gpu_resource =
            d.resource_name.starts_with("nvidia.com/") || d.resource_name.contains("gpu");
        if gpu_resource {
            found.extend(d.device_ids.iter().filter_map(|id| plugin_id(id, gpus)));
        }
    }
    for claim in c.dynamic_resources.iter().flat_map(|d| &d.claim_resources) {
        let mut names = std::iter::once(claim.device_name.as_str())
            .chain(claim.cdi_devices.iter().map(|d| d.name.as_str()));
        let uuid = names
            .find_map(uuid_inside)
            .or_else(|| dra_index_name(&claim.device_name, gpus));
        found.extend(uuid);
    }
    found
}

/// NVIDIA's DRA driver names a GPU `gpu-<index>` and a MIG device on it
/// `gpu-<index>-mig-<profile>-<start>-<size>`: the GPU of NVML index `<index>`.
pub fn dra_index_name(name: &str, gpus: &[(u32, String)]) -> Option<String> {
    let rest = name.strip_prefix("gpu-")?;
    let (index, tail) = rest.split_once('-').unwrap_or((rest, ""));
    if !(tail.is_empty() || tail.starts_with("mig-")) {
        return None;
    }
    let index: u32 = index.parse().ok()?;
    gpus.iter()
        .find(|(i, _)| *i == index)
        .map(|(_, uuid)| uuid.clone())
}

/// A device plugin ID → GPU UUID: a UUID (replica suffix `::n` removed) or an NVML index.
pub fn plugin_id(id: &str, gpus: &[(u32, String)]) -> Option<String> {
    let id = id.split("::").next().unwrap_or(id);
    if id.starts_with("GPU-") || id.starts_with("MIG-") {
        return Some(id.to_string());
    }
    // Index strategy: `2`, or `2:1` for MIG instance 1 on GPU 2 (billed to GPU 2).
    let index: u32 = id.split(':').next()?.parse().ok()?;
    gpus.iter()
        .find(|(i, _)| *i == index)
        .map(|(_, uuid)| uuid.clone())
}

/// The first `GPU-…`/`MIG-…` UUID inside `name` (e.g. a CDI device name), if any.
pub fn uuid_inside(name: &str) -> Option<String> {
    let start = ["GPU-", "MIG-"].iter().filter_map(|p| name.find(p)).min()?;
    let rest = &name[start..];
    let end = rest[4..]
        .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .map_or(rest.len(), |i| i + 4);
    let uuid = rest[..end].trim_end_matches('-');
    (uuid.len() > 4 + 8).then(|| uuid.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::podresources::*;
    use super::*;

    const A: &str = "GPU-aaaaaaaa-1111-2222-3333-444444444444";
    const B: &str = "GPU-bbbbbbbb-1111-2222-3333-444444444444";

    fn gpus() -> Vec<(u32, String)> {
        vec![(0, A.to_string()), (1, B.to_string())]
    }

    fn container(resource: &str, ids: &[&str]) -> ContainerResources {
        ContainerResources {
            name: "c".into(),
            devices: vec![ContainerDevices {
                resource_name: resource.into(),
                device_ids: ids.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn plugin_ids_uuid_replica_and_index() {
        assert_eq!(plugin_id(A, &gpus()).as_deref(), Some(A));
        assert_eq!(plugin_id(&format!("{A}::3"), &gpus()).as_deref(), Some(A));
        assert_eq!(plugin_id("1", &gpus()).as_deref(), Some(B));
        assert_eq!(plugin_id("0:2", &gpus()).as_deref(), Some(A));
        assert_eq!(plugin_id("7", &gpus()), None);
        assert_eq!(plugin_id("eth0", &gpus()), None);
    }

    #[test]
    fn only_gpu_resources_count() {
        let c = container("example.com/nic", &["0"]);
        assert!(container_gpus(&c, &gpus()).is_empty());
        let c = container("nvidia.com/gpu", &["1", &format!("{A}::0")]);
        assert_eq!(container_gpus(&c, &gpus()), [B, A]);
    }

    #[test]
    fn dra_devices_by_uuid() {
        let mut c = container("cpu", &[]);
        c.dynamic_resources = vec![DynamicResource {
            claim_name: "gpu-claim".into(),
            claim_namespace: "ml".into(),
            claim_resources: vec![ClaimResource {
                cdi_devices: vec![CdiDevice {
                    name: format!("k8s.gpu.nvidia.com/device={B}"),
                }],
                driver_name: "gpu.nvidia.com".into(),
                pool_name: "node-1".into(),
                device_name: "gpu-1".into(),
                share_id: None,
            }],
        }];
        assert_eq!(container_gpus(&c, &gpus()), [B]);
        // NVIDIA's driver: canonical names, its CDI names carry a claim UID, not a GPU UUID.
        let claim = &mut c.dynamic_resources[0].claim_resources[0];
        claim.cdi_devices[0].name = "k8s.gpu.nvidia.com/claim=2f1e7c9a-gpu-0".into();
        claim.device_name = "gpu-0".into();
        assert_eq!(container_gpus(&c, &gpus()), [A]);
        assert_eq!(
            dra_index_name("gpu-1-mig-19-0-1", &gpus()).as_deref(),
            Some(B)
        );
        for other in ["gpu-7", "gpu-x", "gpu-1-foo", "imex-channel-0", "gpu-"] {
            assert_eq!(dra_index_name(other, &gpus()), None, "{other}");
        }
        assert_eq!(uuid_inside("gpu-0"), None);
        assert_eq!(uuid_inside(&format!("x/{A}-y")).as_deref(), Some(A));
    }

    #[test]
    fn mig_devices_are_indexed_by_mig_uuid_in_both_strategies() {
        // `single`: MIG devices under nvidia.com/gpu; `mixed`: under nvidia.com/mig-<profile>.
        const M1: &str = "MIG-11111111-2222-3333-4444-555555555555";
        const M2: &str = "MIG-66666666-2222-3333-4444-555555555555";
        let pod = |name: &str, resource: &str, id: &str| PodResources {
            name: name.into(),
            namespace: "ml".into(),
            containers: vec![container(resource, &[id])],
            ..Default::default()
        };
        let response = ListPodResourcesResponse {
            pod_resources: vec![
                pod("single", "nvidia.com/gpu", M1),
                pod("mixed", "nvidia.com/mig-1g.10gb", M2),
            ],
        };
        let index = PodIndex::from_response(&response, &gpus());
        assert_eq!(index.holders(M1)[0].pod, "single");
        assert_eq!(index.holders(M2)[0].pod, "mixed");
        let mig = [M2.to_string(), "MIG-none".to_string()];
        let held: Vec<&str> = index.holders_of(&mig).map(|h| h.pod.as_str()).collect();
        assert_eq!(held, ["mixed"]);
    }

    #[test]
    fn index_holders() {
        let response = ListPodResourcesResponse {
            pod_resources: vec![PodResources {
                name: "train-0".into(),
                namespace: "ml".into(),
                containers: vec![container("nvidia.com/gpu", &["0"])],
                ..Default::default()
            }],
        };
        let index = PodIndex::from_response(&response, &gpus());
        assert_eq!(index.holders(A).len(), 1);
        assert_eq!(index.holders(A)[0].pod, "train-0");
        assert!(index.holders(B).is_empty());
    }
}
