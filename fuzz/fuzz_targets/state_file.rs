//! The persistent ledger (`state::StateFile::parse` and the journal replay): a state file or
//! journal damaged by a crash, a full disk or a hand edit is refused (or its bad lines skipped)
//! with a reason, never a panic; what parses or replays has only finite, non-negative totals.
#![no_main]

use gpu_carbon_exporter::state::{journal, ParseError, StateFile};
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
    let mut state = StateFile::empty();
    let replayed = journal::replay(&mut state, text);
    assert!(replayed.applied + replayed.skipped <= text.lines().count() + 1);
    assert!(state.to_json().is_ok(), "a replay only applies valid records");
});
