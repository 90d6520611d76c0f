//! powermetrics output (`powermetrics`): a byte stream of NUL-separated property lists, split
//! as the collector splits it and each frame parsed. Whatever the child writes, a parsed sample
//! has a non-zero interval and at least one finite, non-negative power, never a panic.
#![no_main]

use gpu_carbon_exporter::backend::powermetrics::child::Frames;
use gpu_carbon_exporter::backend::powermetrics::plist::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frames = Frames::default();
    let _ = frames.push(data, |frame| {
        if let Ok(sample) = parse(frame) {
            assert!(!sample.elapsed.is_zero());
            assert!(!sample.power.is_empty());
            for (_, w) in &sample.power {
                assert!(w.0.is_finite() && w.0 >= 0.0, "{w:?}");
            }
        }
    });
    if let Some(rest) = frames.rest() {
        let _ = parse(rest);
    }
});
