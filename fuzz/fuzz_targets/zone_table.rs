//! The carbon zone table CSV (`carbon::providers::zones::ZoneTable::parse`): any text either parses into
//! a table with a WORLD row or is refused with a line inside the text.
#![no_main]

use gpu_carbon_exporter::carbon::providers::zones::ZoneTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ZoneTable::parse(text) {
        Ok(table) => {
            assert!(table.get("WORLD").is_some());
            for code in table.codes() {
                assert!(table.get(code).is_some(), "{code} listed but not found");
            }
        }
        Err(err) => assert!(err.line() <= text.lines().count().max(1), "{err}"),
    }
});
