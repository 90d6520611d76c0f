//! Scenario file parsing. The format is documented at the crate root.

use crate::mig::{MigInstance, MigMode};
use crate::process::Process;
use crate::profile::Profile;
use std::collections::HashSet;

/// What `nvmlInit_v2` / `nvmlInitWithFlags` returns (`init = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitOutcome {
    /// `ok`: initialization succeeds.
    #[default]
    Ok,
    /// `driver_not_loaded`: `NVML_ERROR_DRIVER_NOT_LOADED`.
    DriverNotLoaded,
    /// `no_permission`: `NVML_ERROR_NO_PERMISSION`.
    NoPermission,
    /// `unknown`: `NVML_ERROR_UNKNOWN`.
    Unknown,
}

/// A half-open time interval `[start, end)` in scenario seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// First second inside the window.
    pub start: f64,
    /// First second after the window (may be `f64::INFINITY`).
    pub end: f64,
}

impl Window {
    /// Whether `start <= t < end`.
    pub fn contains(&self, t: f64) -> bool {
        self.start <= t && t < self.end
    }
}

/// One simulated GPU (one `[gpu]` section).
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// `name`: the marketing name returned by `nvmlDeviceGetName`.
    pub name: String,
    /// `uuid`: returned by `nvmlDeviceGetUUID`, looked up by `nvmlDeviceGetHandleByUUID`.
    pub uuid: String,
    /// `power`: power draw in watts; `None` = `unsupported`.
    pub power: Option<Profile>,
    /// `power_window`: 0 = instantaneous readings, S > 0 = average over the last S seconds.
    pub power_window: f64,
    /// `limit_w`: enforced power limit in watts; `None` = `unsupported`.
    pub limit_w: Option<f64>,
    /// `counter`: whether the total-energy counter is supported.
    pub counter: bool,
    /// `counter_scale`: the counter advances this many times the true energy (a miscalibrated
    /// counter; 1 = exact).
    pub counter_scale: f64,
    /// `util`: GPU utilization in percent; `None` = `unsupported`.
    pub util: Option<Profile>,
    /// `reset_at`: times at which the energy counter restarts from 0 (sorted).
    pub reset_at: Vec<f64>,
    /// `lost_at` / `lost_until`: when every query returns `NVML_ERROR_GPU_IS_LOST`.
    pub lost: Option<Window>,
    /// `error_at`: when every reading returns `NVML_ERROR_UNKNOWN`.
    pub errors: Vec<Window>,
    /// `glitch_at`: when the power reading is an impossible 10 x limit.
    pub glitches: Vec<Window>,
    /// `hang_at`: when every reading blocks until the window ends, as a hung driver call.
    pub hangs: Vec<Window>,
    /// `process`: processes on the GPU.
    pub processes: Vec<Process>,
    /// `process_util`: whether per-process utilization is supported (`no` as on MIG).
    pub process_util: bool,
    /// `process_sample_period`: seconds between per-process utilization samples (0: a fresh
    /// sample at every call). Real NVML fills its buffer about once a second.
    pub process_sample_period: f64,
    /// `mig`: MIG mode (see [`MigMode`]).
    pub mig: MigMode,
    /// `sm_count`: SMs of the whole GPU (`nvmlDeviceGetAttributes_v2`).
    pub sm_count: u32,
    /// `gpm`: whether GPM is supported (Hopper and newer).
    pub gpm: bool,
    /// `mig_instance`: MIG devices, in the order written.
    pub mig_instances: Vec<MigInstance>,
}

impl Gpu {
    /// A GPU with every key at its default, for position `index`.
    pub fn with_defaults(index: usize) -> Self {
        Self {
            name: "NVIDIA H100 80GB HBM3".to_string(),
            uuid: format!("GPU-00000000-0000-0000-0000-{index:012x}"),
            power: Some(Profile::Const(100.0)),
            power_window: 0.0,
            limit_w: Some(700.0),
            counter: true,
            counter_scale: 1.0,
            util: Some(Profile::Const(100.0)),
            reset_at: Vec::new(),
            lost: None,
            errors: Vec::new(),
            glitches: Vec::new(),
            hangs: Vec::new(),
            processes: Vec::new(),
            process_util: true,
            process_sample_period: 0.0,
            mig: MigMode::Off,
            sm_count: 132,
            gpm: false,
            mig_instances: Vec::new(),
        }
    }
}

/// A parsed scenario file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    /// `epoch`: unix time (seconds) of scenario time 0; `None` = time of init.
    pub epoch: Option<f64>,
    /// `init`: what initialization returns.
    pub init: InitOutcome,
    /// The `[gpu]` sections, in index order.
    pub gpus: Vec<Gpu>,
}

/// Per-section bookkeeping that only matters while parsing.
struct Section {
    gpu: Gpu,
    seen: HashSet<String>,
    lost_at: Option<f64>,
    lost_until: Option<(f64, usize)>,
    /// The GPU's index (default MIG UUIDs derive from it).
    index: usize,
}

impl Scenario {
    /// Parses a scenario file. Errors start with `line N:` where a line is at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut scenario = Scenario::default();
        let mut global_seen = HashSet::new();
        let mut section: Option<Section> = None;
        let mut uuids = HashSet::new();

        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let at = |msg: String| format!("line {line_no}: {msg}");
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                let name: String = line.chars().filter(|c| !c.is_whitespace()).collect();
                if name != "[gpu]" {
                    return Err(at(format!("unknown section `{line}` (only [gpu] exists)")));
                }
                if let Some(done) = section.take() {
                    scenario.gpus.push(finish(done)?);
                }
                section = Some(Section {
                    gpu: Gpu::with_defaults(scenario.gpus.len()),
                    seen: HashSet::new(),
                    lost_at: None,
                    lost_until: None,
                    index: scenario.gpus.len(),
                });
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| at(format!("expected `key = value` or `[gpu]`, got `{line}`")))?;
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(at("missing key before `=`".to_string()));
            }
            if value.is_empty() {
                return Err(at(format!("missing value for `{key}`")));
            }
            match section.as_mut() {
                None => {
                    if !global_seen.insert(key.to_string()) {
                        return Err(at(format!("duplicate key `{key}`")));
                    }
                    global_key(&mut scenario, key, value).map_err(at)?;
                }
                Some(sec) => {
                    if !is_list_key(key) && !sec.seen.insert(key.to_string()) {
                        return Err(at(format!("duplicate key `{key}` in this [gpu] section")));
                    }
                    gpu_key(sec, key, value, line_no).map_err(at)?;
                    if key == "uuid" && !uuids.insert(sec.gpu.uuid.clone()) {
                        return Err(at(format!(
                            "uuid `{}` is used by another GPU",
                            sec.gpu.uuid
                        )));
                    }
                }
            }
        }
        if let Some(done) = section.take() {
            scenario.gpus.push(finish(done)?);
        }
        // Default UUIDs may collide with explicit ones given to other GPUs.
        let mut all = HashSet::new();
        for (index, gpu) in scenario.gpus.iter().enumerate() {
            if !all.insert(gpu.uuid.as_str()) {
                return Err(format!(
                    "GPU {index}: uuid `{}` is used by another GPU",
                    gpu.uuid
                ));
            }
        }
        Ok(scenario)
    }
}

fn is_list_key(key: &str) -> bool {
    matches!(
        key,
        "reset_at" | "error_at" | "glitch_at" | "hang_at" | "process" | "mig_instance"
    )
}

fn global_key(scenario: &mut Scenario, key: &str, value: &str) -> Result<(), String> {
    match key {
        "epoch" => scenario.epoch = Some(number(value)?),
        "init" => {
            scenario.init = match value {
                "ok" => InitOutcome::Ok,
                "driver_not_loaded" => InitOutcome::DriverNotLoaded,
                "no_permission" => InitOutcome::NoPermission,
                "unknown" => InitOutcome::Unknown,
                other => {
                    return Err(format!(
                    "init must be ok, driver_not_loaded, no_permission or unknown, got `{other}`"
                ))
                }
            }
        }
        other if is_gpu_key(other) => {
            return Err(format!(
                "`{other}` is a per-GPU key: put it after a [gpu] line"
            ))
        }
        other => return Err(format!("unknown global key `{other}`")),
    }
    Ok(())
}

fn is_gpu_key(key: &str) -> bool {
    matches!(
        key,
        "name"
            | "uuid"
            | "power"
            | "power_window"
            | "limit_w"
            | "counter"
            | "counter_scale"
            | "util"
            | "reset_at"
            | "lost_at"
            | "lost_until"
            | "error_at"
            | "glitch_at"
            | "hang_at"
            | "process"
            | "process_util"
            | "process_sample_period"
            | "mig"
            | "sm_count"
            | "gpm"
            | "mig_instance"
    )
}

fn gpu_key(sec: &mut Section, key: &str, value: &str, line_no: usize) -> Result<(), String> {
    let gpu = &mut sec.gpu;
    match key {
        "name" => gpu.name = c_string(key, value)?,
        "uuid" => gpu.uuid = c_string(key, value)?,
        "power" => {
            gpu.power = optional(value, Profile::parse)?;
            if let Some(p) = &gpu.power {
                if p.min_value() < 0.0 {
                    return Err("power must never be negative".to_string());
                }
            }
        }
        "power_window" => gpu.power_window = non_negative(key, value)?,
        "limit_w" => {
            gpu.limit_w = optional(value, |v| non_negative(key, v))?;
        }
        "counter" => {
            gpu.counter = match value {
                "yes" => true,
                "no" => false,
                other => return Err(format!("counter must be yes or no, got `{other}`")),
            }
        }
        "counter_scale" => gpu.counter_scale = non_negative(key, value)?,
        "util" => gpu.util = optional(value, Profile::parse)?,
        "reset_at" => {
            for t in value.split(',') {
                gpu.reset_at.push(number(t)?);
            }
            gpu.reset_at.sort_by(f64::total_cmp);
        }
        "lost_at" => sec.lost_at = Some(number(value)?),
        "lost_until" => sec.lost_until = Some((number(value)?, line_no)),
        "error_at" => gpu.errors.extend(windows(value)?),
        "glitch_at" => gpu.glitches.extend(windows(value)?),
        "hang_at" => gpu.hangs.extend(windows(value)?),
        "process" => {
            let p = Process::parse(value)?;
            if gpu.processes.iter().any(|q| q.pid == p.pid) {
                return Err(format!("process {} is listed twice", p.pid));
            }
            gpu.processes.push(p);
        }
        "process_util" => {
            gpu.process_util = match value {
                "yes" => true,
                "no" => false,
                other => return Err(format!("process_util must be yes or no, got `{other}`")),
            }
        }
        "process_sample_period" => {
            gpu.process_sample_period = match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => v,
                _ => {
                    return Err(format!(
                        "process_sample_period must be seconds >= 0, got `{value}`"
                    ))
                }
            }
        }
        "mig" => gpu.mig = MigMode::parse(value)?,
        "sm_count" => {
            gpu.sm_count = value
                .parse()
                .map_err(|_| format!("sm_count must be a whole number, got `{value}`"))?
        }
        "gpm" => {
            gpu.gpm = match value {
                "yes" => true,
                "no" => false,
                other => return Err(format!("gpm must be yes or no, got `{other}`")),
            }
        }
        "mig_instance" => {
            gpu.mig_instances
                .push(MigInstance::parse(value, sec.index)?);
        }
        "epoch" | "init" => {
            return Err(format!(
                "`{key}` is a global key: put it before the first [gpu] line"
            ))
        }
        other => return Err(format!("unknown [gpu] key `{other}`")),
    }
    Ok(())
}

/// Validates cross-key constraints of a finished section.
fn finish(sec: Section) -> Result<Gpu, String> {
    let mut gpu = sec.gpu;
    crate::mig::check_overlaps(&gpu.mig_instances)?;
    match (sec.lost_at, sec.lost_until) {
        (None, None) => {}
        (Some(start), None) => {
            gpu.lost = Some(Window {
                start,
                end: f64::INFINITY,
            })
        }
        (None, Some((_, line))) => {
            return Err(format!(
                "line {line}: lost_until needs lost_at in the same [gpu] section"
            ))
        }
        (Some(start), Some((end, line))) => {
            if end <= start {
                return Err(format!(
                    "line {line}: lost_until ({end}) must be after lost_at ({start})"
                ));
            }
            gpu.lost = Some(Window { start, end });
        }
    }
    Ok(gpu)
}

/// `unsupported` → `None`, anything else parsed by `f`.
fn optional<T>(
    value: &str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if value == "unsupported" {
        Ok(None)
    } else {
        f(value).map(Some)
    }
}

/// `T:D[,T:D...]` → windows `[T, T + D)`.
fn windows(value: &str) -> Result<Vec<Window>, String> {
    value
        .split(',')
        .map(|item| {
            let (t, d) = item
                .split_once(':')
                .ok_or_else(|| format!("`{}` must be START:DURATION", item.trim()))?;
            let start = number(t)?;
            let duration = non_negative("duration", d)?;
            Ok(Window {
                start,
                end: start + duration,
            })
        })
        .collect()
}

fn c_string(key: &str, value: &str) -> Result<String, String> {
    if value.contains('\0') {
        Err(format!("{key} must not contain NUL"))
    } else {
        Ok(value.to_string())
    }
}

fn non_negative(key: &str, value: &str) -> Result<f64, String> {
    let v = number(value)?;
    if v < 0.0 {
        Err(format!("{key} must be >= 0, got {v}"))
    } else {
        Ok(v)
    }
}

fn number(s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_scenario_has_defaults() {
        let s = Scenario::parse("# nothing\n\n").expect("parse");
        assert_eq!(s, Scenario::default());
        assert_eq!(s.init, InitOutcome::Ok);
        assert!(s.gpus.is_empty());
    }

    #[test]
    fn gpu_defaults() {
        let s = Scenario::parse("[gpu]\n[gpu]\n").expect("parse");
        assert_eq!(s.gpus.len(), 2);
        let g = &s.gpus[1];
        assert_eq!(g.name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.uuid, "GPU-00000000-0000-0000-0000-000000000001");
        assert_eq!(g.power, Some(Profile::Const(100.0)));
        assert_eq!(g.power_window, 0.0);
        assert_eq!(g.limit_w, Some(700.0));
        assert!(g.counter);
        assert_eq!(g.util, Some(Profile::Const(100.0)));
        assert!(g.reset_at.is_empty() && g.errors.is_empty() && g.glitches.is_empty());
        assert_eq!(g.lost, None);
    }

    #[test]
    fn full_scenario() {
        let text = "\
# global
epoch=1700000000.5
init = ok

[gpu]
name = NVIDIA A100-SXM4-40GB   # trailing comment
uuid = GPU-aaaa
power = square:100:400:2
power_window = 1
limit_w = unsupported
counter = no
util = trace:0=0,10=100
reset_at = 30, 10
reset_at = 20
lost_at = 5
lost_until = 6.5
error_at = 1:0.5, 3:1
glitch_at = 8:2

[ gpu ]
power = unsupported
util = unsupported
lost_at = 100
";
        let s = Scenario::parse(text).expect("parse");
        assert_eq!(s.epoch, Some(1_700_000_000.5));
        let g = &s.gpus[0];
        assert_eq!(g.name, "NVIDIA A100-SXM4-40GB");
        assert_eq!(g.uuid, "GPU-aaaa");
        assert_eq!(g.power_window, 1.0);
        assert_eq!(g.limit_w, None);
        assert!(!g.counter);
        assert_eq!(g.reset_at, vec![10.0, 20.0, 30.0]);
        assert_eq!(
            g.lost,
            Some(Window {
                start: 5.0,
                end: 6.5
            })
        );
        assert_eq!(
            g.errors,
            vec![
                Window {
                    start: 1.0,
                    end: 1.5
                },
                Window {
                    start: 3.0,
                    end: 4.0
                }
            ]
        );
        assert_eq!(
            g.glitches,
            vec![Window {
                start: 8.0,
                end: 10.0
            }]
        );
        let g = &s.gpus[1];
        assert_eq!(g.power, None);
        assert_eq!(g.util, None);
        assert_eq!(
            g.lost,
            Some(Window {
                start: 100.0,
                end: f64::INFINITY
            })
        );
    }

    #[test]
    fn hang_windows_accumulate() {
        let s = Scenario::parse("[gpu]\nhang_at = 2:3, 10:0.5\nhang_at = 20:1\n[gpu]\n")
            .expect("parse");
        let w = |start, end| Window { start, end };
        assert_eq!(
            s.gpus[0].hangs,
            vec![w(2.0, 5.0), w(10.0, 10.5), w(20.0, 21.0)]
        );
        assert!(s.gpus[1].hangs.is_empty(), "other GPUs don't hang");
    }

    #[test]
    fn init_outcomes() {
        for (v, want) in [
            ("ok", InitOutcome::Ok),
            ("driver_not_loaded", InitOutcome::DriverNotLoaded),
            ("no_permission", InitOutcome::NoPermission),
            ("unknown", InitOutcome::Unknown),
        ] {
            let s = Scenario::parse(&format!("init = {v}")).expect("parse");
            assert_eq!(s.init, want);
        }
    }

    fn err(text: &str) -> String {
        Scenario::parse(text).expect_err("should fail")
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("epoch = 1\nepoch = 2", "line 2:", "duplicate"),
            ("\n\nbogus line", "line 3:", "key = value"),
            ("init = maybe", "line 1:", "init must be"),
            ("power = const:1", "line 1:", "per-GPU key"),
            ("[gpu]\nepoch = 3", "line 2:", "global key"),
            ("[cpu]", "line 1:", "unknown section"),
            ("[gpu]\n# c\npower = sine:1", "line 3:", "unknown profile"),
            ("[gpu]\npower = const:-5", "line 2:", "negative"),
            ("[gpu]\npower = square:1:2:0", "line 2:", "period"),
            ("[gpu]\nname = a\nname = b", "line 3:", "duplicate"),
            ("[gpu]\ncounter = maybe", "line 2:", "yes or no"),
            ("[gpu]\nfoo = 1", "line 2:", "unknown [gpu] key"),
            ("[gpu]\nlimit_w = -1", "line 2:", ">= 0"),
            ("[gpu]\nerror_at = 5", "line 2:", "START:DURATION"),
            ("[gpu]\nerror_at = 5:-1", "line 2:", ">= 0"),
            ("[gpu]\nhang_at = 2", "line 2:", "START:DURATION"),
            ("[gpu]\nhang_at = 2:x", "line 2:", "finite"),
            ("[gpu]\nlost_until = 5", "line 2:", "needs lost_at"),
            (
                "[gpu]\nlost_at = 5\nlost_until = 4",
                "line 3:",
                "after lost_at",
            ),
            ("[gpu]\nuuid = X\n[gpu]\nuuid = X", "line 4:", "another GPU"),
            ("[gpu]\npower_window = nan", "line 2:", "finite"),
            ("[gpu]\nname =", "line 2:", "missing value"),
        ];
        for (text, line, what) in cases {
            let e = err(text);
            assert!(e.starts_with(line), "{text:?}: {e}");
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn default_uuid_collision_is_reported() {
        let e = err("[gpu]\nuuid = GPU-00000000-0000-0000-0000-000000000001\n[gpu]\n");
        assert!(e.contains("another GPU"), "{e}");
    }
}
