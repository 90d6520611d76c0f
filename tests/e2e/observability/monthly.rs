//! The monthly report dashboard (`grafana/dashboards/gpu-carbon-monthly.json`): linted like the
//! main one, its recording rules shipped, and every query answered by the real Prometheus of
//! `dashboard_queries_and_rules_work_against_real_prometheus`.

use serde_json::Value;

use super::dashboard::{
    all_panels, all_value, dashboard_queries, is_datasource_ref, panel_problems, substitute,
    variable_queries, walk_datasources,
};
use super::prometheus::Prometheus;
use super::rules::RuleNames;
use super::{JOB, RULES_DIR};
use crate::support::{read_path, repo, yaml_files};

pub const MONTHLY: &str = "grafana/dashboards/gpu-carbon-monthly.json";

fn dashboard() -> Value {
    serde_json::from_str(&read_path(&repo(MONTHLY))).expect("monthly dashboard is valid JSON")
}

/// The recorded series (`level:metric:operations`) an expression reads.
fn recorded_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.matches(':').count() == 2)
        .map(str::to_string)
        .collect()
}

#[test]
fn monthly_dashboard_lints_clean() {
    let dash = dashboard();
    let mut problems = Vec::new();
    if dash["uid"] != "gpu-carbon-monthly" {
        problems.push(format!("uid is {}", dash["uid"]));
    }
    // A calendar month by default (the previous one, the report's).
    if dash["time"]["from"] != "now-1M/M" || dash["time"]["to"] != "now-1M/M" {
        problems.push(format!(
            "time range is {}, want the previous month",
            dash["time"]
        ));
    }
    for name in ["datasource", "job", "instance"] {
        let found = variable_queries(&dash).iter().any(|(n, _, _)| n == name)
            || (name == "datasource" && dash["templating"]["list"][0]["type"] == "datasource");
        if !found {
            problems.push(format!("no `{name}` template variable"));
        }
    }
    let records = RuleNames::from_files(&yaml_files(RULES_DIR)).records;
    let panels = all_panels(&dash);
    assert!(panels.len() >= 5, "only {} panels", panels.len());
    for panel in &panels {
        let name = format!("panel {} {:?}", panel["id"], panel["title"]);
        problems.extend(panel_problems(&name, panel));
        // Tables of instant values, which Grafana exports to CSV as they are shown.
        if panel["type"] != "table" {
            problems.push(format!("{name}: not a table"));
        }
        for t in panel["targets"].as_array().into_iter().flatten() {
            if t["format"] != "table" || t["instant"] != true {
                problems.push(format!("{name} {}: not an instant table query", t["refId"]));
            }
            if !is_datasource_ref(&t["datasource"]) {
                problems.push(format!("{name} {}: datasource", t["refId"]));
            }
            for rule in recorded_names(t["expr"].as_str().unwrap_or("")) {
                if !records.contains(&rule) {
                    problems.push(format!("{name}: {rule} is not a shipped recording rule"));
                }
            }
        }
    }
    walk_datasources(&dash, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "monthly dashboard lint:\n{}",
        problems.join("\n")
    );
}

/// Every panel query and variable of the monthly report against `prom`, for all hosts and for
/// the exporter's own: each must return data.
pub fn query_failures(prom: &Prometheus, instance: &str) -> Vec<String> {
    let dash = dashboard();
    let mut failures = Vec::new();
    for selected in [all_value(&dash, "instance"), instance.to_string()] {
        let vars = [
            ("$__range", "5m"),
            ("$job", JOB),
            ("$instance", selected.as_str()),
        ];
        for (panel, expr) in dashboard_queries(&dash) {
            let expr = substitute(&expr, &vars);
            if let Err(why) = prom.try_query(&expr) {
                failures.push(format!("[monthly, {selected}] {panel}: {why}\n    {expr}"));
            }
        }
        for (name, selector, label) in variable_queries(&dash) {
            let selector = substitute(&selector, &vars);
            let found = prom.try_query(&selector).unwrap_or_default();
            if !found.iter().any(|s| s["metric"][&label].is_string()) {
                failures.push(format!(
                    "[monthly] variable ${name}: no {label} in {selector}"
                ));
            }
        }
    }
    failures
}

#[test]
fn recorded_names_are_found_in_expressions() {
    assert_eq!(
        recorded_names("sum by (x) (sum_over_time(a:b:c{job=~\"$job\"}[$__range])) / 60"),
        ["a:b:c"]
    );
}
