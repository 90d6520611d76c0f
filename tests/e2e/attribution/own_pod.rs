//! A process is billed to its own pod, whatever pod the GPU was given to: names from the CRI
//! API (a real grpcio server), else from `/var/log/pods` under `--path.rootfs`.

use super::{kubelet, kubelet_socket, scrape_after, start, sum, Host, GPU_A};
use crate::support::now_unix;

const OWNER: &str = "11111111-2222-4333-8444-555555555555";
const INTRUDER: &str = "66666666-7777-4888-8999-aaaaaaaaaaaa";
const CID: &str = "4444444444444444444444444444444444444444444444444444444444444444";

fn host(name: &str) -> Host {
    let host = Host::new(name);
    host.process(
        501,
        1001,
        &format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{CID}.scope\n",
            INTRUDER.replace('-', "_")
        ),
    );
    host
}

fn scenario(epoch: f64) -> String {
    format!("epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:300\nprocess = pid=501 sm=const:40\n")
}

/// The intruder's series: (namespace, pod, container) of every series with energy.
fn billed(s: &crate::support::Scrape) -> Vec<[String; 3]> {
    s.find("gpu_workload_energy_kwh_total", &[])
        .iter()
        .filter(|x| x.value > 0.0)
        .map(|x| ["namespace", "pod", "container"].map(|l| x.label(l).unwrap_or("").to_string()))
        .collect()
}

#[test]
fn a_process_is_billed_to_its_own_pod_not_the_gpus_holder_via_cri() {
    if !kubelet::grpc_available() {
        return;
    }
    let host = host("intruder-cri");
    let (pr, cri) = (kubelet_socket("own-pr"), kubelet_socket("own-cri"));
    let _servers = kubelet::serve(
        &[
            (
                "ml",
                "owner-0",
                OWNER,
                &[("trainer", &"5".repeat(64), &[GPU_A])],
            ),
            ("dev", "intruder", INTRUDER, &[("shell", CID, &[])]),
        ],
        Some(&pr),
        Some(&cri),
    );
    let epoch = now_unix();
    let flags = [
        format!("--kubernetes.pod-resources-socket={}", pr.display()),
        format!("--kubernetes.cri-socket={}", cri.display()),
        "--kubernetes.refresh-interval=200ms".into(),
        "--attribution.labels=user,namespace,pod,container".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let exporter = start(&host, &scenario(epoch), &flags);
    let s = scrape_after(&exporter, epoch, 1.5);
    assert_eq!(
        billed(&s),
        [["dev", "intruder", "shell"].map(String::from)],
        "{}",
        s.text
    );
    assert!(sum(&s, "gpu_workload_energy_kwh_total", &[("namespace", "ml")]) == 0.0);
    assert_eq!(
        s.value("gpu_carbon_exporter_kubernetes_pod_resources_up", &[]),
        1.0
    );
    assert!(
        exporter.log().contains("CRI API reachable"),
        "{}",
        exporter.log()
    );
    let _ = std::fs::remove_dir_all(&host.dir);
}

#[test]
fn without_cri_names_come_from_the_kubelet_log_directories() {
    let host = host("intruder-logs");
    let root = host.dir.join("root");
    std::fs::create_dir_all(root.join(format!("var/log/pods/dev_intruder_{INTRUDER}/shell")))
        .expect("mkdir");
    std::fs::create_dir_all(root.join("var/log/containers")).expect("mkdir");
    std::fs::write(
        root.join(format!("var/log/containers/intruder_dev_shell-{CID}.log")),
        "",
    )
    .expect("log link");
    let epoch = now_unix();
    let cri = kubelet_socket("no-cri");
    let _ = std::fs::remove_file(&cri);
    let cri_flag = format!("--kubernetes.cri-socket={}", cri.display());
    let flags = [
        "--kubernetes.pod-resources-socket=",
        cri_flag.as_str(),
        "--kubernetes.refresh-interval=200ms",
        "--attribution.labels=user,namespace,pod,container",
    ];
    let exporter = start(&host, &scenario(epoch), &flags);
    let s = scrape_after(&exporter, epoch, 1.5);
    assert_eq!(
        billed(&s),
        [["dev", "intruder", "shell"].map(String::from)],
        "{}",
        s.text
    );
    assert!(
        !s.text.contains(INTRUDER),
        "no pod-UID-only series before the names arrived:\n{}",
        s.text
    );
    assert!(
        exporter.log().contains("CRI API unreachable"),
        "{}",
        exporter.log()
    );
    let _ = std::fs::remove_dir_all(&host.dir);
}
