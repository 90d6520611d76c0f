//! The cgroup layouts of the systems people run, each a `/proc/PID/cgroup` as read on such a
//! system, through the real binary: every process gets its Slurm job, pod UID or nothing, and
//! the GPU's energy splits equally among them (no per-process utilization here).

use super::{assert_rel, scrape_after, start, sum, Host, GPU_A};
use crate::support::now_unix;

const UID: &str = "5d2e8f10-3c4b-4a59-9e7d-1f2a3b4c5d6e";
const CID: &str = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b";

/// (PID, UID, `/proc/PID/cgroup`, the `slurm_job` and `pod` labels expected).
fn layouts() -> Vec<(u32, u32, String, &'static str, &'static str)> {
    let u = UID.replace('-', "_");
    vec![
        // Multiple-slurmd node, cgroup v2: `<node>_slurmstepd.scope`, batch/extern/numbered.
        (701, 2001, "0::/system.slice/gpu07_slurmstepd.scope/job_88123/step_batch/user/task_0\n".into(), "88123", ""),
        (702, 2002, "0::/system.slice/gpu07_slurmstepd.scope/job_88124/step_extern/user/task_special\n".into(), "88124", ""),
        (703, 2003, "0::/system.slice/slurmstepd.scope/job_88125/step_3/user/task_0\n".into(), "88125", ""),
        // Slurm cgroup v1, several controllers.
        (704, 2004, "12:devices:/slurm/uid_2004/job_4401/step_batch\n5:memory:/slurm/uid_2004/job_4401/step_batch/task_0\n1:name=systemd:/user.slice\n".into(), "4401", ""),
        // kind: a kubelet nested under the node's kubelet.slice (cgroup v2, systemd driver).
        (705, 2005, format!("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{u}.slice/cri-containerd-{CID}.scope\n"), "", UID),
        // CRI-O with its `/container` sub-cgroup.
        (706, 2006, format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-{CID}.scope/container\n"), "", UID),
        // containerd, cgroup v1 cgroupfs driver.
        (707, 2007, format!("11:devices:/kubepods/burstable/pod{UID}/{CID}\n4:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n0::/\n"), "", UID),
        // Podman and Docker outside Kubernetes: a container, no pod.
        (708, 2008, format!("0::/machine.slice/libpod-{CID}.scope/container\n"), "", ""),
        (709, 2009, format!("4:devices:/docker/{CID}\n0::/\n"), "", ""),
        // A login session: nothing.
        (710, 2010, "0::/user.slice/user-2010.slice/session-4.scope\n".into(), "", ""),
    ]
}

#[test]
fn every_layout_gets_its_job_or_pod_through_the_real_binary() {
    let host = Host::new("layouts");
    let epoch = now_unix();
    let mut scenario =
        format!("epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:250\nprocess_util = no\n");
    for (pid, uid, cgroup, _, _) in layouts() {
        host.process(pid, uid, &cgroup);
        scenario.push_str(&format!("process = pid={pid}\n"));
    }
    let exporter = start(
        &host,
        &scenario,
        &[
            "--attribution.labels=user,pod,slurm_job",
            "--kubernetes.pod-resources-socket=",
            "--kubernetes.cri-socket=",
        ],
    );
    let s = scrape_after(&exporter, epoch, 1.5);
    let device = s.value("gpu_energy_kwh_total", &[("uuid", GPU_A)]);
    let n = layouts().len() as f64;
    for (_, uid, cgroup, job, pod) in layouts() {
        let user = uid.to_string();
        let series = s.find("gpu_workload_energy_kwh_total", &[("user", &user)]);
        assert_eq!(series.len(), 1, "{cgroup}{}", s.text);
        let got = [series[0].label("slurm_job"), series[0].label("pod")];
        assert_eq!(got, [Some(job), Some(pod)], "{cgroup}");
        assert_rel(
            &format!("equal share of {cgroup}"),
            series[0].value,
            device / n,
            1e-9,
        );
    }
    let parts = sum(&s, "gpu_workload_energy_kwh_total", &[])
        + s.value("gpu_unattributed_energy_kwh_total", &[("uuid", GPU_A)]);
    assert_rel("conservation", parts, device, 1e-9);
    let _ = std::fs::remove_dir_all(&host.dir);
}
