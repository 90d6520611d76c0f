//! Dashboard and Prometheus rules, checked with promtool and a real Prometheus.
//!
//! - `promtool` checks the shipped config and rules and runs their unit tests; a line-based scan
//!   makes sure those unit tests cover every alert (firing and not) and every recording rule.
//! - The dashboard JSONs (the main one, and the monthly report in `observability/monthly.rs`)
//!   are linted: unique panel ids, a unit and the `${datasource}` variable on every panel, no
//!   hard-coded datasource UIDs, the template variables wired into every query.
//! - End to end: the exporter (`--demo`) and a real Prometheus on 127.0.0.1 with the shipped
//!   scrape config and rules; every panel query must return data and every rule evaluate cleanly.
//!
//! Without `promtool`/`prometheus` (Debian package `prometheus`) the tests that need them skip,
//! except under `CI`, where they fail.

mod created;
mod dashboard;
mod monthly;
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
/// Where the alerts, their runbooks and the PromQL recipes are documented.
const DOCS: &str = "docs/dashboards-and-alerts.md";
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
    // Every runbook link lands on a section of the docs.
    let anchors: Vec<String> = docs
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| github_anchor(h.trim_start_matches('#')))
        .collect();
    for (alert, url) in &rules.runbooks {
        match url.split_once('#') {
            Some((DOCS, anchor)) if anchors.iter().any(|a| a == anchor) => {}
            _ => missing.push(format!(
                "alert {alert}: runbook_url {url} is not a heading of {DOCS}"
            )),
        }
    }
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

/// The panels of the "MIG instances" row, empty for a selection without a MIG GPU.
const MIG_PANELS: &[&str] = &[
    "MIG instance power",
    "MIG instance activity",
    "MIG instance energy over the dashboard range",
    "MIG instance CO2e over the dashboard range",
    "MIG unallocated share over the dashboard range",
];

#[test]
fn dashboard_queries_and_rules_work_against_real_prometheus() {
    let Some(prometheus_bin) = tool("prometheus", "apt-get install prometheus") else {
        return;
    };
    // RAPL from the sysfs fixture gives the host panels data too, and the host estimate
    // (forced beside RAPL, on this machine's /proc) the estimated columns of the monthly report.
    let sysfs = format!(
        "--path.sysfs={}/tests/fixtures/sysfs",
        env!("CARGO_MANIFEST_DIR")
    );
    let exporter = support::Exporter::start(
        &[
            "--demo",
            "--sample.interval=200ms",
            "--collector.rapl",
            "--embodied.kg-per-gpu=1000",
            "--embodied.host-kg=1000",
            "--collector.host-estimate",
            "--estimate.host.force",
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
    // each counter's `_created` sample as a series of its own (docs/exposition.md says so).
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
    // (what, $instance, $gpu, panels that may rightly be empty for that selection)
    let selections: [(&str, String, String, &[&str]); 3] = [
        ("all hosts and GPUs", all("instance"), all("gpu"), &[]),
        // GPU 0 runs a Kubernetes pod and GPU 2 a Slurm job: every top panel has rows.
        // The demo's MIG GPU is GPU 1: the MIG panels, which follow $gpu, are empty without it.
        (
            "one host, GPUs 0 and 2",
            instance.clone(),
            "0|2".to_string(),
            MIG_PANELS,
        ),
        // GPU 3 runs nothing in the demo: the top panels, which follow $gpu, are empty; it has
        // no energy counter either, so no counter to compare with its power.
        (
            "one host, idle GPU 3",
            instance,
            "3".to_string(),
            &[
                "Top users",
                "Top namespaces",
                "Top Slurm jobs",
                "Energy counter vs integrated power",
                "MIG instance power",
                "MIG instance activity",
                "MIG instance energy over the dashboard range",
                "MIG instance CO2e over the dashboard range",
                "MIG unallocated share over the dashboard range",
            ],
        ),
    ];
    for (what, instance, gpu, may_be_empty) in &selections {
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
            // A query that looks ahead (negative offset) has data only for points in the past,
            // as Grafana asks for them (aligned to the start of the current bucket).
            let at = expr
                .contains("offset -")
                .then(|| support::now_unix() - 60.0);
            match prom.try_query_at(&expr, at) {
                Err(why) if why == "no data" && may_be_empty.contains(&panel.as_str()) => {}
                Err(why) => failures.push(format!("[{what}] {panel}: {why}\n    {expr}")),
                Ok(_) => {}
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
    failures.extend(current_bucket_problems(&prom, &dash));
    failures.extend(monthly::query_failures(&prom, &exporter.addr.to_string()));
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

/// "Energy per host (kWh per bar)" as Grafana asks for it: hourly steps, the range's end aligned
/// down to the start of the current hour. The last bar must be the current hour's energy so
/// far (a query over the hour before it would leave the current hour undrawn for good).
fn current_bucket_problems(prom: &Prometheus, dash: &Value) -> Vec<String> {
    const TITLE: &str = "Energy per host (kWh per bar)";
    const STEP: f64 = 3_600.0;
    let Some((_, expr)) = dashboard_queries(dash)
        .into_iter()
        .find(|(t, _)| t == TITLE)
    else {
        return vec![format!("no panel {TITLE:?}")];
    };
    let vars = [
        ("$__interval", "1h"),
        ("$job", JOB),
        ("$instance", ".*"),
        ("$gpu", ".*"),
    ];
    let expr = substitute(&expr, &vars);
    // The current hour needs two scrapes (1 s apart here) before it has an increase.
    let into_hour = |now: f64| now - (now / STEP).floor() * STEP;
    let wait = 3.0 - into_hour(support::now_unix());
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let now = support::now_unix();
    let end = (now / STEP).floor() * STEP;
    let series = prom.query_range(&expr, end - 6.0 * STEP, end, STEP);
    let last: Vec<f64> = series
        .iter()
        .filter_map(|s| s["values"].as_array()?.last().cloned())
        .filter(|point| point[0].as_f64() == Some(end))
        .filter_map(|point| point[1].as_str()?.parse().ok())
        .collect();
    if last.is_empty() || last.iter().any(|kwh| *kwh <= 0.0) {
        return vec![format!(
            "{TITLE}: no energy in the bar of the current hour ({end}): {series:?}\n    {expr}"
        )];
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------------
// Tools and files

/// The anchor GitHub gives a Markdown heading: lower case, spaces as hyphens, other
/// punctuation dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The ```promql blocks of the docs: one expression each.
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
