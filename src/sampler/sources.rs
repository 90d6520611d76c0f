//! Which energy source each device is accounted with: chosen once, when the sampler starts.

use crate::backend::{Backend, DeviceInfo};
use crate::energy::host::{identify, HostEstimateSettings};
use crate::energy::{EnergySource, EstimateSettings};

/// The energy source of each of `backend`'s devices: the host model for the host estimate's
/// domains, else what [`source_for`] chooses.
pub fn sources_for(
    backend: &dyn Backend,
    estimate: &EstimateSettings,
    host: &HostEstimateSettings,
) -> Vec<EnergySource> {
    let model = backend.cpu_identity().map(|cpu| host.model(identify(cpu)));
    backend
        .devices()
        .iter()
        .map(|d| match model.and_then(|m| m.for_domain(&d.name)) {
            Some(domain) => EnergySource::Modelled(domain),
            None => source_for(d, backend.reports_averages(), estimate),
        })
        .collect()
}

/// The energy source of `device`: its counter, else its power reading, else a model.
pub fn source_for(
    device: &DeviceInfo,
    averages: bool,
    estimate: &EstimateSettings,
) -> EnergySource {
    EnergySource::choose(
        &device.caps,
        device.wraps_at_uj,
        averages,
        estimate.model_for(&device.name),
        estimate.force,
    )
}
