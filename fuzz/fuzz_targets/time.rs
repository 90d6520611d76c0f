//! RFC 3339 timestamps and UTC offsets (`carbon::time`), found in schedule files and API
//! answers: parsed or refused, never a panic or an overflow.
#![no_main]

use gpu_carbon_exporter::carbon::time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = time::parse_rfc3339(text) {
        assert!(t.is_finite());
    }
    let _ = time::parse_offset(text);
});
