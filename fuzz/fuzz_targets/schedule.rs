//! Carbon intensity schedule files, CSV and JSON (`carbon::providers::schedule::{csv, json}::parse`):
//! refused with a line inside the file, never a panic.
#![no_main]

use gpu_carbon_exporter::carbon::providers::schedule::{csv, json, parse_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count() + 1;
    for result in [csv::parse(text), json::parse(text), parse_text(text)] {
        if let Err((line, reason)) = result {
            assert!(line <= lines, "line {line} of {lines}: {reason}");
            assert!(!reason.is_empty());
        }
    }
});
