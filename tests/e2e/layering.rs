//! Imports point down the layers. Each top-level module of `src/` sits on a floor; a module may
//! name (`crate::x`, `use crate::{x, …}`) only modules on lower floors, so an arrow that runs
//! back up (a lower layer importing a higher one) fails here, and a new module must be given a
//! floor before it builds a test run. Read from the sources as text, tests excluded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The floors, lowest first. A module may import any module on a lower floor, none on its own
/// floor or above.
const FLOORS: &[&[&str]] = &[
    // Shared pieces with no knowledge of the domain.
    &["units", "clock", "duration", "shutdown", "reply"],
    // Raw flags, as typed.
    &["cli"],
    // Hardware, and logging set up from the raw flags.
    &["backend", "logging"],
    // The pure accounting core, and the carbon intensity providers.
    &["energy", "carbon"],
    // Who used the energy.
    &["attribution"],
    // The immutable result of a tick.
    &["snapshot"],
    // The ledger on disk.
    &["state"],
    // Sampling; turning a snapshot into metric families.
    &["sampler", "render"],
    // Encoding for a scrape; the exporter-toolkit web configuration.
    &["exposition", "webconfig"],
    // The HTTP server.
    &["http"],
    // Validated configuration, built from the raw flags into every layer's settings.
    &["config"],
    // Start-up steps, wiring everything.
    &["startup"],
    // The self-check (`check`), which opens the sources as start-up does.
    &["check"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// Every top-level module a file's code names, outside its `#[cfg(test)]` part and comments.
fn imports(text: &str) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

#[test]
fn imports_only_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    // Every module declared in lib.rs has a floor.
    for line in lib.lines() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
        else {
            continue;
        };
        let name = name.trim_end_matches(';');
        assert!(
            floor_of(name).is_some(),
            "module `{name}` has no floor in tests/e2e/layering.rs: give it one"
        );
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(own) = floor_of(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for target in imports(&text) {
            if target == module {
                continue;
            }
            let Some(theirs) = floor_of(&target) else {
                // Items of lib.rs itself (`crate::StartError`) belong to the top.
                if module != "startup" {
                    upward
                        .entry(file.display().to_string())
                        .or_default()
                        .push(format!("crate::{target} (lib.rs)"));
                }
                continue;
            };
            if theirs >= own {
                upward
                    .entry(file.display().to_string())
                    .or_default()
                    .push(format!("{target} (floor {theirs}, {module} is on {own})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not point down the layers:\n{upward:#?}"
    );
}

#[test]
fn the_import_reader_sees_paths_and_groups() {
    let text = "use crate::units::Watts;\nuse crate::{energy, snapshot::Snapshot};\n\
                // crate::config in a comment\nfn f() { crate::clock::now(); }\n\
                #[cfg(test)]\nmod tests { use crate::http; }\n";
    assert_eq!(imports(text), ["units", "energy", "snapshot", "clock"]);
}
