//! What `check` found, as sections of items, and how it is printed.

use std::fmt::Write;

/// How one finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Does not work as the exporter needs: `check` exits 1 and names it.
    Problem,
    /// Neither: unsupported by the device, not configured, or not checked.
    Note,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Problem => "PROBLEM",
            Status::Note => "-",
        }
    }
}

/// One finding: what was checked, how it stands, and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// What was checked ("power", "energy counter", the state file's path, …).
    pub what: String,
    /// How it stands.
    pub status: Status,
    /// The figures or the reason.
    pub detail: String,
}

/// The findings about one thing (a device, the intensity provider, the state file, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// What the section is about, e.g. "GPU 0 NVIDIA H100 80GB HBM3 GPU-… (nvml)".
    pub title: String,
    /// Its findings, in order.
    pub items: Vec<Item>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            items: Vec::new(),
        }
    }

    /// Adds a finding.
    pub fn add(&mut self, what: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.items.push(Item {
            what: what.into(),
            status,
            detail: detail.into(),
        });
    }

    /// Adds a finding, returning the section (for one-item sections).
    pub fn with(
        mut self,
        what: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) -> Section {
        self.add(what, status, detail);
        self
    }
}

/// Everything `check` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The sections, in the order they were checked.
    pub sections: Vec<Section>,
}

impl Report {
    /// Every problem, as "section: what: detail".
    pub fn problems(&self) -> Vec<String> {
        self.sections
            .iter()
            .flat_map(|s| {
                s.items
                    .iter()
                    .filter(|i| i.status == Status::Problem)
                    .map(move |i| format!("{}: {}: {}", s.title, i.what, i.detail))
            })
            .collect()
    }

    /// The report as printed: each section with its findings, then the verdict and every
    /// problem again.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            let _ = writeln!(out, "{}", s.title);
            for i in &s.items {
                let _ = writeln!(out, "  {:<8} {:<16} {}", i.status.tag(), i.what, i.detail);
            }
        }
        let problems = self.problems();
        if problems.is_empty() {
            out.push_str("\nResult: all well.\n");
        } else {
            let n = problems.len();
            let _ = writeln!(
                out,
                "\nResult: {n} problem{}:",
                if n == 1 { "" } else { "s" }
            );
            for p in problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_again_at_the_end() {
        let mut gpu = Section::new("GPU 0");
        gpu.add("power", Status::Ok, "10 of 10 readings");
        gpu.add("energy", Status::Problem, "counter +50.0 %");
        let state = Section::new("state file").with("--state.file", Status::Note, "not set");
        let report = Report {
            sections: vec![gpu, state],
        };
        assert_eq!(report.problems(), vec!["GPU 0: energy: counter +50.0 %"]);
        let text = report.render();
        assert!(
            text.contains("  ok       power            10 of 10 readings\n"),
            "{text}"
        );
        assert!(
            text.ends_with("Result: 1 problem:\n  - GPU 0: energy: counter +50.0 %\n"),
            "{text}"
        );
        let fine = Report {
            sections: vec![Section::new("x").with("y", Status::Ok, "z")],
        };
        assert!(fine.render().ends_with("Result: all well.\n"));
    }
}
