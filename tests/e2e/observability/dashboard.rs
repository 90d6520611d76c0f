//! Reading and linting the Grafana dashboard JSON.

use serde_json::Value;

use super::DATASOURCE_REF;

/// Every panel, including those nested in (collapsed) rows.
pub fn all_panels(dash: &Value) -> Vec<&Value> {
    fn collect<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            collect(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    collect(&dash["panels"], &mut out);
    out
}

pub fn panel_problems(name: &str, panel: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let unit = panel["fieldConfig"]["defaults"]["unit"]
        .as_str()
        .unwrap_or("");
    if unit.trim().is_empty() {
        problems.push(format!("{name}: no unit (fieldConfig.defaults.unit)"));
    }
    if !is_datasource_ref(&panel["datasource"]) {
        problems.push(format!("{name}: datasource is not {DATASOURCE_REF}"));
    }
    if panel["description"].as_str().unwrap_or("").is_empty() {
        problems.push(format!("{name}: no description (the question it answers)"));
    }
    let targets = panel["targets"].as_array().cloned().unwrap_or_default();
    if targets.is_empty() {
        problems.push(format!("{name}: no queries"));
    }
    for target in &targets {
        let expr = target["expr"].as_str().unwrap_or("");
        let what = format!("{name} query {}", target["refId"]);
        if !is_datasource_ref(&target["datasource"]) {
            problems.push(format!("{what}: datasource is not {DATASOURCE_REF}"));
        }
        if expr.trim().is_empty() {
            problems.push(format!("{what}: empty expr"));
        }
        problems.extend(
            expr_problems(expr)
                .into_iter()
                .map(|p| format!("{what}: {p}")),
        );
    }
    problems
}

/// Metrics of one GPU each (labelled `gpu`): their selectors must follow the `$gpu` picker.
const PER_GPU: [&str; 5] = [
    "gpu_info",
    "gpu_up",
    "gpu_workload_",
    "gpu_unattributed_",
    "gpu_carbon_exporter_sample_errors_total",
];
/// Prefixes of metrics without a `gpu` label.
const NOT_PER_GPU: [&str; 4] = [
    "gpu_host_",
    "gpu_carbon_",
    "gpu_pue_",
    "gpu_carbon_exporter_",
];

/// Whether the metric `name` carries a `gpu` label.
fn per_gpu(name: &str) -> bool {
    PER_GPU.iter().any(|p| name.starts_with(p))
        || (name.starts_with("gpu_") && !NOT_PER_GPU.iter().any(|p| name.starts_with(p)))
}

/// Query conventions: rates over `$__rate_interval`, every selector filtered by job and host
/// (and by GPU for per-GPU metrics), and no `max`/`min`/`avg` that merges hosts.
fn expr_problems(expr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (start, _) in expr.match_indices("rate(") {
        let args = balanced(&expr[start + "rate".len()..]);
        if !args
            .trim_end_matches(')')
            .trim_end()
            .ends_with("[$__rate_interval]")
        {
            problems.push(format!("rate window is not $__rate_interval in {args}"));
        }
    }
    for (start, _) in expr.match_indices('{') {
        let selector = &expr[start..expr[start..].find('}').map_or(expr.len(), |e| start + e)];
        for want in ["job=~\"$job\"", "instance=~\"$instance\""] {
            if !selector.contains(want) {
                problems.push(format!("selector {selector}}} lacks {want}"));
            }
        }
        let name: String = expr[..start]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if per_gpu(&name) && !selector.contains("gpu=~\"$gpu\"") {
            problems.push(format!("{name}{selector}}} ignores the $gpu picker"));
        }
    }
    // Two hosts with the same labels otherwise collapse into one number.
    for op in ["max by (", "min by (", "avg by ("] {
        for (start, _) in expr.match_indices(op) {
            let labels = &expr[start + op.len()..];
            let labels = &labels[..labels.find(')').unwrap_or(labels.len())];
            if !labels.split(',').any(|l| l.trim() == "instance") {
                problems.push(format!("{op}{labels}) merges hosts: keep instance"));
            }
        }
    }
    problems
}

/// The text from the `(` that `s` starts with through its matching `)`.
fn balanced(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..=i];
                }
            }
            _ => {}
        }
    }
    s
}

pub fn is_datasource_ref(v: &Value) -> bool {
    v["uid"] == DATASOURCE_REF && v["type"] == "prometheus"
}

/// Every `datasource` anywhere in the dashboard must go through the variable.
pub fn walk_datasources(v: &Value, path: &str, problems: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{path}.{key}");
                if key == "datasource" {
                    let ok = match child {
                        Value::String(s) => s == DATASOURCE_REF || s == "$datasource",
                        other => other["uid"] == DATASOURCE_REF,
                    };
                    if !ok {
                        problems.push(format!("{here}: hard-coded datasource {child}"));
                    }
                }
                walk_datasources(child, &here, problems);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk_datasources(child, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn variable<'a>(dash: &'a Value, name: &str) -> Option<&'a Value> {
    dash["templating"]["list"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

pub fn template_variable_problems(dash: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match variable(dash, "datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => problems.push("no `datasource` variable of type datasource/prometheus".into()),
    }
    for name in ["job", "instance", "gpu"] {
        let Some(v) = variable(dash, name) else {
            problems.push(format!("no `{name}` template variable"));
            continue;
        };
        if v["type"] != "query" || !is_datasource_ref(&v["datasource"]) {
            problems.push(format!("variable {name}: not a query on {DATASOURCE_REF}"));
        }
        if label_values(v).is_none() {
            problems.push(format!(
                "variable {name}: query is not label_values(…, label)"
            ));
        }
    }
    for name in ["instance", "gpu"] {
        let v = variable(dash, name);
        if !v.is_some_and(|v| v["multi"] == true && v["includeAll"] == true) {
            problems.push(format!(
                "variable {name}: should allow All and several values"
            ));
        }
    }
    problems
}

/// `label_values(selector, label)` of a query variable, split.
fn label_values(var: &Value) -> Option<(String, String)> {
    let query = var["query"]
        .as_str()
        .or_else(|| var["query"]["query"].as_str())?;
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_string(), label.trim().to_string()))
}

/// `(variable name, selector, label)` for each query variable.
pub fn variable_queries(dash: &Value) -> Vec<(String, String, String)> {
    dash["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let (selector, label) = label_values(v)?;
            Some((v["name"].as_str()?.to_string(), selector, label))
        })
        .collect()
}

/// The value Grafana sends for "All" of a variable.
pub fn all_value(dash: &Value, name: &str) -> String {
    variable(dash, name)
        .and_then(|v| v["allValue"].as_str())
        .unwrap_or(".*")
        .to_string()
}

/// `(panel title, expr)` of every query of every panel.
pub fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    all_panels(dash)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| Some((title.clone(), t["expr"].as_str()?.to_string())))
        })
        .collect()
}

/// Replaces Grafana variables; longer names first so `$__range` never eats `$__range_s`.
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = expr.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{}}}", &k[1..]), v).replace(k, v);
    }
    out
}
