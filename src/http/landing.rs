//! The landing page at `/`: what this is, where the metrics are, and how it is set up.

/// Facts shown on the landing page.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Backend name.
    pub backend: String,
    /// Number of GPUs found.
    pub gpus: usize,
    /// Carbon intensity description, e.g. "DE: 380.95 g/kWh (owid-ember-2023)".
    pub carbon: String,
    /// PUE.
    pub pue: f64,
}

/// Renders the page once, at start-up.
pub fn page(telemetry_path: &str, setup: &Setup) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let path = escape(telemetry_path);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>GPU Carbon Exporter</title></head>
<body>
<h1>GPU Carbon Exporter</h1>
<p>Live GPU power (W), cumulative energy (kWh) and estimated CO2e (g) for Prometheus. Version {version}.</p>
<ul>
<li><a href="{path}">Metrics</a> ({path})</li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
</ul>
<table>
<tr><th align="left">Backend</th><td>{backend}</td></tr>
<tr><th align="left">GPUs</th><td>{gpus}</td></tr>
<tr><th align="left">Carbon intensity</th><td>{carbon}</td></tr>
<tr><th align="left">PUE</th><td>{pue}</td></tr>
</table>
</body>
</html>
"#,
        backend = escape(&setup.backend),
        gpus = setup.gpus,
        carbon = escape(&setup.carbon),
        pue = setup.pue,
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
