//! Dashboard and Prometheus rules, checked with promtool and a real Prometheus.
//!
//! - `promtool` checks the shipped config and rules and runs their unit tests; a line-based scan
//!   makes sure those unit tests cover every alert (firing and not) and every recording rule.
//! - The dashboard JSON is linted: unique panel ids, a unit and the `${datasource}` variable on
//!   every panel, no hard-coded datasource UIDs, the template variables wired into every query.
//! - End to end: the exporter (`--demo`) and a real Prometheus on 127.0.0.1 with the shipped
//!   scrape config and rules; every panel query must return data and every rule evaluate cleanly.
//!
//! Without `promtool`/`prometheus` (Debian package `prometheus`) the tests that need them skip,
//! except under `CI`, where they fail.

mod dashboard;
mod process;
mod prometheus;
mod rules;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, read_path, repo, tool, yaml_files};
use dashboard::{
    all_panels, all_value, dashboard_queries, panel_problems, substitute,
    template_variable_problems, variable_queries, walk_datasources,
};
use process::run_ok;
use prometheus::Prometheus;
use rules::{contains_name, rule_failures, Coverage, RuleNames};

const DASHBOARD: &str = "grafana/dashboards/gpu-carbon.json";
const DASHBOARD_UID: &str = "gpu-carbon";
const DATASOURCE_REF: &str = "${datasource}";
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RULES_DIR: &str = "deploy/prometheus/rules";
const RULE_TESTS_DIR: &str = "deploy/prometheus/tests";
const DOCS: &str = "README.md";
const JOB: &str = "gpu-carbon-exporter";
/// Alerts about the exporter itself, which a healthy `--demo` exporter must not trip.
const HEALTH_ALERTS: [&str; 4] = [
    "GpuCarbonExporterDown",
    "GpuUnreadable",
    "GpuSampleErrorsRising",
    "GpuCarbonExporterSnapshotStale",
];
/// Every wait in these tests ends after this long.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn promtool_accepts_config_and_rules_and_their_unit_tests_pass() {
    let Some(promtool) = tool("promtool", "apt-get install prometheus") else {
        return;
    };
    let rules = yaml_files(RULES_DIR);
    let tests = yaml_files(RULE_TESTS_DIR);
    assert!(!rules.is_empty(), "no rule files in {RULES_DIR}");
    assert!(!tests.is_empty(), "no rule unit tests in {RULE_TESTS_DIR}");

    run_ok(&promtool, &["check", "config"], &[repo(PROMETHEUS_CONFIG)]);
    run_ok(&promtool, &["check", "rules"], &rules);
    run_ok(&promtool, &["test", "rules"], &tests);
}

#[test]
fn rule_unit_tests_cover_every_alert_and_recording_rule() {
    let rules = RuleNames::from_files(&yaml_files(RULES_DIR));
    assert!(!rules.alerts.is_empty() && !rules.records.is_empty());
    let covered = Coverage::from_files(&yaml_files(RULE_TESTS_DIR));
    let docs = read_path(&repo(DOCS));

    let mut missing = Vec::new();
    for alert in &rules.alerts {
        if !covered.firing.contains(alert) {
            missing.push(format!("alert {alert}: no unit test where it fires"));
        }
        if !covered.silent.contains(alert) {
            missing.push(format!(
                "alert {alert}: no unit test where it does not fire"
            ));
        }
        if !docs.contains(alert.as_str()) {
            missing.push(format!("alert {alert}: not documented in {DOCS}"));
        }
    }
    for record in &rules.records {
        if !covered.exprs.iter().any(|e| contains_name(e, record)) {
            missing.push(format!("recording rule {record}: no promql_expr_test"));
        }
    }
    missing.extend(rules.problems);
    assert!(
        missing.is_empty(),
        "rules lack tests:\n{}",
        missing.join("\n")
    );
}

#[test]
fn dashboard_json_lints_clean() {
    let text = read_path(&repo(DASHBOARD));
    let dash: Value = serde_json::from_str(&text).expect("dashboard is valid JSON");
    let mut problems = Vec::new();

    if dash["uid"] != DASHBOARD_UID {
        problems.push(format!("uid is {}, want {DASHBOARD_UID:?}", dash["uid"]));
    }
    if text.contains("${DS_") || dash.get("__inputs").is_some() {
        problems.push("uses ${DS_…} import inputs, which break provisioning".into());
    }
    problems.extend(template_variable_problems(&dash));

    let panels = all_panels(&dash);
    assert!(panels.len() > 10, "only {} panels", panels.len());
    let mut ids = HashSet::new();
    for panel in &panels {
        let name = format!("panel {} {:?}", panel["id"], panel["title"]);
        match panel["id"].as_u64() {
            Some(id) if !ids.insert(id) => problems.push(format!("{name}: duplicate id")),
            Some(_) => {}
            None => problems.push(format!("{name}: no numeric id")),
        }
        if panel["type"] == "row" {
            if panel
                .get("targets")
                .is_some_and(|t| t != &Value::Array(vec![]))
            {
                problems.push(format!("{name}: a row with queries"));
            }
            continue;
        }
        problems.extend(panel_problems(&name, panel));
    }
    walk_datasources(&dash, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "dashboard lint:\n{}",
        problems.join("\n")
    );
}

#[test]
fn dashboard_queries_and_rules_work_against_real_prometheus() {
    let Some(prometheus_bin) = tool("prometheus", "apt-get install prometheus") else {
        return;
    };
    // RAPL from the sysfs fixture gives the host panels data too.
    let sysfs = format!(
        "--path.sysfs={}/tests/fixtures/sysfs",
        env!("CARGO_MANIFEST_DIR")
    );
    let exporter = support::Exporter::start(
        &[
            "--demo",
            "--sample.interval=200ms",
            "--collector.rapl",
            &sysfs,
        ],
        &[],
    );
    exporter.wait_ready();
    let prom = Prometheus::start(&prometheus_bin, exporter.addr);

    // At least a few scrapes, so that rate() and increase() have two points.
    prom.wait_for("data from the exporter", || {
        let q = format!("min(count_over_time(gpu_energy_kwh_total{{job=\"{JOB}\"}}[1m])) >= 4");
        !prom.query(&q).is_empty()
    });

    // Prometheus negotiated OpenMetrics: versions before created-timestamp handling store
    // each counter's `_created` sample as a series of its own (the README says so).
    let created = prom.query(&format!("gpu_energy_kwh_created{{job=\"{JOB}\"}}"));
    eprintln!(
        "Prometheus stored {} gpu_energy_kwh_created series",
        created.len()
    );
    assert!(!created.is_empty(), "scraped as OpenMetrics");

    let rules = RuleNames::from_files(&yaml_files(RULES_DIR));
    prom.wait_for("every rule evaluated once", || {
        prom.rules().iter().all(|r| r["health"] != "unknown")
            && rules.records.iter().all(|r| !prom.query(r).is_empty())
    });
    let mut failures = rule_failures(&prom.rules(), &rules);

    // A healthy exporter must not trip the health alerts, not even as pending.
    for rule in prom.rules() {
        let health_alert = HEALTH_ALERTS.iter().any(|a| rule["name"] == *a);
        if health_alert && rule["state"] != "inactive" {
            failures.push(format!(
                "{} is {} for a healthy exporter",
                rule["name"], rule["state"]
            ));
        }
    }

    let dash: Value = serde_json::from_str(&read_path(&repo(DASHBOARD))).expect("dashboard JSON");
    let all = |name: &str| all_value(&dash, name);
    let instance = exporter.addr.to_string();
    let selections = [
        ("all hosts and GPUs", all("instance"), all("gpu")),
        ("one host, idle GPU 3", instance, "3".to_string()),
    ];
    for (what, instance, gpu) in &selections {
        let vars = [
            ("$__rate_interval", "1m"),
            ("$__interval", "1m"),
            ("$__range", "5m"),
            ("$job", JOB),
            ("$instance", instance),
            ("$gpu", gpu),
        ];
        for (panel, expr) in dashboard_queries(&dash) {
            let expr = substitute(&expr, &vars);
            if let Err(why) = prom.try_query(&expr) {
                failures.push(format!("[{what}] {panel}: {why}\n    {expr}"));
            }
        }
        for (name, selector, label) in variable_queries(&dash) {
            let selector = substitute(&selector, &vars);
            let found = prom.try_query(&selector).unwrap_or_default();
            if !found.iter().any(|s| s["metric"][&label].is_string()) {
                failures.push(format!(
                    "[{what}] variable ${name}: no {label} in {selector}"
                ));
            }
        }
    }
    for recipe in doc_recipes() {
        if let Err(why) = prom.try_query(&recipe) {
            failures.push(format!("{DOCS} recipe: {why}\n    {recipe}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures against Prometheus:\n{}\n--- prometheus log ---\n{}",
        failures.len(),
        failures.join("\n"),
        prom.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Tools and files

/// The ```promql blocks of the README section: one expression each.
fn doc_recipes() -> Vec<String> {
    let text = read_path(&repo(DOCS));
    let recipes: Vec<String> = text
        .split("```promql\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or("").trim().to_string())
        .collect();
    assert!(!recipes.is_empty(), "no ```promql recipes in {DOCS}");
    recipes
}
