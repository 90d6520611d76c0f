//! Discovery and reading on sysfs trees in the kernel's layouts.

use super::*;
use crate::backend::sysfs::fake::Tree;

fn intel(t: &Tree, card: &str, driver: &str, slot: &str, pci_id: &str) {
    t.file(
        &format!("class/drm/{card}/device/uevent"),
        &format!("DRIVER={driver}\nPCI_ID={pci_id}\nPCI_SLOT_NAME={slot}"),
    );
}

/// Data Center GPU Max under xe: only `energy2_input` labelled `pkg`.
fn xe_pkg_only(t: &Tree, card: &str, hwmon: &str, uj: u64) {
    intel(t, card, "xe", "0000:3a:00.0", "8086:0BD5");
    let h = format!("class/drm/{card}/device/hwmon/{hwmon}");
    t.file(&format!("{h}/name"), "xe");
    t.file(&format!("{h}/energy2_input"), &uj.to_string());
    t.file(&format!("{h}/energy2_label"), "pkg");
    t.file(&format!("{h}/power2_max"), "600000000");
}

#[test]
fn xe_package_only_card_is_read_from_its_package_counter() {
    let t = Tree::new("hwmon-xe");
    xe_pkg_only(&t, "card0", "hwmon2", 5_000_000);
    let mut b = HwmonBackend::discover(t.root(), 0);
    let d = &b.devices()[0];
    assert!(d.caps.energy_counter, "{d:?}");
    assert_eq!(d.channel.as_deref(), Some("pkg"));
    let r = b.read(0).expect("read");
    assert_eq!(r.energy_uj, Some(5_000_000));
    assert_eq!(r.power_limit, Some(Watts(600.0)));
}

/// Integrated GPUs have no hwmon directory: not exported.
#[test]
fn a_card_without_hwmon_is_skipped() {
    let t = Tree::new("hwmon-igpu");
    intel(&t, "card0", "i915", "0000:00:02.0", "8086:A780");
    t.file("class/drm/card0/device/gpu_busy_percent", "3");
    xe_pkg_only(&t, "card1", "hwmon3", 1);
    let b = HwmonBackend::discover(t.root(), 0);
    let uuids: Vec<_> = b.devices().iter().map(|d| d.uuid.as_str()).collect();
    assert_eq!(uuids, ["PCI-0000:3a:00.0"]);
    assert_eq!(b.devices()[0].index, 0, "numbered among exported cards");
}

/// The `gpu` label continues after the GPUs another collector (NVML) numbered.
#[test]
fn indices_start_after_other_collectors_gpus() {
    let t = Tree::new("hwmon-index");
    xe_pkg_only(&t, "card1", "hwmon3", 1);
    let b = HwmonBackend::discover(t.root(), 8);
    assert_eq!(b.devices()[0].index, 8);
}

/// A driver rebind brings the card back as another cardN with another hwmonM: it is found
/// again by PCI slot and read on, instead of staying lost until a restart.
#[test]
fn a_rebound_card_is_found_again_by_pci_slot() {
    let t = Tree::new("hwmon-rebind");
    xe_pkg_only(&t, "card0", "hwmon2", 5_000_000);
    let mut b = HwmonBackend::discover(t.root(), 0);
    assert_eq!(b.read(0).expect("read").energy_uj, Some(5_000_000));
    // Unbound: gone.
    t.rename("class/drm/card0", "unbound");
    assert!(matches!(b.read(0), Err(DeviceError::Lost(_))));
    // Bound again, renumbered.
    t.rename("unbound", "class/drm/card3");
    t.rename(
        "class/drm/card3/device/hwmon/hwmon2",
        "class/drm/card3/device/hwmon/hwmon7",
    );
    t.file(
        "class/drm/card3/device/hwmon/hwmon7/energy2_input",
        "9000000",
    );
    assert_eq!(b.read(0).expect("read again").energy_uj, Some(9_000_000));
}

/// Another card in the slot's place with other sensors is not taken for the lost one.
#[test]
fn a_different_card_is_not_taken_for_the_lost_one() {
    let t = Tree::new("hwmon-other");
    xe_pkg_only(&t, "card0", "hwmon2", 5);
    let mut b = HwmonBackend::discover(t.root(), 0);
    std::fs::remove_dir_all(t.root().join("class/drm/card0")).expect("rm");
    intel(&t, "card1", "xe", "0000:3b:00.0", "8086:0BD5");
    t.file("class/drm/card1/device/hwmon/hwmon5/energy2_input", "1");
    assert!(matches!(b.read(0), Err(DeviceError::Lost(_))));
}
