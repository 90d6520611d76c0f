//! One sample of `powermetrics -f plist`: an XML property list per sample, each followed by a
//! NUL byte. Parsed with the `plist` crate (the standard Rust reader of Apple's format) into
//! the few keys this exporter uses; every other key is ignored.
//!
//! - `elapsed_ns`: the interval the sample covers, timed by powermetrics;
//! - Apple Silicon, under `processor`: `cpu_power`, `gpu_power`, `ane_power` (average mW over
//!   the interval) and `combined_power`, their sum, which is not exported (the domains are, and
//!   add up to it);
//! - Intel Macs, under `processor`: `package_watts` (average W of the package: cores, integrated
//!   GPU and system agent), or `package_joules` over the interval where the watts are missing.

use std::time::Duration;

use serde::Deserialize;

use crate::units::Watts;

/// A power domain powermetrics reports (the `domain` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// Apple Silicon CPU clusters.
    Cpu,
    /// Apple Silicon GPU.
    Gpu,
    /// Apple Neural Engine.
    Ane,
    /// An Intel Mac's processor package (cores, integrated GPU, system agent).
    Package,
}

impl Domain {
    /// The `domain` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Cpu => "cpu",
            Domain::Gpu => "gpu",
            Domain::Ane => "ane",
            Domain::Package => "package",
        }
    }
}

/// One sample: each domain's average power over the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The interval it covers (`elapsed_ns`).
    pub elapsed: Duration,
    /// Average power per domain, in the order of [`Domain`].
    pub power: Vec<(Domain, Watts)>,
}

/// Why a sample could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not a property list, or its keys have the wrong types.
    #[error("not a powermetrics property list: {0}")]
    Plist(#[from] plist::Error),
    /// No interval.
    #[error("no elapsed_ns (or it is 0)")]
    NoInterval,
    /// No power figure at all.
    #[error("no cpu_power, gpu_power, ane_power or package_watts under processor (is the cpu_power sampler on?)")]
    NoPower,
    /// A power figure that is not a number of watts.
    #[error("{key} is {value}, not a power")]
    BadPower {
        /// The key.
        key: &'static str,
        /// Its value.
        value: f64,
    },
}

#[derive(Deserialize)]
struct Raw {
    elapsed_ns: Option<u64>,
    processor: Option<Processor>,
}

#[derive(Deserialize)]
struct Processor {
    cpu_power: Option<f64>,
    gpu_power: Option<f64>,
    ane_power: Option<f64>,
    package_watts: Option<f64>,
    package_joules: Option<f64>,
}

/// Parses one sample (the bytes between two NULs; surrounding whitespace is ignored).
pub fn parse(frame: &[u8]) -> Result<Sample, ParseError> {
    let raw: Raw = plist::from_bytes(frame.trim_ascii())?;
    let elapsed = match raw.elapsed_ns {
        Some(ns) if ns > 0 => Duration::from_nanos(ns),
        _ => return Err(ParseError::NoInterval),
    };
    let p = raw.processor.ok_or(ParseError::NoPower)?;
    let milliwatts = [
        (Domain::Cpu, "cpu_power", p.cpu_power),
        (Domain::Gpu, "gpu_power", p.gpu_power),
        (Domain::Ane, "ane_power", p.ane_power),
    ];
    let mut power = Vec::new();
    for (domain, key, mw) in milliwatts {
        if let Some(mw) = mw {
            power.push((domain, watts(key, mw / 1000.0)?));
        }
    }
    if power.is_empty() {
        let package = match (p.package_watts, p.package_joules) {
            (Some(w), _) => Some(watts("package_watts", w)?),
            (None, Some(j)) => Some(watts("package_joules", j / elapsed.as_secs_f64())?),
            (None, None) => None,
        };
        power.extend(package.map(|w| (Domain::Package, w)));
    }
    if power.is_empty() {
        return Err(ParseError::NoPower);
    }
    Ok(Sample { elapsed, power })
}

fn watts(key: &'static str, value: f64) -> Result<Watts, ParseError> {
    if value.is_finite() && value >= 0.0 {
        Ok(Watts(value))
    } else {
        Err(ParseError::BadPower { key, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/powermetrics");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    /// Apple Silicon: CPU, GPU and ANE in mW, as recorded in the fixture.
    #[test]
    fn apple_silicon_sample() {
        let s = parse(&fixture("apple-silicon.plist")).expect("parses");
        assert_eq!(s.elapsed, Duration::from_nanos(1_004_181_125));
        assert_eq!(
            s.power,
            [
                (Domain::Cpu, Watts(2.978)),
                (Domain::Gpu, Watts(0.25)),
                (Domain::Ane, Watts(0.0))
            ]
        );
    }

    /// Intel: the package in W (or in J over the interval where the watts are missing).
    #[test]
    fn intel_sample() {
        let s = parse(&fixture("intel.plist")).expect("parses");
        assert_eq!(s.elapsed, Duration::from_nanos(1_002_500_000));
        assert_eq!(s.power, [(Domain::Package, Watts(12.5))]);
        let joules = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
            <key>elapsed_ns</key><integer>500000000</integer>\
            <key>processor</key><dict><key>package_joules</key><real>4.0</real></dict>\
            </dict></plist>";
        let s = parse(joules).expect("parses");
        assert_eq!(s.power, [(Domain::Package, Watts(8.0))]);
    }

    /// Whitespace and the newline powermetrics writes around a sample don't matter; integers
    /// are as good as reals.
    #[test]
    fn whitespace_and_integers() {
        let text = b"\n<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
            <key>elapsed_ns</key><integer>1000000000</integer>\
            <key>processor</key><dict><key>cpu_power</key><integer>1200</integer></dict>\
            </dict></plist>\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.power, [(Domain::Cpu, Watts(1.2))]);
    }

    /// Malformed and truncated samples are errors, each with its reason.
    #[test]
    fn malformed_samples_are_refused() {
        let whole = fixture("apple-silicon.plist");
        let truncated = &whole[..whole.len() / 2];
        assert!(matches!(parse(truncated), Err(ParseError::Plist(_))));
        assert!(matches!(parse(b"garbage"), Err(ParseError::Plist(_))));
        let no_interval = b"<plist version=\"1.0\"><dict><key>processor</key><dict>\
            <key>cpu_power</key><real>1</real></dict></dict></plist>";
        assert!(matches!(parse(no_interval), Err(ParseError::NoInterval)));
        let no_power = b"<plist version=\"1.0\"><dict><key>elapsed_ns</key>\
            <integer>1000</integer><key>processor</key><dict/></dict></plist>";
        assert!(matches!(parse(no_power), Err(ParseError::NoPower)));
        let negative = b"<plist version=\"1.0\"><dict><key>elapsed_ns</key>\
            <integer>1000</integer><key>processor</key><dict><key>gpu_power</key>\
            <real>-5</real></dict></dict></plist>";
        assert!(matches!(
            parse(negative),
            Err(ParseError::BadPower {
                key: "gpu_power",
                ..
            })
        ));
        let wrong_type = b"<plist version=\"1.0\"><dict><key>elapsed_ns</key>\
            <string>soon</string></dict></plist>";
        assert!(matches!(parse(wrong_type), Err(ParseError::Plist(_))));
    }
}
