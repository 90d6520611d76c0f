//! The start-up inventory in the log: devices, energy sources, intensity and PUE.

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::backend::DeviceKind;
use crate::carbon::{self, ProviderSettings};
use crate::config::Config;
use crate::energy::EnergySource;
use crate::sampler::Sampler;

pub(crate) fn log_inventory(sampler: &Sampler, config: &Config) {
    for warning in &config.warnings {
        warn!(flag = warning.flag, "{warning}");
    }
    info!(interval = ?config.sample_interval, "Sampling");
    let mut integrated = false;
    for (collector, d, source) in sampler.inventory() {
        integrated |= matches!(
            source,
            EnergySource::Integrated | EnergySource::Estimated(_)
        );
        match d.kind {
            DeviceKind::HostDomain => {
                info!(collector, domain = %d.name, zone = %d.uuid, energy_source = source.as_str(), "Host energy domain found")
            }
            DeviceKind::Gpu => info!(
                collector,
                gpu = d.index,
                uuid = %d.uuid,
                name = %d.name,
                energy_source = source.as_str(),
                power = d.caps.power,
                utilization = d.caps.utilization,
                power_limit = d.caps.power_limit,
                "GPU found"
            ),
        }
        if let EnergySource::Estimated(m) = source {
            warn!(uuid = %d.uuid, idle_watts = m.idle.0, rated_watts = m.rated.0, "Power is ESTIMATED from utilization (idle + (rated - idle) x utilization); series are labelled energy_source=\"estimated\"");
        }
        if source == EnergySource::Unavailable {
            warn!(uuid = %d.uuid, name = %d.name, "No energy counter, power reading or known power model: this GPU's energy stays 0; set --estimate.rated-watts to estimate it");
        }
    }
    if integrated && config.sample_interval > Duration::from_secs(1) {
        warn!(interval = ?config.sample_interval, "GPUs without an energy counter are integrated from power readings, which average at most 1 s: sampling slower than 1s misses load between samples");
    }
    log_carbon(&config.carbon);
}

/// One line for the landing page: the provider, and the static value or fallback.
pub(crate) fn describe_carbon(carbon: &carbon::Settings) -> String {
    let i = carbon.static_value.intensity();
    let value = format!("{} {} g/kWh ({})", i.zone, i.value.0, i.source);
    let live = match &carbon.provider {
        ProviderSettings::Static => return format!("static: {value}"),
        ProviderSettings::ElectricityMaps(s) => format!("Electricity Maps, zone {}", s.zone),
        ProviderSettings::WattTime(s) => {
            format!("WattTime {}, region {}", s.signal_type.as_str(), s.region)
        }
        ProviderSettings::UkGrid { target, .. } => format!("GB Carbon Intensity API, {target:?}"),
        ProviderSettings::Schedule(s) => format!("schedule {}", s.name),
    };
    format!("{live}; fallback {value}")
}

pub(crate) fn log_carbon(carbon: &carbon::Settings) {
    let credentials_to = match &carbon.provider {
        ProviderSettings::ElectricityMaps(s) => Some(&s.url),
        ProviderSettings::WattTime(s) => Some(&s.url),
        _ => None,
    };
    if let Some(url) = credentials_to.filter(|u| carbon::http::exposes_credentials(u)) {
        warn!(provider = carbon.provider.name(), url = %url, "Credentials for the intensity provider will be sent UNENCRYPTED over plain http:// to a host that is not this machine; use https:// (or a proxy on localhost)");
    }
    let i = carbon.static_value.intensity();
    let provider = carbon.provider.name();
    match &carbon.provider {
        ProviderSettings::Static => {
            info!(provider, zone = %i.zone, source = %i.source, grams_per_kwh = i.value.0, signal = i.signal.as_str(), scope = i.scope.as_str(), pue = carbon.pue, "Carbon intensity")
        }
        _ => {
            info!(provider, setup = %describe_carbon(carbon), max_age = ?carbon.max_age, refresh = ?carbon.refresh, pue = carbon.pue, "Carbon intensity")
        }
    }
    if carbon.is_default {
        warn!(grams_per_kwh = i.value.0, "No --carbon.zone, --carbon.fallback-zone or --carbon.intensity given: the static value is the world average, labelled zone=\"WORLD\"");
    }
    match carbon.embodied {
        Some(a) => {
            info!(kg_per_gpu = a.kg, lifetime = ?a.lifetime, "Embodied emissions amortised per GPU")
        }
        None => {
            debug!("Embodied emissions off (set --embodied.kg-per-gpu to amortise a GPU's manufacturing footprint)")
        }
    }
    if let Some(a) = carbon.embodied_host {
        info!(kg = a.kg, lifetime = ?a.lifetime, "Embodied emissions of the host amortised");
    }
}
