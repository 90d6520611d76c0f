//! Which pod was given which GPU, with device IDs as device plugins and DRA drivers report
//! them, served by a real grpcio pod-resources server: time-slicing replicas `GPU-<uuid>::<n>`,
//! `DEVICE_ID_STRATEGY=index` IDs and NVIDIA's DRA driver's `gpu-<index>` claims all land on
//! the right GPU in `gpu_kubernetes_allocation_info`.

use super::{kubelet, kubelet_socket, scrape_after, start, Host, GPU_A, GPU_B, GPU_C};
use crate::support::now_unix;

#[test]
fn device_ids_of_every_plugin_strategy_map_to_their_gpu() {
    if !kubelet::grpc_available() {
        return;
    }
    let host = Host::new("allocations");
    let pr = kubelet_socket("alloc-pr");
    let replica = |n: u32| format!("{GPU_A}::{n}");
    let (r0, r1) = (replica(0), replica(1));
    let _server = kubelet::serve(
        &[
            (
                "ml",
                "shared-0",
                "a0000000-0000-4000-8000-000000000000",
                &[("w", "", &[&r0])],
            ),
            (
                "ml",
                "shared-1",
                "a1000000-0000-4000-8000-000000000000",
                &[("w", "", &[&r1])],
            ),
            (
                "ml",
                "by-index",
                "b0000000-0000-4000-8000-000000000000",
                &[("w", "", &["1"])],
            ),
            (
                "ml",
                "by-dra",
                "c0000000-0000-4000-8000-000000000000",
                &[("w", "", &["dra:gpu-2"])],
            ),
            (
                "ml",
                "unknown",
                "d0000000-0000-4000-8000-000000000000",
                &[("w", "", &["7", "dra:gpu-9"])],
            ),
        ],
        Some(&pr),
        None,
    );
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:100\n\
         [gpu]\nuuid = {GPU_B}\npower = const:100\n[gpu]\nuuid = {GPU_C}\npower = const:100\n"
    );
    let flags = [
        format!("--kubernetes.pod-resources-socket={}", pr.display()),
        "--kubernetes.refresh-interval=200ms".into(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let exporter = start(&host, &scenario, &flags);
    let s = scrape_after(&exporter, epoch, 1.5);
    let mut held: Vec<(String, String)> = s
        .find("gpu_kubernetes_allocation_info", &[])
        .iter()
        .map(|x| {
            assert_eq!(x.value, 1.0);
            let l = |n| x.label(n).unwrap_or("").to_string();
            (l("uuid"), l("pod"))
        })
        .collect();
    held.sort();
    let want = [
        (GPU_A, "shared-0"),
        (GPU_A, "shared-1"),
        (GPU_B, "by-index"),
        (GPU_C, "by-dra"),
    ]
    .map(|(u, p)| (u.to_string(), p.to_string()));
    assert_eq!(held, want, "{}", s.text);
    // The GPU index label agrees with the UUID's.
    for x in s.find("gpu_kubernetes_allocation_info", &[("uuid", GPU_B)]) {
        assert_eq!(x.label("gpu"), Some("1"));
    }
}
