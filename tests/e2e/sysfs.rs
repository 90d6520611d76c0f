//! The hwmon (AMD/Intel GPU) and rapl (CPU package/DRAM) collectors on the fixture sysfs tree
//! in `tests/fixtures/sysfs`, copied to a temp dir so the test can move counters the way the
//! kernel would while the real binary runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Exporter, Scrape};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sysfs");
const J_PER_KWH: f64 = 3.6e6;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A private copy of the fixture.
fn sysfs_copy() -> PathBuf {
    let marker = crate::support::temp_file("marker", "");
    let root = marker.parent().expect("temp dir").join("sys");
    copy_tree(Path::new(FIXTURE), &root);
    root
}

/// Replaces a sysfs value atomically, so the exporter never reads a half-written number.
fn set(root: &Path, file: &str, value: u64) {
    let path = root.join(file);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value}\n")).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

const INTEL_ENERGY: &str = "class/drm/card1/device/hwmon/hwmon4/energy1_input";
const PACKAGE: &str = "class/powercap/intel-rapl:0/energy_uj";
const DRAM: &str = "class/powercap/intel-rapl:0/intel-rapl:0:1/energy_uj";

fn start(root: &Path) -> Exporter {
    let e = Exporter::start(
        &[
            "--no-collector.nvml",
            "--collector.hwmon",
            "--collector.rapl",
            &format!("--path.sysfs={}", root.display()),
            "--sample.interval=100ms",
            "--carbon.intensity=300",
        ],
        &[],
    );
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

fn timestamp(s: &Scrape) -> f64 {
    s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
}

#[test]
fn amd_intel_and_rapl_from_sysfs() {
    let root = sysfs_copy();
    let e = start(&root);
    let s0 = wait_for(&e, |s| {
        s.find("gpu_power_watts", &[("uuid", "PCI-0000:04:00.0")])
            .len()
            == 1
    });

    // Identity: AMD by unique_id and product name; Intel by PCI slot and ID; nothing else.
    let amd = [("uuid", "AMD-6a2c8b1e9f3d4a57")];
    let intel = [("uuid", "PCI-0000:04:00.0")];
    let info = s0.find("gpu_info", &[]);
    assert_eq!(info.len(), 2, "only the AMD and Intel cards: {info:?}");
    assert_eq!(
        s0.find(
            "gpu_info",
            &[
                ("name", "AMD Instinct MI210"),
                ("gpu", "0"),
                ("energy_source", "integrated")
            ]
        )
        .len(),
        1
    );
    assert_eq!(
        s0.find(
            "gpu_info",
            &[
                ("name", "Intel GPU [8086:56A0]"),
                ("gpu", "1"),
                ("energy_source", "counter")
            ]
        )
        .len(),
        1
    );
    assert_eq!(s0.value("gpu_power_watts", &amd), 245.0);
    assert_eq!(s0.value("gpu_power_limit_watts", &amd), 300.0);
    assert_eq!(s0.value("gpu_utilization_ratio", &amd), 0.87);
    assert_eq!(s0.value("gpu_power_limit_watts", &intel), 225.0);
    assert!(
        s0.find("gpu_utilization_ratio", &intel).is_empty(),
        "i915 has no busy file"
    );

    // Host domains: package and DRAM only (core is inside the package, psys contains it).
    let domains: Vec<&str> = s0
        .find("gpu_host_energy_kwh_total", &[])
        .iter()
        .filter_map(|s| s.label("domain"))
        .collect();
    assert_eq!(domains, ["dram-0", "package-0"]);
    for c in ["hwmon", "rapl"] {
        assert_eq!(
            s0.value("gpu_carbon_exporter_collector_up", &[("collector", c)]),
            1.0
        );
    }

    // The kernel moves the counters (by amounts a 100 ms tick allows): Intel +20 J; the
    // package wraps (10 J to the top + 30 J);
    // DRAM +5 J.
    let (intel0, pkg0, dram0) = (
        s0.value("gpu_energy_kwh_total", &intel),
        s0.value("gpu_host_energy_kwh_total", &[("domain", "package-0")]),
        s0.value("gpu_host_energy_kwh_total", &[("domain", "dram-0")]),
    );
    set(&root, INTEL_ENERGY, 123_456_789_000 + 20_000_000);
    set(&root, PACKAGE, 30_000_000);
    set(&root, DRAM, 5_000_000_000 + 5_000_000);
    let s1 = wait_for(&e, |s| {
        s.value("gpu_host_energy_kwh_total", &[("domain", "package-0")]) > pkg0
            && s.value("gpu_energy_kwh_total", &intel) > intel0
            && s.value("gpu_host_energy_kwh_total", &[("domain", "dram-0")]) > dram0
    });
    let joules =
        |name: &str, sel: &[(&str, &str)], before: f64| (s1.value(name, sel) - before) * J_PER_KWH;
    let close = |got: f64, want: f64| (got - want).abs() < 1e-6 * want;
    let intel_j = joules("gpu_energy_kwh_total", &intel, intel0);
    let pkg_j = joules(
        "gpu_host_energy_kwh_total",
        &[("domain", "package-0")],
        pkg0,
    );
    let dram_j = joules("gpu_host_energy_kwh_total", &[("domain", "dram-0")], dram0);
    assert!(close(intel_j, 20.0), "Intel counter: {intel_j} J");
    assert!(close(pkg_j, 40.0), "package across the wrap: {pkg_j} J");
    assert!(close(dram_j, 5.0), "DRAM: {dram_j} J");
    let co2 = s1.value("gpu_host_co2e_grams_total", &[("domain", "package-0")]);
    let kwh = s1.value("gpu_host_energy_kwh_total", &[("domain", "package-0")]);
    assert!(
        (co2 - kwh * 300.0).abs() < 1e-9,
        "host CO2e = kWh × intensity"
    );
    assert_eq!(
        s1.value(
            "gpu_carbon_exporter_host_sample_errors_total",
            &[("domain", "package-0"), ("kind", "implausible_energy")]
        ),
        0.0,
        "a wrap is not an error"
    );

    // AMD has no counter: integrated from a constant 245 W.
    let s2 = wait_for(&e, |s| timestamp(s) > timestamp(&s1) + 1.0);
    let amd_j = (s2.value("gpu_energy_kwh_total", &amd) - s1.value("gpu_energy_kwh_total", &amd))
        * J_PER_KWH;
    let want = 245.0 * (timestamp(&s2) - timestamp(&s1));
    assert!(
        (amd_j - want).abs() < 0.01 * want,
        "AMD integrated {amd_j} J vs {want} J"
    );
    crate::support::assert_promtool_clean(&s2.text);
}

/// A counter that can't be read as a file (as root, permissions can't be used for this).
fn make_unreadable(root: &Path, file: &str) {
    let counter = root.join(file);
    std::fs::remove_file(&counter).expect("rm");
    std::fs::create_dir(&counter).expect("mkdir");
}

/// Only the DRAM sub-zone is root-only (a udev rule that covers `intel-rapl:*` only): the
/// package is still exported, the DRAM zone is named in the log and in a metric.
#[test]
fn an_unreadable_rapl_zone_leaves_the_others_exported() {
    let root = sysfs_copy();
    make_unreadable(&root, DRAM);
    let e = start(&root);
    let s = e.scrape();
    assert_eq!(
        s.value("gpu_carbon_exporter_collector_up", &[("collector", "rapl")]),
        1.0
    );
    let domains: Vec<&str> = s
        .find("gpu_host_energy_kwh_total", &[])
        .iter()
        .filter_map(|s| s.label("domain"))
        .collect();
    assert_eq!(domains, ["package-0"]);
    assert_eq!(
        s.value(
            "gpu_carbon_exporter_host_domain_unreadable",
            &[("domain", "dram-0")]
        ),
        1.0
    );
    let log = e.log();
    assert!(
        log.contains("RAPL zone unreadable") && log.contains("intel-rapl:0:1"),
        "{log}"
    );
    crate::support::assert_promtool_clean(&s.text);
}

#[test]
fn unreadable_rapl_degrades_to_collector_down() {
    let root = sysfs_copy();
    make_unreadable(&root, PACKAGE);
    make_unreadable(&root, DRAM);
    let e = start(&root);
    let s = e.scrape();
    assert_eq!(
        s.value("gpu_carbon_exporter_collector_up", &[("collector", "rapl")]),
        0.0
    );
    assert_eq!(
        s.value(
            "gpu_carbon_exporter_collector_up",
            &[("collector", "hwmon")]
        ),
        1.0
    );
    // No measured host domain; the host estimate (on this machine's /proc) takes over.
    assert!(s
        .find("gpu_host_energy_kwh_total", &[("energy_source", "counter")])
        .is_empty());
    assert_eq!(
        s.value(
            "gpu_carbon_exporter_collector_up",
            &[("collector", "host_estimate")]
        ),
        1.0
    );
    assert_eq!(s.find("gpu_info", &[]).len(), 2, "GPUs still served");
    assert!(e.log().contains("RAPL collector disabled"), "{}", e.log());
}

#[test]
fn an_unreadable_gpu_file_is_counted_not_fatal() {
    let root = sysfs_copy();
    let e = start(&root);
    let intel = [("uuid", "PCI-0000:04:00.0")];
    wait_for(&e, |s| s.find("gpu_up", &intel).len() == 1);
    let file = root.join(INTEL_ENERGY);
    std::fs::remove_file(&file).expect("rm");
    let s = wait_for(&e, |s| {
        s.value(
            "gpu_carbon_exporter_sample_errors_total",
            &[("uuid", "PCI-0000:04:00.0"), ("kind", "read_error")],
        ) > 0.0
    });
    assert_eq!(s.value("gpu_up", &intel), 0.0);
    assert_eq!(s.value("gpu_up", &[("uuid", "AMD-6a2c8b1e9f3d4a57")]), 1.0);
    // The GPU's whole device directory disappearing means it is lost.
    std::fs::remove_dir_all(root.join("class/drm/card0/device")).expect("rm card0");
    let s = wait_for(&e, |s| {
        s.value(
            "gpu_carbon_exporter_sample_errors_total",
            &[("uuid", "AMD-6a2c8b1e9f3d4a57"), ("kind", "device_lost")],
        ) > 0.0
    });
    assert_eq!(s.value("gpu_up", &[("uuid", "AMD-6a2c8b1e9f3d4a57")]), 0.0);
}

/// A single wild counter value is rejected and counted, and does not move the counter's base:
/// when the counter shows its true value again, the energy since the last good reading is
/// counted in full and no phantom hardware reset appears.
#[test]
fn a_counter_spike_is_rejected_without_a_phantom_reset() {
    let root = sysfs_copy();
    let e = start(&root);
    let intel = [("uuid", "PCI-0000:04:00.0")];
    let implausible = |s: &Scrape| {
        s.value(
            "gpu_carbon_exporter_sample_errors_total",
            &[("uuid", "PCI-0000:04:00.0"), ("kind", "implausible_energy")],
        )
    };
    let s0 = wait_for(&e, |s| {
        s.find("gpu_energy_hardware_resets_total", &intel).len() == 1
    });
    let before = s0.value("gpu_energy_kwh_total", &intel);
    // 1 MJ in one tick from a 225 W card, held for a few ticks (a stuck value confirms nothing).
    set(&root, INTEL_ENERGY, 123_456_789_000 + 1_000_000_000_000);
    let s1 = wait_for(&e, |s| implausible(s) >= 3.0);
    assert!(implausible(&s1) >= 3.0, "spike not rejected:\n{}", e.log());
    assert_eq!(s1.value("gpu_energy_kwh_total", &intel), before);
    // The true value: 20 J more than before the spike.
    set(&root, INTEL_ENERGY, 123_456_789_000 + 20_000_000);
    let s2 = wait_for(&e, |s| s.value("gpu_energy_kwh_total", &intel) > before);
    let joules = (s2.value("gpu_energy_kwh_total", &intel) - before) * J_PER_KWH;
    assert!(
        (joules - 20.0).abs() < 1e-6,
        "energy after the spike: {joules} J"
    );
    assert_eq!(
        s2.value("gpu_energy_hardware_resets_total", &intel),
        0.0,
        "no phantom reset"
    );
}

/// hwmon on a machine without AMD or Intel GPUs is not a failure: the collector is up (nothing
/// broke), a warning says what it found, and RAPL is served as usual.
#[test]
fn hwmon_without_gpus_is_up_and_says_so() {
    let root = sysfs_copy();
    std::fs::remove_dir_all(root.join("class/drm")).expect("remove the cards");
    let e = start(&root);
    let s = e.scrape();
    let up = |c| s.value("gpu_carbon_exporter_collector_up", &[("collector", c)]);
    assert_eq!((up("hwmon"), up("rapl")), (1.0, 1.0));
    assert!(s.find("gpu_info", &[]).is_empty());
    assert!(!s
        .find("gpu_host_energy_kwh_total", &[("energy_source", "counter")])
        .is_empty());
    assert!(
        e.log()
            .contains("hwmon collector found no AMD or Intel GPU"),
        "{}",
        e.log()
    );
}
