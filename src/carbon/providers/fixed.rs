//! One value for all time: a user-given `--carbon.intensity`, or a row of the built-in
//! [`zones`] table. It is the static provider, and the fallback of every other.

use super::zones;
use crate::carbon::{Intensity, IntensityProvider, ProviderStatus, Scope, Signal};
use crate::units::GramsPerKwh;

/// One value for all time: a user-given number, or a row of the built-in zone table.
#[derive(Debug, Clone)]
pub struct FixedIntensity {
    intensity: Intensity,
    first_used: Option<f64>,
}

impl FixedIntensity {
    /// A value given with `--carbon.intensity`, average and lifecycle unless the user says
    /// otherwise with [`Self::describing`].
    pub fn custom(grams_per_kwh: f64) -> FixedIntensity {
        FixedIntensity::new(Intensity {
            value: GramsPerKwh(grams_per_kwh),
            zone: "custom".into(),
            provider: "static",
            signal: Signal::Average,
            scope: Scope::Lifecycle,
            source: "flag".into(),
            fallback: false,
        })
    }

    /// A zone of the built-in table (location-based, average, lifecycle).
    pub fn zone(zone: &zones::Zone) -> FixedIntensity {
        FixedIntensity::new(Intensity {
            value: GramsPerKwh(zone.grams_per_kwh),
            zone: zone.code.clone(),
            provider: "static",
            signal: Signal::Average,
            scope: Scope::Lifecycle,
            source: format!("{}-{}", zone.source, zone.year),
            fallback: false,
        })
    }

    fn new(intensity: Intensity) -> FixedIntensity {
        FixedIntensity {
            intensity,
            first_used: None,
        }
    }

    /// The same value, labelled with what it measures.
    pub fn describing(mut self, signal: Signal, scope: Scope) -> FixedIntensity {
        self.intensity.signal = signal;
        self.intensity.scope = scope;
        self
    }

    /// The value and its provenance.
    pub fn intensity(&self) -> &Intensity {
        &self.intensity
    }
}

impl IntensityProvider for FixedIntensity {
    fn intensity_at(&mut self, unix: f64) -> Intensity {
        self.first_used.get_or_insert(unix);
        self.intensity.clone()
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            provider: "static",
            fetch_errors: 0,
            last_update_unix: self.first_used,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_value_is_dated_by_its_first_use() {
        let mut fixed = FixedIntensity::custom(123.0).describing(Signal::Marginal, Scope::Direct);
        assert_eq!(fixed.status().last_update_unix, None);
        let i = fixed.intensity_at(100.0);
        fixed.intensity_at(200.0);
        assert_eq!(i.value, GramsPerKwh(123.0));
        assert_eq!((i.signal, i.scope), (Signal::Marginal, Scope::Direct));
        assert_eq!(
            (i.zone.as_str(), i.provider, i.fallback),
            ("custom", "static", false)
        );
        assert_eq!(fixed.status().last_update_unix, Some(100.0));
    }
}
