//! `--web.config.file` (`http::webconfig::parse`): any text parses or is refused with a line
//! inside the file, never a panic, never unbounded work.
#![no_main]

use std::path::Path;

use gpu_carbon_exporter::http::webconfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = webconfig::parse(text, Path::new("/etc/gce/web.yml")) {
        if let Some(line) = err.line {
            assert!(
                line >= 1 && line <= webconfig::yaml_lines(text).count() + 1,
                "{err}"
            );
        }
        assert!(!err.reason.is_empty());
    }
});
