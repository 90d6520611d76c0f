//! Host CPU and memory power where no sensor exists (cloud VMs, where RAPL is not passed
//! through), by the Cloud Carbon Footprint (CCF) methodology:
//!
//! - CPU: `W = vCPUs × (min + utilization × (max − min))`, with `min` and `max` the published
//!   watts per vCPU of the processor's microarchitecture (average of all of them when it is not
//!   recognised), `utilization` the busy share of CPU time over the sample interval;
//! - memory: `W = GiB × 0.392`, CCF's memory coefficient (0.000392 kWh per GB-hour).
//!
//! The coefficients are CCF's AWS constants (cloud-carbon-footprint, packages/aws
//! `AWSFootprintEstimationConstants`, as published in 2021–2023, derived from SPECpower
//! results in the ccf-coefficients repository); see docs/hosts.md for the table and the limits
//! of the method. Everything here is pure: the backend reads `/proc` and the cgroup files and
//! reports the utilization and the size (vCPUs, GiB) that the model scales by.

use crate::backend::host_estimate::CpuIdentity;
use crate::units::Watts;

/// CCF's memory coefficient, watts per GiB of memory (0.000392 kWh per GB-hour).
pub const MEMORY_WATTS_PER_GIB: f64 = 0.392;

/// A processor microarchitecture with published coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Microarchitecture {
    /// Intel Sandy Bridge.
    SandyBridge,
    /// Intel Ivy Bridge.
    IvyBridge,
    /// Intel Haswell.
    Haswell,
    /// Intel Broadwell.
    Broadwell,
    /// Intel Skylake.
    Skylake,
    /// Intel Cascade Lake (and Cooper Lake, the same core).
    CascadeLake,
    /// Intel Coffee Lake.
    CoffeeLake,
    /// AMD EPYC 1st generation (Naples).
    EpycGen1,
    /// AMD EPYC 2nd generation (Rome).
    EpycGen2,
    /// AWS Graviton2 (Arm Neoverse N1).
    Graviton2,
}

/// Watts per vCPU at 0 % and 100 % utilization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCoefficients {
    /// Watts per vCPU when idle.
    pub min: Watts,
    /// Watts per vCPU at full load.
    pub max: Watts,
}

/// CCF's coefficients (AWS constants): microarchitecture, name, min and max W per vCPU.
pub const TABLE: [(Microarchitecture, &str, f64, f64); 10] = [
    (Microarchitecture::SandyBridge, "Sandy Bridge", 2.17, 8.58),
    (Microarchitecture::IvyBridge, "Ivy Bridge", 3.04, 8.25),
    (Microarchitecture::Haswell, "Haswell", 1.00, 4.74),
    (Microarchitecture::Broadwell, "Broadwell", 0.71, 3.69),
    (Microarchitecture::Skylake, "Skylake", 0.65, 4.26),
    (Microarchitecture::CascadeLake, "Cascade Lake", 0.64, 3.97),
    (Microarchitecture::CoffeeLake, "Coffee Lake", 1.14, 5.42),
    (Microarchitecture::EpycGen1, "AMD EPYC 1st Gen", 0.82, 2.55),
    (Microarchitecture::EpycGen2, "AMD EPYC 2nd Gen", 0.47, 1.69),
    (Microarchitecture::Graviton2, "AWS Graviton2", 0.47, 1.69),
];

/// CCF's average over AWS microarchitectures, for a processor not in [`TABLE`].
pub const AVERAGE: CpuCoefficients = CpuCoefficients {
    min: Watts(0.74),
    max: Watts(3.5),
};

impl Microarchitecture {
    /// Its name as the table gives it.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .map_or("unknown", |row| row.1)
    }

    /// Its coefficients from the table.
    pub fn coefficients(self) -> CpuCoefficients {
        TABLE
            .iter()
            .find(|row| row.0 == self)
            .map_or(AVERAGE, |&(_, _, min, max)| CpuCoefficients {
                min: Watts(min),
                max: Watts(max),
            })
    }
}

/// The microarchitecture of a processor, from its family, model and stepping numbers (the
/// model name of an Intel Xeon doesn't say it), if it is one with published coefficients.
pub fn identify(cpu: &CpuIdentity) -> Option<Microarchitecture> {
    use Microarchitecture::*;
    if cpu.arm_part == Some(0xd0c) {
        return Some(Graviton2);
    }
    let (family, model) = (cpu.family?, cpu.model?);
    match (cpu.vendor.as_str(), family, model) {
        ("GenuineIntel", 6, 0x2a | 0x2d) => Some(SandyBridge),
        ("GenuineIntel", 6, 0x3a | 0x3e) => Some(IvyBridge),
        ("GenuineIntel", 6, 0x3c | 0x3f | 0x45 | 0x46) => Some(Haswell),
        ("GenuineIntel", 6, 0x3d | 0x47 | 0x4f | 0x56) => Some(Broadwell),
        // Skylake-SP and Cascade Lake share model 0x55; Cascade Lake is stepping 5 and later.
        ("GenuineIntel", 6, 0x55) if cpu.stepping.is_some_and(|s| s >= 5) => Some(CascadeLake),
        ("GenuineIntel", 6, 0x4e | 0x55 | 0x5e) => Some(Skylake),
        ("GenuineIntel", 6, 0x9e) => Some(CoffeeLake),
        ("AuthenticAMD", 0x17, 0x00..=0x0f) => Some(EpycGen1),
        ("AuthenticAMD", 0x17, 0x30..=0x3f) => Some(EpycGen2),
        _ => None,
    }
}

/// How a host's CPU and memory power is estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostModel {
    /// Watts per vCPU.
    pub cpu: CpuCoefficients,
    /// Watts per GiB of memory.
    pub memory_watts_per_gib: f64,
}

impl HostModel {
    /// CPU power of `vcpus` at `utilization` (0–1; clamped).
    pub fn cpu_power(&self, vcpus: f64, utilization: f64) -> Watts {
        let u = if utilization.is_finite() {
            utilization.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let per_vcpu = self.cpu.min.0 + u * (self.cpu.max.0 - self.cpu.min.0);
        Watts(vcpus.max(0.0) * per_vcpu)
    }

    /// Memory power of `gib` GiB.
    pub fn memory_power(&self, gib: f64) -> Watts {
        Watts(gib.max(0.0) * self.memory_watts_per_gib)
    }
}

impl HostModel {
    /// The model of one host estimate domain (`cpu` or `memory`), if it is one.
    pub fn for_domain(&self, domain: &str) -> Option<DomainModel> {
        match domain {
            "cpu" => Some(DomainModel::Cpu(self.cpu)),
            "memory" => Some(DomainModel::Memory {
                watts_per_gib: self.memory_watts_per_gib,
            }),
            _ => None,
        }
    }
}

/// The model of one host domain: what its power is from its size and utilization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DomainModel {
    /// CPU: the size is vCPUs.
    Cpu(CpuCoefficients),
    /// Memory: the size is GiB.
    Memory {
        /// Watts per GiB.
        watts_per_gib: f64,
    },
}

impl DomainModel {
    /// Power at `size` (vCPUs or GiB) and, for the CPU, `utilization`; `None` where the
    /// reading lacks what the model needs.
    pub fn power(&self, size: Option<f64>, utilization: Option<f64>) -> Option<Watts> {
        let model = |cpu| HostModel {
            cpu,
            memory_watts_per_gib: 0.0,
        };
        match *self {
            DomainModel::Cpu(c) => Some(model(c).cpu_power(size?, utilization?)),
            DomainModel::Memory { watts_per_gib } => Some(Watts(size?.max(0.0) * watts_per_gib)),
        }
    }
}

/// The `--estimate.*` overrides of the host model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostEstimateSettings {
    /// `--estimate.cpu.min-watts-per-vcpu`.
    pub cpu_min: Option<Watts>,
    /// `--estimate.cpu.max-watts-per-vcpu`.
    pub cpu_max: Option<Watts>,
    /// `--estimate.memory.watts-per-gb`.
    pub memory_watts_per_gib: Option<f64>,
}

impl HostEstimateSettings {
    /// The model for a processor of `arch`: the table's coefficients (or the average), each
    /// replaced by its flag where one is given.
    pub fn model(&self, arch: Option<Microarchitecture>) -> HostModel {
        let table = arch.map_or(AVERAGE, Microarchitecture::coefficients);
        HostModel {
            cpu: CpuCoefficients {
                min: self.cpu_min.unwrap_or(table.min),
                max: self.cpu_max.unwrap_or(table.max),
            },
            memory_watts_per_gib: self.memory_watts_per_gib.unwrap_or(MEMORY_WATTS_PER_GIB),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86(vendor: &str, family: u32, model: u32, stepping: u32) -> CpuIdentity {
        CpuIdentity {
            vendor: vendor.into(),
            family: Some(family),
            model: Some(model),
            stepping: Some(stepping),
            ..CpuIdentity::default()
        }
    }

    #[test]
    fn ccf_formula() {
        let m = HostEstimateSettings::default().model(Some(Microarchitecture::CascadeLake));
        // 8 vCPUs at 50 %: 8 × (0.64 + 0.5 × (3.97 − 0.64)) = 18.44 W.
        assert!((m.cpu_power(8.0, 0.5).0 - 18.44).abs() < 1e-9);
        assert!((m.cpu_power(8.0, 0.0).0 - 5.12).abs() < 1e-9);
        assert!((m.cpu_power(8.0, 1.0).0 - 31.76).abs() < 1e-9);
        assert!((m.cpu_power(8.0, 3.0).0 - 31.76).abs() < 1e-9);
        assert!((m.cpu_power(8.0, f64::NAN).0 - 5.12).abs() < 1e-9);
        // 64 GiB × 0.392 = 25.088 W.
        assert!((m.memory_power(64.0).0 - 25.088).abs() < 1e-9);
    }

    #[test]
    fn domain_models() {
        let m = HostEstimateSettings::default().model(Some(Microarchitecture::EpycGen2));
        let cpu = m.for_domain("cpu").expect("cpu");
        // 4 vCPUs at 25 %: 4 × (0.47 + 0.25 × 1.22) = 3.1 W.
        let w = cpu.power(Some(4.0), Some(0.25)).expect("power");
        assert!((w.0 - 3.1).abs() < 1e-9);
        assert_eq!(cpu.power(Some(4.0), None), None);
        let memory = m.for_domain("memory").expect("memory");
        let w = memory.power(Some(10.0), None).expect("power");
        assert!((w.0 - 3.92).abs() < 1e-9);
        assert_eq!(m.for_domain("package-0"), None);
    }

    #[test]
    fn flags_override_the_table() {
        let s = HostEstimateSettings {
            cpu_min: Some(Watts(1.0)),
            cpu_max: None,
            memory_watts_per_gib: Some(0.5),
        };
        let m = s.model(Some(Microarchitecture::Skylake));
        assert_eq!(m.cpu.min, Watts(1.0));
        assert_eq!(m.cpu.max, Watts(4.26));
        assert_eq!(m.memory_watts_per_gib, 0.5);
        assert_eq!(HostEstimateSettings::default().model(None).cpu, AVERAGE);
    }

    #[test]
    fn identifies_microarchitectures() {
        let arch = |c: CpuIdentity| identify(&c);
        use Microarchitecture::*;
        assert_eq!(arch(x86("GenuineIntel", 6, 85, 7)), Some(CascadeLake));
        assert_eq!(arch(x86("GenuineIntel", 6, 85, 4)), Some(Skylake));
        assert_eq!(arch(x86("GenuineIntel", 6, 79, 1)), Some(Broadwell));
        assert_eq!(arch(x86("GenuineIntel", 6, 63, 2)), Some(Haswell));
        assert_eq!(arch(x86("AuthenticAMD", 23, 49, 0)), Some(EpycGen2));
        assert_eq!(arch(x86("AuthenticAMD", 23, 1, 2)), Some(EpycGen1));
        // Milan and Sapphire Rapids have no AWS coefficients: the average applies.
        assert_eq!(arch(x86("AuthenticAMD", 25, 1, 1)), None);
        assert_eq!(arch(x86("GenuineIntel", 6, 143, 8)), None);
        let n1 = CpuIdentity {
            arm_part: Some(0xd0c),
            ..CpuIdentity::default()
        };
        assert_eq!(arch(n1), Some(Graviton2));
        assert_eq!(arch(CpuIdentity::default()), None);
        assert_eq!(CascadeLake.name(), "Cascade Lake");
    }
}
