//! The landing page at `/`: what this is, where the metrics are, how it is set up, and the
//! carbon intensity in force at the latest sample.

use crate::snapshot::Snapshot;

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

/// Renders the page: the set-up, and the intensity in force at the latest sample of
/// `snapshot` (`None` before the first).
pub fn page(telemetry_path: &str, setup: &Setup, snapshot: Option<&Snapshot>) -> String {
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
<tr><th align="left">Carbon intensity in force</th><td>{in_force}</td></tr>
<tr><th align="left">Intensity set-up</th><td>{carbon}</td></tr>
<tr><th align="left">PUE</th><td>{pue}</td></tr>
</table>
</body>
</html>
"#,
        backend = escape(&setup.backend),
        gpus = setup.gpus,
        in_force = escape(&in_force(snapshot)),
        carbon = escape(&setup.carbon),
        pue = setup.pue,
    )
}

/// The intensity applied at the latest sample: value, where it comes from, how old it is and
/// whether it is a fallback.
fn in_force(snapshot: Option<&Snapshot>) -> String {
    let Some(s) = snapshot else {
        return "not known yet: no sample taken (a live provider's first fetch may still be running)".into();
    };
    let i = &s.intensity;
    let age = match s.carbon.last_update_unix {
        Some(t) => format!(
            "; value dated {:.0} s before the latest sample",
            (s.taken_at_unix - t).max(0.0)
        ),
        None => String::new(),
    };
    let fallback = if i.fallback {
        format!("FALLBACK (configured provider: {})", s.carbon.provider)
    } else {
        "not a fallback".to_string()
    };
    format!(
        "{} g CO2e/kWh from {}, zone {}, source {} ({}, {}){age}; {fallback}",
        i.value.0,
        i.provider,
        i.zone,
        i.source,
        i.signal.as_str(),
        i.scope.as_str(),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_the_first_sample_the_page_says_so() {
        let setup = Setup {
            backend: "nvml".into(),
            gpus: 2,
            carbon: "Electricity Maps, zone DE; fallback FR 56 g/kWh (owid-ember-2023)".into(),
            pue: 1.2,
        };
        let page = page("/metrics", &setup, None);
        assert!(page.contains("not known yet"), "{page}");
        assert!(page.contains("fallback FR"), "{page}");
    }
}
