//! Workloads on MIG instances: each instance's share of the GPU is split equally among its
//! compute processes (no per-process utilization under MIG), and the workloads plus
//! unattributed still add up to the GPU.

use super::{assert_rel, scrape_after, start, start_by_user, sum, Host, GPU_A};
use crate::support::now_unix;

/// A100 (no GPM): gi 1 (14 SMs) runs alice, gi 2 (28 SMs) runs bob and carol, gi 3 (42 SMs)
/// runs nothing. Weights 14 and 28: alice gets 1/3, bob and carol 1/3 each; gi 3 nothing.
#[test]
fn instances_split_among_their_processes_and_everything_adds_up() {
    let host = Host::new("mig");
    let login = |uid: u32| format!("0::/user.slice/user-{uid}.slice/session-1.scope\n");
    host.process(701, 1001, &login(1001))
        .process(702, 1002, &login(1002))
        .process(703, 1003, &login(1003));
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\nname = NVIDIA A100-SXM4-40GB\npower = square:150:350:0.6\n\
         mig = yes\nsm_count = 98\n\
         mig_instance = gi=1 sm=14\nmig_instance = gi=2 sm=28\nmig_instance = gi=3 sm=42\n\
         process = pid=701 gi=1\nprocess = pid=702 gi=2\nprocess = pid=703 gi=2\n"
    );
    let exporter = start_by_user(&host, &scenario);
    let s = scrape_after(&exporter, epoch, 2.5);
    let device = s.value("gpu_energy_kwh_total", &[("uuid", GPU_A)]);
    let user = |u: &str| sum(&s, "gpu_workload_energy_kwh_total", &[("user", u)]);
    let mig = |gi: &str| s.value("gpu_mig_energy_kwh_total", &[("gpu_instance", gi)]);
    assert_rel("alice = gi 1", user("alice"), mig("1"), 1e-9);
    assert_rel(
        "bob + carol = gi 2",
        user("bob") + user("carol"),
        mig("2"),
        1e-9,
    );
    assert_rel("bob = carol", user("bob"), user("carol"), 1e-9);
    assert_rel("alice = a third", user("alice"), device / 3.0, 1e-9);
    assert_eq!(mig("3"), 0.0);
    let workloads = sum(&s, "gpu_workload_energy_kwh_total", &[]);
    let unattributed = s.value("gpu_unattributed_energy_kwh_total", &[("uuid", GPU_A)]);
    assert_rel(
        "workloads + unattributed",
        workloads + unattributed,
        device,
        1e-9,
    );
    assert_eq!(exporter.terminate().code(), Some(0));
    let _ = std::fs::remove_dir_all(&host.dir);
}

/// Pods given MIG devices (the device plugin's `MIG-<uuid>` IDs, served by a real grpcio
/// pod-resources server) are shown on their instance: `gpu_mig_kubernetes_allocation_info`.
#[test]
fn pods_given_mig_devices_are_shown_on_their_instance() {
    if !super::kubelet::grpc_available() {
        return;
    }
    let host = Host::new("mig-pods");
    let socket = super::kubelet_socket("mig-pods");
    let (m1, m2) = (
        "MIG-11111111-2222-4333-8444-555555555555",
        "MIG-66666666-7777-4888-8999-aaaaaaaaaaaa",
    );
    let _server = super::kubelet::serve(
        &[
            (
                "ml",
                "infer-a",
                "e0000000-0000-4000-8000-000000000000",
                &[("srv", "", &[m1])],
            ),
            (
                "ml",
                "infer-b",
                "e1000000-0000-4000-8000-000000000000",
                &[("srv", "", &[m2])],
            ),
        ],
        Some(&socket),
        None,
    );
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\nname = NVIDIA A100-SXM4-40GB\npower = const:200\n\
         mig = yes\nsm_count = 98\n\
         mig_instance = gi=1 sm=14 uuid={m1}\nmig_instance = gi=2 sm=28 uuid={m2}\n"
    );
    let flag = format!("--kubernetes.pod-resources-socket={}", socket.display());
    let exporter = start(
        &host,
        &scenario,
        &[&flag, "--kubernetes.refresh-interval=200ms"],
    );
    let s = scrape_after(&exporter, epoch, 1.5);
    let mut given: Vec<(String, String)> = s
        .find("gpu_mig_kubernetes_allocation_info", &[("uuid", GPU_A)])
        .iter()
        .map(|x| {
            let l = |n| x.label(n).unwrap_or("").to_string();
            (l("gpu_instance"), l("pod"))
        })
        .collect();
    given.sort();
    let want = [("1", "infer-a"), ("2", "infer-b")].map(|(g, p)| (g.to_string(), p.to_string()));
    assert_eq!(given, want, "{}", s.text);
    let _ = std::fs::remove_dir_all(&host.dir);
}
