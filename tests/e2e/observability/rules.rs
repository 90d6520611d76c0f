//! The shipped rule files and their promtool unit tests, read line by line: we own their
//! layout, and this keeps a YAML parser out of the dev-dependencies.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::read_path as read;

/// Alert and recording rule names of the shipped rule files.
pub struct RuleNames {
    pub alerts: Vec<String>,
    pub records: Vec<String>,
    /// Alerts lacking a severity, summary, description or runbook.
    pub problems: Vec<String>,
    /// Each alert's `runbook_url`.
    pub runbooks: Vec<(String, String)>,
}

impl RuleNames {
    pub fn from_files(files: &[PathBuf]) -> RuleNames {
        let mut names = RuleNames {
            alerts: Vec::new(),
            records: Vec::new(),
            problems: Vec::new(),
            runbooks: Vec::new(),
        };
        for file in files {
            let text = read(file);
            let mut current: Option<(String, String)> = None;
            for line in text.lines().map(str::trim) {
                let next = ["- alert:", "- record:", "- name:"]
                    .into_iter()
                    .find_map(|key| Some((key, line.strip_prefix(key)?.trim().to_string())));
                let Some((key, name)) = next else {
                    if let Some((_, body)) = current.as_mut() {
                        body.push_str(line);
                        body.push('\n');
                    }
                    continue;
                };
                names.check_alert(current.take());
                match key {
                    "- alert:" => {
                        names.alerts.push(name.clone());
                        current = Some((name, String::new()));
                    }
                    "- record:" => names.records.push(name),
                    _ => {}
                }
            }
            names.check_alert(current);
        }
        names
    }

    fn check_alert(&mut self, alert: Option<(String, String)>) {
        let Some((name, body)) = alert else { return };
        let severities = ["severity: info", "severity: warning", "severity: critical"];
        if !body.lines().any(|l| severities.contains(&l)) {
            self.problems.push(format!(
                "alert {name}: no severity label (info|warning|critical)"
            ));
        }
        for key in ["summary:", "description:", "runbook_url:"] {
            if !body.lines().any(|l| l.starts_with(key)) {
                self.problems
                    .push(format!("alert {name}: no {key} annotation"));
            }
        }
        if let Some(url) = body.lines().find_map(|l| l.strip_prefix("runbook_url:")) {
            self.runbooks.push((name, url.trim().to_string()));
        }
    }
}

/// What the promtool unit tests exercise.
#[derive(Default)]
pub struct Coverage {
    /// Alerts with a test case that expects them to fire.
    pub firing: Vec<String>,
    /// Alerts with a test case that expects no alert (`exp_alerts: []`).
    pub silent: Vec<String>,
    /// Expressions of `promql_expr_test` cases.
    pub exprs: Vec<String>,
}

impl Coverage {
    pub fn from_files(files: &[PathBuf]) -> Coverage {
        let mut cov = Coverage::default();
        for file in files {
            let text = read(file);
            let mut alert: Option<String> = None;
            for line in text.lines().map(str::trim) {
                if let Some(name) = line.strip_prefix("- alertname:") {
                    alert = Some(name.trim().to_string());
                } else if let Some(rest) = line.strip_prefix("exp_alerts:") {
                    let name = alert.take().expect("exp_alerts after an alertname");
                    if rest.trim() == "[]" {
                        cov.silent.push(name);
                    } else {
                        cov.firing.push(name);
                    }
                } else if let Some(expr) = line.strip_prefix("- expr:") {
                    cov.exprs.push(expr.trim().to_string());
                }
            }
        }
        cov
    }
}

/// Whether `expr` mentions the metric `name` as a whole name, not as part of a longer one.
pub fn contains_name(expr: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices(name).any(|(i, _)| {
        let before = expr[..i].chars().next_back();
        let after = expr[i + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// Loaded rules that are unhealthy, and shipped rules that Prometheus did not load.
pub fn rule_failures(loaded: &[Value], shipped: &RuleNames) -> Vec<String> {
    let mut failures: Vec<String> = loaded
        .iter()
        .filter(|r| r["health"] != "ok" || !r["lastError"].as_str().unwrap_or("").is_empty())
        .map(|r| {
            format!(
                "rule {} (group {}): health {}, lastError {}",
                r["name"], r["group"], r["health"], r["lastError"]
            )
        })
        .collect();
    for name in shipped.alerts.iter().chain(&shipped.records) {
        if !loaded.iter().any(|r| r["name"] == name.as_str()) {
            failures.push(format!("rule {name} was not loaded"));
        }
    }
    failures
}
