//! MIG on a simulated GPU: the `mig`, `sm_count`, `gpm` and `mig_instance = …` keys, and what
//! NVML's MIG and GPM queries report about them at scenario time `t`.
//!
//! An instance is one MIG device (a compute instance inside a GPU instance). It exists for
//! `start <= t < end`, so scenarios can create and destroy instances while the exporter runs.
//! Its `activity` profile is the GPU instance's GPM graphics utilization in percent; the GPM
//! metric over two samples is the exact mean of the profile between them (its integral over the
//! interval divided by the interval), so tests can compute expected splits in closed form.

use crate::profile::Profile;
use crate::scenario::Window;

/// `mig = …`: whether MIG mode is on, and whether it can be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigMode {
    /// `no`: MIG disabled (`nvmlDeviceGetMigMode` reports current = 0).
    #[default]
    Off,
    /// `yes`: MIG enabled.
    On,
    /// `unsupported`: `nvmlDeviceGetMigMode` is `NVML_ERROR_NOT_SUPPORTED` (pre-Ampere).
    Unsupported,
    /// `unreadable`: `nvmlDeviceGetMigMode` is `NVML_ERROR_UNKNOWN`.
    Unreadable,
}

impl MigMode {
    /// Parses the value of a `mig` line.
    pub fn parse(value: &str) -> Result<MigMode, String> {
        match value {
            "no" => Ok(MigMode::Off),
            "yes" => Ok(MigMode::On),
            "unsupported" => Ok(MigMode::Unsupported),
            "unreadable" => Ok(MigMode::Unreadable),
            other => Err(format!(
                "mig must be yes, no, unsupported or unreadable, got `{other}`"
            )),
        }
    }
}

/// One `mig_instance = gi=G [ci=C] [profile=P] [sm=N] [memory_mb=M] [activity=PROFILE]
/// [start=T] [end=T] [uuid=U] [gpm_error=T:D]` line.
#[derive(Debug, Clone, PartialEq)]
pub struct MigInstance {
    /// GPU instance ID.
    pub gi: u32,
    /// Compute instance ID inside it (default 0).
    pub ci: u32,
    /// Profile name; the MIG device's name is `<GPU name> MIG <profile>` (default `1g.10gb`).
    pub profile: String,
    /// SM count of the MIG device (default 16).
    pub sm: u32,
    /// Memory of the MIG device in MiB (default 9984).
    pub memory_mb: u64,
    /// GPM graphics utilization of the GPU instance in percent (default `const:0`).
    pub activity: Profile,
    /// Exists for `start <= t < end`.
    pub start: f64,
    /// See `start`; `f64::INFINITY` by default.
    pub end: f64,
    /// MIG UUID (default `MIG-<gpu index>-<gi>-<ci>` in UUID form).
    pub uuid: String,
    /// `gpm_error=T:D`: for `T <= t < T+D`, `nvmlGpmMigSampleGet` for this instance returns
    /// `NVML_ERROR_UNKNOWN`.
    pub gpm_error: Option<Window>,
}

impl MigInstance {
    /// Parses the value of a `mig_instance` line on the GPU at `gpu_index`.
    pub fn parse(value: &str, gpu_index: usize) -> Result<MigInstance, String> {
        let mut m = MigInstance {
            gi: 0,
            ci: 0,
            profile: "1g.10gb".to_string(),
            sm: 16,
            memory_mb: 9984,
            activity: Profile::Const(0.0),
            start: 0.0,
            end: f64::INFINITY,
            uuid: String::new(),
            gpm_error: None,
        };
        let mut gi = None;
        for item in value.split_whitespace() {
            let (key, v) = item
                .split_once('=')
                .ok_or_else(|| format!("mig_instance: `{item}` must be KEY=VALUE"))?;
            let int = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| format!("mig_instance: {key} must be a whole number, got `{v}`"))
            };
            match key {
                "gi" => gi = Some(int(v)?),
                "ci" => m.ci = int(v)?,
                "sm" => m.sm = int(v)?,
                "memory_mb" => m.memory_mb = u64::from(int(v)?),
                "profile" => m.profile = v.to_string(),
                "uuid" => m.uuid = v.to_string(),
                "activity" => {
                    m.activity = Profile::parse(v)?;
                    if m.activity.min_value() < 0.0 {
                        return Err("mig_instance: activity must never be negative".into());
                    }
                }
                "start" => m.start = time(v)?,
                "end" => m.end = time(v)?,
                "gpm_error" => {
                    let (t, d) = v
                        .split_once(':')
                        .ok_or_else(|| format!("mig_instance: gpm_error `{v}` must be T:D"))?;
                    let start = time(t)?;
                    m.gpm_error = Some(Window {
                        start,
                        end: start + time(d)?,
                    });
                }
                other => return Err(format!("mig_instance: unknown key `{other}`")),
            }
        }
        m.gi = gi.ok_or("mig_instance: needs gi=N")?;
        if m.end <= m.start {
            return Err(format!("mig_instance gi={}: end must be after start", m.gi));
        }
        if m.uuid.is_empty() {
            m.uuid = format!("MIG-{gpu_index:08x}-0000-0000-{:04x}-{:012x}", m.gi, m.ci);
        }
        Ok(m)
    }

    /// Whether the instance exists at `t`.
    pub fn present_at(&self, t: f64) -> bool {
        self.start <= t && t < self.end
    }

    /// GPM graphics utilization in percent averaged over `[t0, t1]` (clamped to 0..=100); the
    /// value at `t1` when the interval is empty.
    pub fn mean_activity(&self, t0: f64, t1: f64) -> f64 {
        let (t0, t1) = (t0.max(0.0), t1.max(0.0));
        let mean = if t1 > t0 {
            self.activity.energy_between(t0, t1) / (t1 - t0)
        } else {
            self.activity.value_at(t1)
        };
        mean.clamp(0.0, 100.0)
    }

    /// Whether GPM sampling of this instance fails at `t`.
    pub fn gpm_failing_at(&self, t: f64) -> bool {
        self.gpm_error.is_some_and(|w| w.contains(t))
    }
}

fn time(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("mig_instance: `{v}` is not a time >= 0")),
    }
}

/// Checks that no two instances with the same GPU and compute instance IDs exist at once.
pub fn check_overlaps(instances: &[MigInstance]) -> Result<(), String> {
    for (i, a) in instances.iter().enumerate() {
        for b in &instances[i + 1..] {
            let same = a.gi == b.gi && a.ci == b.ci;
            if same && a.start < b.end && b.start < a.end {
                return Err(format!(
                    "mig_instance gi={} ci={} exists twice at the same time",
                    a.gi, a.ci
                ));
            }
            if a.uuid == b.uuid {
                return Err(format!("mig_instance uuid `{}` is used twice", a.uuid));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_answers() {
        let m = MigInstance::parse("gi=3 sm=32 profile=2g.20gb activity=const:50 start=2", 1)
            .expect("ok");
        assert_eq!(
            (m.gi, m.ci, m.sm, m.profile.as_str()),
            (3, 0, 32, "2g.20gb")
        );
        assert_eq!(m.uuid, "MIG-00000001-0000-0000-0003-000000000000");
        assert!(!m.present_at(1.0) && m.present_at(2.0));
        assert_eq!(m.mean_activity(2.0, 4.0), 50.0);
        let r = MigInstance::parse("gi=1 activity=trace:0=0,10=100", 0).expect("ok");
        assert!((r.mean_activity(0.0, 10.0) - 50.0).abs() < 1e-12);
        assert_eq!(r.mean_activity(5.0, 5.0), 50.0);
        for bad in [
            "",
            "sm=3",
            "gi=x",
            "gi=1 end=0",
            "gi=1 color=red",
            "gi=1 gpm_error=5",
        ] {
            assert!(MigInstance::parse(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_instances_are_refused() {
        let a = MigInstance::parse("gi=1 end=10", 0).expect("ok");
        let b = MigInstance::parse("gi=1 start=10 uuid=MIG-b", 0).expect("ok");
        assert!(check_overlaps(&[a.clone(), b]).is_ok());
        let c = MigInstance::parse("gi=1 start=5 uuid=MIG-c", 0).expect("ok");
        assert!(check_overlaps(&[a, c]).is_err());
    }
}
