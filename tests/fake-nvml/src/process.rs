//! Processes on a simulated GPU (`process = …` lines) and what NVML's process queries report
//! about them at scenario time `t`.

use crate::profile::Profile;

/// Which NVML list a process appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `nvmlDeviceGetComputeRunningProcesses_v3`.
    Compute,
    /// `nvmlDeviceGetGraphicsRunningProcesses_v3`.
    Graphics,
}

/// One `process = pid=P [sm=PROFILE|none] [start=T] [end=T] [kind=compute|graphics] [gi=G]`
/// line.
#[derive(Debug, Clone, PartialEq)]
pub struct Process {
    /// PID.
    pub pid: u32,
    /// SM utilization in percent; `None` = no utilization samples for it.
    pub sm: Option<Profile>,
    /// Present for `start <= t < end`.
    pub start: f64,
    /// See `start`; `f64::INFINITY` by default.
    pub end: f64,
    /// Compute or graphics list.
    pub kind: Kind,
    /// `gi=G`: the MIG GPU instance it runs in; listed on that instance's MIG device handle
    /// (and on the parent, as real NVML lists every instance's processes there).
    pub gi: Option<u32>,
}

impl Process {
    /// Parses the value of a `process` line.
    pub fn parse(value: &str) -> Result<Process, String> {
        let mut p = Process {
            pid: 0,
            sm: None,
            start: 0.0,
            end: f64::INFINITY,
            kind: Kind::Compute,
            gi: None,
        };
        let mut pid = None;
        for item in value.split_whitespace() {
            let (key, v) = item
                .split_once('=')
                .ok_or_else(|| format!("process: `{item}` must be KEY=VALUE"))?;
            match key {
                "pid" => {
                    pid = Some(
                        v.parse::<u32>()
                            .map_err(|_| format!("process: bad pid `{v}`"))?,
                    )
                }
                "sm" if v == "none" => p.sm = None,
                "sm" => p.sm = Some(Profile::parse(v)?),
                "gi" => {
                    p.gi = Some(
                        v.parse::<u32>()
                            .map_err(|_| format!("process: bad gi `{v}`"))?,
                    )
                }
                "start" => p.start = num(v)?,
                "end" => p.end = num(v)?,
                "kind" => {
                    p.kind = match v {
                        "compute" => Kind::Compute,
                        "graphics" => Kind::Graphics,
                        other => {
                            return Err(format!(
                                "process: kind must be compute or graphics, got `{other}`"
                            ))
                        }
                    }
                }
                other => return Err(format!("process: unknown key `{other}`")),
            }
        }
        p.pid = pid
            .filter(|&p| p > 0)
            .ok_or("process: needs pid=N (N > 0)")?;
        if p.end <= p.start {
            return Err(format!("process {}: end must be after start", p.pid));
        }
        Ok(p)
    }

    /// Whether it runs at `t`.
    pub fn running_at(&self, t: f64) -> bool {
        self.start <= t && t < self.end
    }

    /// Its SM utilization sample at `t` in percent (clamped, rounded), if it has samples.
    pub fn sm_at(&self, t: f64) -> Option<u32> {
        let sm = self.sm.as_ref()?;
        Some(sm.value_at(t.max(0.0)).clamp(0.0, 100.0).round() as u32)
    }
}

fn num(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("process: `{v}` is not a time >= 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_answers() {
        let p = Process::parse("pid=42 sm=const:60 start=1 end=3 kind=graphics").expect("ok");
        assert_eq!(
            (p.pid, p.kind, p.start, p.end),
            (42, Kind::Graphics, 1.0, 3.0)
        );
        assert!(!p.running_at(0.5) && p.running_at(1.0) && !p.running_at(3.0));
        assert_eq!(p.sm_at(2.0), Some(60));
        let q = Process::parse("pid=7").expect("ok");
        assert_eq!(
            (q.sm_at(1.0), q.end, q.kind),
            (None, f64::INFINITY, Kind::Compute)
        );
        for bad in [
            "",
            "pid=0",
            "pid=x",
            "pid=1 end=0",
            "pid=1 color=red",
            "pid=1 sm",
        ] {
            assert!(Process::parse(bad).is_err(), "{bad}");
        }
    }
}
