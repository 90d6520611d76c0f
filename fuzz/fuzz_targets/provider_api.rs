//! Answers of the live carbon intensity APIs (Electricity Maps, WattTime, UK National Grid):
//! network input, so any body is either a finite intensity or an error, never a panic. The
//! first byte picks the parser; the rest is the body.
#![no_main]

use gpu_carbon_exporter::carbon::providers::{electricitymaps, ukgrid, watttime};
use gpu_carbon_exporter::carbon::Scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return;
    };
    let value = match which % 5 {
        0 => electricitymaps::parse_latest(body, "DE", Scope::Lifecycle),
        1 => ukgrid::parse_national(body),
        2 => ukgrid::parse_regional(body),
        3 => watttime::parse_forecast(
            body,
            "CAISO_NORTH",
            watttime::SignalType::Moer,
            1_714_565_460.0,
        ),
        _ => {
            let _ = watttime::parse_login(body);
            return;
        }
    };
    if let Ok(v) = value {
        assert!(v.grams_per_kwh.is_finite(), "{}", v.grams_per_kwh);
    }
});
