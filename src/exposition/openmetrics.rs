//! The OpenMetrics 1.0.0 text encoding of gathered metric families: counters as a family
//! without `_total` with `_total` and `_created` samples, `# UNIT` for every family whose name
//! ends in a unit, and `# EOF`. (rust-prometheus has no OpenMetrics encoder.)

use std::fmt::Write as _;

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

/// Unit suffixes of this exporter's and the process collector's metric names, longest first
/// so `_grams_per_kwh` is not taken for `_kwh`.
const UNITS: [&str; 7] = [
    "grams_per_kwh",
    "seconds",
    "grams",
    "watts",
    "bytes",
    "ratio",
    "kwh",
];

/// Why a family could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {family} as OpenMetrics: {why}")]
pub struct EncodeError {
    family: String,
    why: &'static str,
}

/// Encodes `families` (sorted by name, as a registry gathers them); `created` gives a
/// counter's `_created` time (Unix seconds) from its family name (with `_total`) and labels,
/// `None` where it is not known (then no `_created` sample is written).
pub fn encode(
    families: &[MetricFamily],
    created: impl Fn(&str, &[LabelPair]) -> Option<f64>,
) -> Result<String, EncodeError> {
    let mut out = String::with_capacity(32 * 1024);
    for f in families {
        let full = f.name();
        let (name, kind) = match f.get_field_type() {
            MetricType::COUNTER => match full.strip_suffix("_total") {
                Some(base) => (base, "counter"),
                None => return Err(error(full, "a counter name must end in _total")),
            },
            MetricType::GAUGE => (full, "gauge"),
            _ => return Err(error(full, "only counters and gauges are exported")),
        };
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if let Some(unit) = UNITS.iter().find(|u| unit_of(name, u)) {
            let _ = writeln!(out, "# UNIT {name} {unit}");
        }
        let _ = writeln!(out, "# HELP {name} {}", escape(f.help(), false));
        for m in f.get_metric() {
            let labels = m.get_label();
            match f.get_field_type() {
                MetricType::COUNTER => {
                    sample(&mut out, full, labels, m.get_counter().get_value());
                    if let Some(at) = created(full, labels) {
                        sample(&mut out, &format!("{name}_created"), labels, at);
                    }
                }
                _ => sample(&mut out, name, labels, m.get_gauge().get_value()),
            }
        }
    }
    out.push_str("# EOF\n");
    Ok(out)
}

fn error(family: &str, why: &'static str) -> EncodeError {
    EncodeError {
        family: family.to_string(),
        why,
    }
}

/// Whether `name` ends in `_<unit>` (the OpenMetrics rule for a family with a unit).
fn unit_of(name: &str, unit: &str) -> bool {
    name.strip_suffix(unit)
        .is_some_and(|rest| rest.ends_with('_'))
}

fn sample(out: &mut String, name: &str, labels: &[LabelPair], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}=\"{}\"", l.name(), escape(l.value(), true));
        }
        out.push('}');
    }
    out.push(' ');
    number(out, value);
    out.push('\n');
}

fn number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Escapes `\` and line feeds (and `"` in label values) as OpenMetrics requires.
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{Counter, Gauge, Metric};

    fn family(name: &str, kind: MetricType, value: f64, labels: &[(&str, &str)]) -> MetricFamily {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v.to_string());
                    l
                })
                .collect(),
        );
        if kind == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help("Help with a \\ and\na line feed.".to_string());
        f.set_field_type(kind);
        f.set_metric(vec![m]);
        f
    }

    #[test]
    fn counters_gauges_units_created_and_eof() {
        let families = [
            family(
                "gpu_energy_kwh_total",
                MetricType::COUNTER,
                1.5,
                &[("uuid", "GPU-\"1\"")],
            ),
            family(
                "gpu_carbon_intensity_grams_per_kwh",
                MetricType::GAUGE,
                480.0,
                &[],
            ),
            family("gpu_up", MetricType::GAUGE, f64::NAN, &[]),
        ];
        let text = encode(&families, |name, _| {
            (name == "gpu_energy_kwh_total").then_some(1_800_000_000.25)
        })
        .expect("encode");
        assert_eq!(
            text,
            "# TYPE gpu_energy_kwh counter\n\
             # UNIT gpu_energy_kwh kwh\n\
             # HELP gpu_energy_kwh Help with a \\\\ and\\na line feed.\n\
             gpu_energy_kwh_total{uuid=\"GPU-\\\"1\\\"\"} 1.5\n\
             gpu_energy_kwh_created{uuid=\"GPU-\\\"1\\\"\"} 1800000000.25\n\
             # TYPE gpu_carbon_intensity_grams_per_kwh gauge\n\
             # UNIT gpu_carbon_intensity_grams_per_kwh grams_per_kwh\n\
             # HELP gpu_carbon_intensity_grams_per_kwh Help with a \\\\ and\\na line feed.\n\
             gpu_carbon_intensity_grams_per_kwh 480\n\
             # TYPE gpu_up gauge\n\
             # HELP gpu_up Help with a \\\\ and\\na line feed.\n\
             gpu_up NaN\n\
             # EOF\n"
        );
    }

    #[test]
    fn a_counter_without_total_is_refused() {
        let bad = [family("requests", MetricType::COUNTER, 1.0, &[])];
        assert!(encode(&bad, |_, _| None).is_err());
    }
}
