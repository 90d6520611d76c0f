//! Who a pod UID and a container ID are: namespace, pod and container names. The CRI API
//! ([`super::cri`]) is the first source; the kubelet's log directories are the fallback, read
//! from the host's root filesystem:
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/` (namespaces, pod and container names
//!   are DNS names, which never hold `_`, so the split is unambiguous);
//! - `/var/log/containers/<pod>_<namespace>_<container>-<container ID>.log` for container IDs.

use std::collections::HashMap;
use std::path::Path;

/// A pod's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
}

/// Pod UID → name and container ID → container name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodNames {
    /// By pod UID (with dashes).
    pub pods: HashMap<String, PodName>,
    /// By full container ID.
    pub containers: HashMap<String, String>,
}

impl PodNames {
    /// Adds what `other` knows and `self` does not: `self` is the better source.
    pub fn fill_from(&mut self, other: PodNames) {
        for (uid, name) in other.pods {
            self.pods.entry(uid).or_insert(name);
        }
        for (id, name) in other.containers {
            self.containers.entry(id).or_insert(name);
        }
    }
}

/// `<namespace>_<pod>_<uid>` → (uid, name).
pub fn pod_dir(name: &str) -> Option<(String, PodName)> {
    let mut parts = name.split('_');
    let (Some(namespace), Some(pod), Some(uid), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if namespace.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    let name = PodName {
        namespace: namespace.to_string(),
        pod: pod.to_string(),
    };
    Some((uid.to_string(), name))
}

/// `<pod>_<namespace>_<container>-<64 hex>.log` → (container ID, container name).
pub fn container_log(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    let hex = id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit());
    let container = rest.splitn(3, '_').nth(2)?;
    (hex && !container.is_empty()).then(|| (id.to_string(), container.to_string()))
}

/// What the kubelet's log directories under `rootfs` say. Missing directories give nothing.
pub fn from_log_dirs(rootfs: &Path) -> PodNames {
    let entries = |dir: &str| -> Vec<String> {
        std::fs::read_dir(rootfs.join(dir))
            .map(|it| {
                it.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    PodNames {
        pods: entries("var/log/pods")
            .iter()
            .filter_map(|n| pod_dir(n))
            .collect(),
        containers: entries("var/log/containers")
            .iter()
            .filter_map(|n| container_log(n))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "8f4b2a1c9d3e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

    #[test]
    fn pod_log_directories() {
        let (uid, name) =
            pod_dir("ml_train-0_4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21").expect("pod dir");
        assert_eq!(uid, "4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21");
        assert_eq!(
            (name.namespace.as_str(), name.pod.as_str()),
            ("ml", "train-0")
        );
        for bad in ["", "a_b", "a_b_c_d", "_b_c", "a__c"] {
            assert_eq!(pod_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn container_log_links() {
        let name = format!("train-0_ml_trainer-{CID}.log");
        assert_eq!(
            container_log(&name),
            Some((CID.to_string(), "trainer".to_string()))
        );
        let dashed = format!("p_ns_side-car-{CID}.log");
        assert_eq!(container_log(&dashed).map(|c| c.1), Some("side-car".into()));
        assert_eq!(container_log("p_ns_c-123.log"), None);
        assert_eq!(container_log(&format!("p_ns_c-{CID}")), None);
    }

    #[test]
    fn better_source_wins() {
        let mut cri = PodNames::default();
        cri.containers.insert("a".into(), "from-cri".into());
        let mut logs = PodNames::default();
        logs.containers.insert("a".into(), "from-logs".into());
        logs.containers.insert("b".into(), "only-logs".into());
        cri.fill_from(logs);
        assert_eq!(cri.containers["a"], "from-cri");
        assert_eq!(cri.containers["b"], "only-logs");
    }
}
