//! The text of `/proc/stat`, `/proc/cpuinfo`, `/proc/meminfo` and the cgroup v2 limits
//! (`cpu.max`, `cpuset.cpus.effective`, `memory.max`), parsed into what the host estimate
//! needs. Pure functions over text: the backend reads the files.

use super::usage::{CpuIdentity, CpuTimes};

/// `/proc/stat`: the aggregate `cpu` line's times and the number of online CPUs (`cpuN`
/// lines), or what is wrong with it.
pub fn parse_stat(text: &str) -> Result<(CpuTimes, u32), String> {
    let mut times = None;
    let mut online = 0u32;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if rest.starts_with(' ') {
            times = Some(aggregate(rest)?);
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            online += 1;
        }
    }
    let times = times.ok_or("no aggregate \"cpu\" line")?;
    if online == 0 {
        return Err("no \"cpuN\" line (no online CPU)".into());
    }
    Ok((times, online))
}

/// user nice system idle iowait irq softirq steal [guest guest_nice]; kernels before 2.6.11
/// have fewer fields, which count as 0.
fn aggregate(fields: &str) -> Result<CpuTimes, String> {
    let values = fields
        .split_whitespace()
        .map(|f| {
            f.parse::<u64>()
                .map_err(|_| format!("{f:?} is not a count"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if values.len() < 4 {
        return Err(format!("{} fields on the cpu line, need 4", values.len()));
    }
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .try_fold(0u64, |s, &i| s.checked_add(at(i)));
    let waiting = [3, 4, 7]
        .iter()
        .try_fold(0u64, |s, &i| s.checked_add(at(i)));
    match (busy, waiting) {
        (Some(busy), Some(waiting)) => busy
            .checked_add(waiting)
            .map(|total| CpuTimes { busy, total })
            .ok_or_else(|| "counts overflow".to_string()),
        _ => Err("counts overflow".into()),
    }
}

/// `/proc/cpuinfo`: the first processor's identity.
pub fn parse_cpuinfo(text: &str) -> CpuIdentity {
    let mut id = CpuIdentity::default();
    for line in text.lines() {
        if line.trim().is_empty() && !id.vendor.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "vendor_id" => id.vendor = value.to_string(),
            "cpu family" => id.family = value.parse().ok(),
            "model" => id.model = value.parse().ok(),
            "stepping" => id.stepping = value.parse().ok(),
            "model name" => id.model_name = value.to_string(),
            "CPU part" => {
                id.arm_part = u32::from_str_radix(value.trim_start_matches("0x"), 16).ok()
            }
            _ => {}
        }
    }
    id
}

/// `/proc/meminfo`: `MemTotal` in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .and_then(|kb| kb.checked_mul(1024))
}

/// cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD", in µs): the CPUs' worth of time
/// allowed; `None` for no limit or anything but two positive integers.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota: u64 = fields.next()?.parse().ok()?;
    let period: u64 = fields.next().unwrap_or("100000").parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// cgroup v2 `cpuset.cpus.effective` ("0-3,8"): how many CPUs it lists.
pub fn parse_cpuset(text: &str) -> Option<u32> {
    let mut count = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        count = count.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    (count > 0).then_some(count)
}

/// cgroup v2 `memory.max` ("max" or bytes).
pub fn parse_memory_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_aggregate_and_online_cpus() {
        let text = "cpu  100 5 50 800 10 3 2 30 7 0\ncpu0 50 2 25 400 5 1 1 15 0 0\ncpu1 50 3 25 400 5 2 1 15 0 0\nintr 1 2\nctxt 5\n";
        let (t, online) = parse_stat(text).expect("parses");
        assert_eq!(t.busy, 100 + 5 + 50 + 3 + 2);
        assert_eq!(t.total, t.busy + 800 + 10 + 30);
        assert_eq!(online, 2);
        assert!(parse_stat("cpu  1 2 x 4\ncpu0 1 2 3 4\n").is_err());
        assert!(parse_stat("cpu  1 2 3\ncpu0 1 2 3 4\n").is_err());
        assert!(parse_stat("cpu0 1 2 3 4\n").is_err());
        assert!(parse_stat("cpu  1 2 3 4\n").is_err());
        assert!(parse_stat("").is_err());
        let max = format!("cpu  {} 1 0 0\ncpu0 1 1 1 1\n", u64::MAX);
        assert!(parse_stat(&max).is_err());
    }

    #[test]
    fn cpuinfo_first_processor() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\nstepping\t: 7\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\n";
        let id = parse_cpuinfo(text);
        assert_eq!(id.vendor, "GenuineIntel");
        assert_eq!(
            (id.family, id.model, id.stepping),
            (Some(6), Some(85), Some(7))
        );
        assert!(id.model_name.contains("8259CL"));
        let arm = parse_cpuinfo("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n");
        assert_eq!(arm.arm_part, Some(0xd0c));
    }

    #[test]
    fn meminfo_and_cgroup_limits() {
        assert_eq!(
            parse_meminfo("MemTotal:       16384 kB\nMemFree: 1 kB\n"),
            Some(16384 * 1024)
        );
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("250000 100000\n"), Some(2.5));
        assert_eq!(parse_cpu_max("5 inf"), None);
        assert_eq!(parse_cpu_max("1.5 1"), None);
        assert_eq!(parse_cpu_max("0 100000"), None);
        assert_eq!(parse_cpuset("0-3,8\n"), Some(5));
        assert_eq!(parse_cpuset("3-1"), None);
        assert_eq!(parse_cpuset(""), None);
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("1073741824\n"), Some(1 << 30));
    }
}
