//! cgroup resource options, validated the way Docker validates them.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::SpecError;
use crate::defaults;

/// CFS period used with `cpus` (Docker's `--cpus`), in microseconds.
pub const CPU_PERIOD: u64 = 100_000;

/// Smallest memory limit Docker accepts: 6 MiB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Smallest CFS quota the kernel accepts, in microseconds.
const MIN_CPU_QUOTA: i64 = 1_000;

/// Range of cgroup v1 `cpu.shares`.
const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

/// Requested resource limits; all optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes; `-1` for unlimited swap.
    pub memory_swap: Option<i64>,
    /// Relative CPU weight.
    pub cpu_shares: Option<u64>,
    /// Number of CPUs of time per period (fractional).
    pub cpus: Option<f64>,
    /// Maximum number of tasks; `-1` for unlimited.
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Validates the request and renders it, together with the device rules
    /// for a (non-)privileged container.
    pub fn to_oci(&self, privileged: bool) -> Result<LinuxResources, SpecError> {
        let mut res = LinuxResources::default();
        res.set_devices(Some(defaults::device_rules(privileged)));
        if let Some(memory) = self.memory_limits()? {
            res.set_memory(Some(memory));
        }
        if let Some(cpu) = self.cpu()? {
            res.set_cpu(Some(cpu));
        }
        if let Some(limit) = self.pids_limit {
            if limit <= 0 && limit != -1 {
                return Err(SpecError::invalid(
                    "pids_limit",
                    format!("{limit}: use a positive number, or -1 for unlimited"),
                ));
            }
            let mut pids = LinuxPids::default();
            pids.set_limit(limit);
            res.set_pids(Some(pids));
        }
        Ok(res)
    }

    /// The memory section, if any limit was asked for.
    fn memory_limits(&self) -> Result<Option<LinuxMemory>, SpecError> {
        if let Some(m) = self.memory
            && m < MIN_MEMORY
        {
            return Err(SpecError::invalid(
                "memory",
                format!("{m} bytes is below the 6 MiB minimum"),
            ));
        }
        match (self.memory, self.memory_swap) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SpecError::invalid(
                "memory_swap",
                "a swap limit needs a memory limit too",
            )),
            (Some(m), Some(s)) if s != -1 && s < m => Err(SpecError::invalid(
                "memory_swap",
                format!("{s} is below the memory limit {m} (it counts memory plus swap)"),
            )),
            (Some(m), swap) => {
                let mut mem = LinuxMemory::default();
                mem.set_limit(Some(m));
                mem.set_swap(swap);
                Ok(Some(mem))
            }
        }
    }

    /// The cpu section, if shares or a CPU count was asked for.
    fn cpu(&self) -> Result<Option<LinuxCpu>, SpecError> {
        if self.cpu_shares.is_none() && self.cpus.is_none() {
            return Ok(None);
        }
        let mut cpu = LinuxCpu::default();
        if let Some(shares) = self.cpu_shares {
            if !SHARES.contains(&shares) {
                return Err(SpecError::invalid(
                    "cpu_shares",
                    format!("{shares} is outside {}..={}", SHARES.start(), SHARES.end()),
                ));
            }
            cpu.set_shares(Some(shares));
        }
        if let Some(cpus) = self.cpus {
            let host = std::thread::available_parallelism().map_or(1, |n| n.get());
            let quota = (cpus * CPU_PERIOD as f64).round();
            if !cpus.is_finite() || quota < MIN_CPU_QUOTA as f64 || cpus > host as f64 {
                return Err(SpecError::invalid(
                    "cpus",
                    format!("{cpus}: the range is 0.01 to {host} on this host"),
                ));
            }
            cpu.set_period(Some(CPU_PERIOD));
            cpu.set_quota(Some(quota as i64));
        }
        Ok(Some(cpu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_asked_gives_only_device_rules() {
        let r = Resources::default().to_oci(false).unwrap();
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
        assert!(!r.devices().as_ref().unwrap().is_empty());
    }

    #[test]
    fn numbers_are_rendered() {
        let r = Resources {
            memory: Some(256 << 20),
            memory_swap: Some(512 << 20),
            cpu_shares: Some(512),
            cpus: Some(0.5),
            pids_limit: Some(100),
        }
        .to_oci(false)
        .unwrap();
        let mem = r.memory().unwrap();
        assert_eq!(mem.limit(), Some(256 << 20));
        assert_eq!(mem.swap(), Some(512 << 20));
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(r.pids().unwrap().limit(), 100);
    }

    #[test]
    fn memory_alone_leaves_swap_to_the_runtime() {
        let r = Resources {
            memory: Some(MIN_MEMORY),
            ..Default::default()
        };
        assert_eq!(r.to_oci(false).unwrap().memory().unwrap().swap(), None);
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad = [
            Resources {
                memory: Some(-1),
                ..Default::default()
            },
            Resources {
                memory: Some(1024),
                ..Default::default()
            },
            Resources {
                memory_swap: Some(1 << 30),
                ..Default::default()
            },
            Resources {
                memory: Some(1 << 30),
                memory_swap: Some(1 << 20),
                ..Default::default()
            },
            Resources {
                cpu_shares: Some(1),
                ..Default::default()
            },
            Resources {
                cpus: Some(0.0),
                ..Default::default()
            },
            Resources {
                cpus: Some(-2.0),
                ..Default::default()
            },
            Resources {
                cpus: Some(f64::NAN),
                ..Default::default()
            },
            Resources {
                cpus: Some(1e9),
                ..Default::default()
            },
            Resources {
                pids_limit: Some(0),
                ..Default::default()
            },
            Resources {
                pids_limit: Some(-5),
                ..Default::default()
            },
        ];
        for r in bad {
            assert!(
                matches!(r.to_oci(false), Err(SpecError::InvalidValue { .. })),
                "{r:?}"
            );
        }
        let unlimited = Resources {
            pids_limit: Some(-1),
            memory: Some(1 << 30),
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert!(unlimited.to_oci(false).is_ok());
    }
}
