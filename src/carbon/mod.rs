//! Carbon intensity of the electricity the GPUs draw: where it comes from, and its provenance.
//!
//! Providers sit behind [`IntensityProvider`]; the sampler asks for the intensity in force at
//! each tick, so a value that changes over time is applied to exactly the energy drawn while
//! it was in force.

pub mod zones;

use crate::units::GramsPerKwh;

/// An intensity together with where it came from, as the metrics label it.
#[derive(Debug, Clone, PartialEq)]
pub struct Intensity {
    /// Grams of CO2e per kWh.
    pub value: GramsPerKwh,
    /// The grid zone (`DE`, `WORLD`, or `custom` for a user-given value).
    pub zone: String,
    /// Where the number comes from (`flag`, or a table source tag such as `owid-ember`).
    pub source: String,
}

/// A source of carbon intensity.
pub trait IntensityProvider: Send {
    /// The intensity in force at wall-clock time `unix` (seconds).
    fn intensity_at(&mut self, unix: f64) -> Intensity;
}

/// One value for all time: a user-given number, or a row of the built-in zone table.
#[derive(Debug, Clone)]
pub struct FixedIntensity(pub Intensity);

impl FixedIntensity {
    /// A value given with `--carbon.intensity`.
    pub fn custom(grams_per_kwh: f64) -> FixedIntensity {
        FixedIntensity(Intensity {
            value: GramsPerKwh(grams_per_kwh),
            zone: "custom".into(),
            source: "flag".into(),
        })
    }

    /// A zone of the built-in table.
    pub fn zone(zone: &zones::Zone) -> FixedIntensity {
        FixedIntensity(Intensity {
            value: GramsPerKwh(zone.grams_per_kwh),
            zone: zone.code.clone(),
            source: format!("{}-{}", zone.source, zone.year),
        })
    }
}

impl IntensityProvider for FixedIntensity {
    fn intensity_at(&mut self, _unix: f64) -> Intensity {
        self.0.clone()
    }
}
