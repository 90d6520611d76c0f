//! The real binary on sysfs trees built here in the kernel's documented layouts that the
//! shared fixture doesn't have: an Intel xe card with only its package channel, a multi-die
//! RAPL package, an integrated GPU without hwmon, a card re-bound by its driver, and NVML and
//! DRM GPUs on one host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, temp_file, Exporter, Scrape};

const J_PER_KWH: f64 = 3.6e6;
const XE: [(&str, &str); 1] = [("uuid", "PCI-0000:3a:00.0")];

/// An empty tree standing for `/sys`.
fn tree() -> PathBuf {
    let marker = temp_file("marker", "");
    marker.parent().expect("temp dir").join("sys")
}

/// Writes `text` to `rel` atomically (the exporter never sees half a number).
fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{text}\n")).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

/// Data Center GPU Max 1550 under xe (Linux 6.8+): `energy2_input` labelled `pkg`, no card
/// channel.
fn xe_card(root: &Path, card: &str, hwmon: &str, uj: u64) {
    put(
        root,
        &format!("class/drm/{card}/device/uevent"),
        "DRIVER=xe\nPCI_CLASS=38000\nPCI_ID=8086:0BD5\nPCI_SLOT_NAME=0000:3a:00.0",
    );
    let h = format!("class/drm/{card}/device/hwmon/{hwmon}");
    put(root, &format!("{h}/name"), "xe");
    put(root, &format!("{h}/energy2_input"), &uj.to_string());
    put(root, &format!("{h}/energy2_label"), "pkg");
    put(root, &format!("{h}/power2_max"), "600000000");
    put(root, &format!("{h}/power2_label"), "pkg");
}

/// An integrated Intel GPU: i915, no hwmon directory.
fn igpu(root: &Path) {
    put(
        root,
        "class/drm/card1/device/uevent",
        "DRIVER=i915\nPCI_CLASS=30000\nPCI_ID=8086:A780\nPCI_SLOT_NAME=0000:00:02.0",
    );
}

/// One package of two dies, each with its DRAM (`intel-rapl:0` and `intel-rapl:1`).
fn two_die_rapl(root: &Path) {
    for (zone, die) in [("intel-rapl:0", 0), ("intel-rapl:1", 1)] {
        let z = format!("class/powercap/{zone}");
        put(root, &format!("{z}/name"), &format!("package-0-die-{die}"));
        put(root, &format!("{z}/energy_uj"), "1000000");
        put(root, &format!("{z}/max_energy_range_uj"), "262143328850");
        let d = format!("{z}/{zone}:0");
        put(root, &format!("{d}/name"), "dram");
        put(root, &format!("{d}/energy_uj"), "2000000");
        put(root, &format!("{d}/max_energy_range_uj"), "65712999613");
    }
}

fn start(root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Exporter {
    let sysfs = format!("--path.sysfs={}", root.display());
    let mut args = vec![
        "--collector.hwmon",
        "--sample.interval=100ms",
        "--carbon.intensity=300",
        &sysfs,
    ];
    args.extend_from_slice(extra);
    let e = Exporter::start(&args, env);
    e.wait_ready();
    e
}

fn wait_for(e: &Exporter, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = e.scrape();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The xe card is measured from its package counter, says so, and the integrated GPU is left
/// out with a reason; both dies' DRAM are exported under labels of their own.
#[test]
fn xe_package_channel_and_multi_die_rapl() {
    let root = tree();
    xe_card(&root, "card0", "hwmon2", 5_000_000);
    igpu(&root);
    two_die_rapl(&root);
    let e = start(&root, &["--no-collector.nvml", "--collector.rapl"], &[]);
    let s0 = wait_for(&e, |s| s.find("gpu_energy_kwh_total", &XE).len() == 1);
    let info = s0.find("gpu_info", &[]);
    assert_eq!(
        info.len(),
        1,
        "the integrated GPU is not exported: {info:?}"
    );
    assert_eq!(info[0].label("energy_source"), Some("counter"));
    assert_eq!(info[0].label("energy_channel"), Some("pkg"));
    assert_eq!(s0.value("gpu_power_limit_watts", &XE), 600.0);
    let log = e.log();
    assert!(
        log.contains("Skipping DRM card") && log.contains("no hwmon sensors"),
        "{log}"
    );

    let mut domains: Vec<&str> = s0
        .find("gpu_host_energy_kwh_total", &[])
        .iter()
        .filter_map(|s| s.label("domain"))
        .collect();
    domains.sort_unstable();
    assert_eq!(
        domains,
        [
            "dram-0-die-0",
            "dram-0-die-1",
            "package-0-die-0",
            "package-0-die-1"
        ]
    );

    // +10 J on the package counter; +3 J on the second die's DRAM.
    let before = s0.value("gpu_energy_kwh_total", &XE);
    let dram1 = [("domain", "dram-0-die-1")];
    let dram_before = s0.value("gpu_host_energy_kwh_total", &dram1);
    put(
        &root,
        "class/drm/card0/device/hwmon/hwmon2/energy2_input",
        "15000000",
    );
    put(
        &root,
        "class/powercap/intel-rapl:1/intel-rapl:1:0/energy_uj",
        "5000000",
    );
    let s1 = wait_for(&e, |s| {
        s.value("gpu_energy_kwh_total", &XE) > before
            && s.value("gpu_host_energy_kwh_total", &dram1) > dram_before
    });
    let j = (s1.value("gpu_energy_kwh_total", &XE) - before) * J_PER_KWH;
    assert!((j - 10.0).abs() < 1e-6, "xe package energy {j} J");
    let j = (s1.value("gpu_host_energy_kwh_total", &dram1) - dram_before) * J_PER_KWH;
    assert!((j - 3.0).abs() < 1e-6, "second die's DRAM {j} J");
    crate::support::assert_promtool_clean(&s1.text);
}

/// A driver rebind renumbers the card and its hwmon directory: the exporter finds it again by
/// PCI slot, `gpu_up` returns to 1 and the counter carries on.
#[test]
fn a_card_rebound_by_its_driver_is_found_again() {
    let root = tree();
    xe_card(&root, "card0", "hwmon2", 5_000_000);
    let e = start(&root, &["--no-collector.nvml"], &[]);
    let s0 = wait_for(&e, |s| s.find("gpu_up", &XE).len() == 1);
    let before = s0.value("gpu_energy_kwh_total", &XE);
    // Unbind: the card disappears.
    let unbound = root.join("unbound");
    std::fs::rename(root.join("class/drm/card0"), &unbound).expect("unbind");
    let s1 = wait_for(&e, |s| s.value("gpu_up", &XE) == 0.0);
    assert_eq!(s1.value("gpu_up", &XE), 0.0);
    // Bind: back as card3 with hwmon7, the package counter 4 J further on.
    std::fs::rename(&unbound, root.join("class/drm/card3")).expect("bind");
    let hwmon = root.join("class/drm/card3/device/hwmon");
    std::fs::rename(hwmon.join("hwmon2"), hwmon.join("hwmon7")).expect("renumber");
    put(
        &root,
        "class/drm/card3/device/hwmon/hwmon7/energy2_input",
        "9000000",
    );
    let s2 = wait_for(&e, |s| s.value("gpu_up", &XE) == 1.0);
    assert_eq!(s2.value("gpu_up", &XE), 1.0, "re-attached:\n{}", e.log());
    let j = (s2.value("gpu_energy_kwh_total", &XE) - before) * J_PER_KWH;
    assert!((j - 4.0).abs() < 1e-6, "energy across the rebind {j} J");
    assert!(e.log().contains("found again"), "{}", e.log());
}

/// NVML numbers its GPUs 0, 1, …; DRM cards continue after them rather than reuse 0, 1.
#[test]
fn nvml_and_drm_gpus_have_distinct_gpu_labels() {
    let root = tree();
    xe_card(&root, "card0", "hwmon2", 5_000_000);
    let scenario = temp_file(
        "scenario.txt",
        "[gpu]\npower = const:200\n[gpu]\npower = const:300\n",
    );
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let env = [("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8 path"))];
    let e = start(&root, &[&lib], &env);
    let s = wait_for(&e, |s| s.find("gpu_info", &[]).len() == 3);
    let mut gpus: Vec<(&str, &str)> = s
        .find("gpu_info", &[])
        .iter()
        .map(|i| {
            (
                i.label("gpu").unwrap_or("?"),
                i.label("uuid").unwrap_or("?"),
            )
        })
        .collect();
    gpus.sort_unstable();
    assert_eq!(gpus.len(), 3, "{gpus:?}");
    assert_eq!(gpus[2], ("2", "PCI-0000:3a:00.0"), "{gpus:?}");
    assert!(gpus[0].0 == "0" && gpus[1].0 == "1", "{gpus:?}");
}
