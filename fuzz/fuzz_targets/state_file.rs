//! The persistent ledger (`state::StateFile::parse`): a state file damaged by a crash, a full
//! disk or a hand edit is refused with a reason (and then set aside by the caller), never a
//! panic; what parses has only finite, non-negative totals.
#![no_main]

use gpu_carbon_exporter::state::{ParseError, StateFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match StateFile::parse(text) {
        Ok(file) => {
            let json = format!("{file:?}");
            assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
        }
        Err(ParseError::Syntax { line, .. }) => {
            assert!(line <= text.lines().count() + 1, "line {line}");
        }
        Err(_) => {}
    }
});
