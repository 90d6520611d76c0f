//! Text read from sysfs (`backend::sysfs`): `uevent` files and numeric attributes from the
//! kernel (or from a container's bind-mounted /sys) never panic the exporter.
#![no_main]

use gpu_carbon_exporter::backend::sysfs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (key, value) in sysfs::parse_uevent(text) {
        assert!(!key.contains('\n') && !value.contains('\n'));
    }
    if let Some(n) = sysfs::parse_u64(text.trim()) {
        assert_eq!(n.to_string().parse::<u64>(), Ok(n));
    }
});
