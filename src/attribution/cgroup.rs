//! What a process's `/proc/PID/cgroup` says about who runs it: container, Kubernetes pod and
//! QoS class, Slurm job. Pure parsing of the file's text, for cgroup v1 and v2, the systemd and
//! cgroupfs drivers, and containerd, CRI-O and Docker naming.
//!
//! Shapes recognised (one path per line, `hierarchy:controllers:path`):
//! - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
//!   _>.slice/cri-containerd-<id>.scope` (also `crio-<id>.scope`, `docker-<id>.scope`, and
//!   `kubepods-pod<uid>.slice` for Guaranteed pods);
//! - cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>`, `/kubepods/pod<uid>/<id>`,
//!   `/docker/<id>`;
//! - Slurm: v1 `/slurm/uid_U/job_J/step_S/…` (or `/slurm_<node>/…`), v2
//!   `/system.slice/slurmstepd.scope/job_J/step_S/…`.

/// Identity facts found in a cgroup file; `None` where the process is not in such a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Full container ID (64 hex digits).
    pub container_id: Option<String>,
    /// Kubernetes pod UID, with dashes.
    pub pod_uid: Option<String>,
    /// Kubernetes QoS class: `guaranteed`, `burstable` or `besteffort`.
    pub qos: Option<String>,
    /// Slurm job ID.
    pub slurm_job: Option<String>,
}

/// Parses the text of `/proc/PID/cgroup`. Lines are tried in order; the first that names a
/// fact wins, so the unified (`0::`) line and every v1 controller line agree in practice.
pub fn parse(text: &str) -> CgroupInfo {
    let mut info = CgroupInfo::default();
    for line in text.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        let found = parse_path(path);
        info.container_id = info.container_id.or(found.container_id);
        if info.pod_uid.is_none() {
            info.pod_uid = found.pod_uid;
            info.qos = found.qos;
        }
        info.slurm_job = info.slurm_job.or(found.slurm_job);
    }
    info
}

fn parse_path(path: &str) -> CgroupInfo {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    // `kubepods…` at the top, or nested under a kubelet of its own (kind, multi-kubelet
    // nodes: `kubelet.slice/kubelet-kubepods-…-pod<uid>.slice`).
    let kubepods = parts.iter().any(|p| p.contains("kubepods"));
    let pod_uid = if kubepods {
        parts.iter().find_map(|p| pod_uid(p))
    } else {
        None
    };
    let qos = pod_uid.as_ref().map(|_| {
        let has = |class: &str| {
            parts
                .iter()
                .any(|p| *p == class || p.ends_with(&format!("kubepods-{class}.slice")))
        };
        match () {
            _ if has("burstable") => "burstable",
            _ if has("besteffort") => "besteffort",
            _ => "guaranteed",
        }
        .to_string()
    });
    // `slurm…` at the top, or `<node>_slurmstepd.scope` on multiple-slurmd nodes.
    let slurm = parts.iter().any(|p| p.contains("slurm"));
    CgroupInfo {
        container_id: parts.iter().rev().find_map(|p| container_id(p)),
        pod_uid,
        qos,
        slurm_job: if slurm {
            parts.iter().find_map(|p| slurm_job(p))
        } else {
            None
        },
    }
}

/// `pod<uid>` or `kubepods-<qos>-pod<uid_with_underscores>.slice`.
fn pod_uid(part: &str) -> Option<String> {
    let part = part.strip_suffix(".slice").unwrap_or(part);
    let (_, uid) = part.rsplit_once("pod")?;
    let uid = uid.replace('_', "-");
    let uuid_like = uid.len() == 36
        && uid.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        });
    uuid_like.then_some(uid)
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` or a bare `<id>`.
fn container_id(part: &str) -> Option<String> {
    let part = part.strip_suffix(".scope").unwrap_or(part);
    if part.starts_with("crio-conmon-") {
        return None;
    }
    let id = [
        "cri-containerd-",
        "crio-",
        "docker-",
        "containerd-",
        "libpod-",
    ]
    .iter()
    .find_map(|prefix| part.strip_prefix(prefix))
    .unwrap_or(part);
    (id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_string())
}

/// `job_<digits>`.
fn slurm_job(part: &str) -> Option<String> {
    let id = part.strip_prefix("job_")?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "8f4b2a1c9d3e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
    const UID: &str = "4f1c3a2e-8b7d-4c1e-9f3a-2b6c5d4e3f21";

    fn pod(qos: &str) -> CgroupInfo {
        CgroupInfo {
            container_id: Some(CID.into()),
            pod_uid: Some(UID.into()),
            qos: Some(qos.into()),
            slurm_job: None,
        }
    }

    #[test]
    fn containerd_systemd_v2() {
        let text = format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4f1c3a2e_8b7d_4c1e_9f3a_2b6c5d4e3f21.slice/cri-containerd-{CID}.scope\n");
        assert_eq!(parse(&text), pod("burstable"));
    }

    #[test]
    fn crio_systemd_guaranteed() {
        let text = format!("0::/kubepods.slice/kubepods-pod4f1c3a2e_8b7d_4c1e_9f3a_2b6c5d4e3f21.slice/crio-{CID}.scope\n");
        assert_eq!(parse(&text), pod("guaranteed"));
        let conmon = "0::/kubepods.slice/kubepods-pod4f1c3a2e_8b7d_4c1e_9f3a_2b6c5d4e3f21.slice/crio-conmon-8f4b2a1c9d3e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a.scope";
        assert_eq!(parse(conmon).container_id, None);
    }

    #[test]
    fn cgroupfs_v1_besteffort_with_many_controllers() {
        let text = format!(
            "12:hugetlb:/kubepods/besteffort/pod{UID}/{CID}\n\
             11:memory:/kubepods/besteffort/pod{UID}/{CID}\n\
             1:name=systemd:/kubepods/besteffort/pod{UID}/{CID}\n0::/\n"
        );
        assert_eq!(parse(&text), pod("besteffort"));
    }

    #[test]
    fn docker_outside_kubernetes() {
        for text in [
            format!("0::/system.slice/docker-{CID}.scope"),
            format!("4:devices:/docker/{CID}"),
        ] {
            let info = parse(&text);
            assert_eq!(info.container_id.as_deref(), Some(CID), "{text}");
            assert_eq!((info.pod_uid, info.qos, info.slurm_job), (None, None, None));
        }
    }

    #[test]
    fn slurm_v1_and_v2() {
        let v1 = "7:memory:/slurm/uid_1000/job_4242/step_0/task_0\n6:devices:/slurm/uid_1000/job_4242/step_0\n";
        assert_eq!(parse(v1).slurm_job.as_deref(), Some("4242"));
        let node = "5:cpuset:/slurm_gpu01/uid_1000/job_77/step_batch\n";
        assert_eq!(parse(node).slurm_job.as_deref(), Some("77"));
        let v2 = "0::/system.slice/slurmstepd.scope/job_4243/step_0/user/task_0\n";
        assert_eq!(parse(v2).slurm_job.as_deref(), Some("4243"));
        assert_eq!(parse(v2).container_id, None);
    }

    /// Fixtures shaped as `/proc/PID/cgroup` reads on the systems named.
    #[test]
    fn layouts_from_real_systems() {
        let u = UID.replace('-', "_");
        // kind (kubelet in a container, nested under the node's kubelet.slice).
        let kind = format!("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{u}.slice/cri-containerd-{CID}.scope\n");
        assert_eq!(parse(&kind), pod("besteffort"));
        // Podman (rootful, systemd driver) and Docker/containerd on cgroup v1 cgroupfs.
        let podman = format!("0::/machine.slice/libpod-{CID}.scope/container\n");
        assert_eq!(parse(&podman).container_id.as_deref(), Some(CID));
        let containerd_v1 = format!("11:devices:/kubepods/burstable/pod{UID}/{CID}\n4:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n");
        assert_eq!(parse(&containerd_v1), pod("burstable"));
        // CRI-O with its `/container` sub-cgroup (cgroup v2, systemd driver).
        let crio = format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-{CID}.scope/container\n");
        assert_eq!(parse(&crio), pod("burstable"));
        // Multiple-slurmd node, Slurm cgroup v2 plugin: batch, extern and numbered steps.
        for step in ["step_batch", "step_extern", "step_3"] {
            let text =
                format!("0::/system.slice/gpu07_slurmstepd.scope/job_88123/{step}/user/task_0\n");
            assert_eq!(parse(&text).slurm_job.as_deref(), Some("88123"), "{text}");
        }
        let v1_extern = "10:freezer:/slurm/uid_1000/job_5/step_extern\n";
        assert_eq!(parse(v1_extern).slurm_job.as_deref(), Some("5"));
    }

    #[test]
    fn plain_processes_have_nothing() {
        for text in [
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/system.slice/job_99.service\n",
            "",
            "garbage",
        ] {
            assert_eq!(parse(text), CgroupInfo::default(), "{text}");
        }
    }
}
