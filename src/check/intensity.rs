//! The intensity part of `check`: the configured provider's answer, asked once.

use super::report::{Section, Status};
use crate::carbon::start::probe;
use crate::config::Config;

/// The intensity provider's section: its answer now, or why there is none.
pub fn check(config: &Config, now_unix: f64) -> Section {
    let settings = &config.carbon;
    let name = settings.provider.name();
    let s = Section::new("carbon intensity");
    match probe(settings, now_unix) {
        Ok(i) if i.fallback => s.with(
            name,
            Status::Problem,
            format!(
                "no value for now: the exporter would charge the fallback, {} g/kWh ({})",
                i.value.0, i.zone
            ),
        ),
        Ok(i) => s.with(
            name,
            Status::Ok,
            format!(
                "{} g/kWh, zone {}, {} {}, source {}",
                i.value.0,
                i.zone,
                i.signal.as_str(),
                i.scope.as_str(),
                i.source
            ),
        ),
        Err(e) => s.with(
            name,
            Status::Problem,
            format!("fetch failed: {e} (the exporter would charge the fallback meanwhile)"),
        ),
    }
}
