//! `--web.config.file` (`webconfig::file::parse`): any text parses or is refused with a line
//! inside the file, never a panic, never unbounded work.
#![no_main]

use std::path::Path;

use gpu_carbon_exporter::webconfig::file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = file::parse(text, Path::new("/etc/gce/web.yml")) {
        if let Some(line) = err.line {
            assert!(
                line >= 1 && line <= file::yaml_lines(text).count() + 1,
                "{err}"
            );
        }
        assert!(!err.reason.is_empty());
    }
});
