//! Prometheus durations (`duration::parse`, used by `--sample.interval` and the web config's
//! rate limit): parses or is refused, never a panic or an overflow; a parse of the canonical
//! millisecond form gives the same value back.
#![no_main]

use gpu_carbon_exporter::duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration::parse(text) {
        let ms = d.as_millis();
        if ms > 0 {
            assert_eq!(duration::parse(&format!("{ms}ms")), Ok(d));
        }
    }
});
