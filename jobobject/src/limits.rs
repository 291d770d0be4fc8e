//! Resource limits of a job: what they are, how a change says "set", "keep" or "remove", and
//! the checks every platform makes before it asks its kernel.

use crate::Error;

/// A CPU limit: a relative weight, or a hard cap. A job has at most one of them: setting one
/// removes the other.
///
/// ```
/// use jobobject::{CpuLimit, JobLimits, Limit};
///
/// let quarter = JobLimits::new().cpu(CpuLimit::Rate(2_500)); // a quarter of the machine
/// assert_eq!(quarter.cpu, Limit::Set(CpuLimit::Rate(2_500)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuLimit {
    /// A relative weight from 1 to 9, 5 being the share of a job without one: under
    /// contention, a job gets CPU time in proportion to its weight.
    Weight(u32),
    /// A hard cap from 1 to 10000: percent × 100 of all the host's CPUs (2500 is a quarter of
    /// the machine).
    Rate(u32),
}

/// The highest CPU weight.
pub const MAX_CPU_WEIGHT: u32 = 9;
/// The highest CPU rate: all CPUs of the host.
pub const MAX_CPU_RATE: u32 = 10_000;
/// The highest I/O bandwidth limit, in bytes per second, on every platform (Windows holds a
/// signed 64-bit number).
pub const MAX_IO_BANDWIDTH: u64 = i64::MAX as u64;

/// What [`JobObject::set_resource_limits`](crate::JobObject::set_resource_limits) does to one
/// limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Limit<T> {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set it, or change it, to this value.
    Set(T),
    /// Remove it: no limit.
    Clear,
}

/// Limits to change at once with
/// [`JobObject::set_resource_limits`](crate::JobObject::set_resource_limits): each is kept,
/// set or removed ([`Limit`]). Every field is checked before any is applied. On Linux the call
/// is all or nothing: when the kernel refuses a value, the limits applied before it are put
/// back to exactly what they were.
///
/// ```
/// use jobobject::{CpuLimit, JobLimits, Limit};
///
/// let mut limits = JobLimits::new()
///     .memory(512 << 20)
///     .cpu(CpuLimit::Rate(2_500)) // a quarter of the machine
///     .max_processes(64);
/// limits.io_bandwidth = Limit::Clear; // and no I/O bandwidth limit
/// assert_eq!(limits.cpu_affinity, Limit::Keep); // left as it is
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct JobLimits {
    /// A CPU weight or rate (see [`CpuLimit`]); clearing removes either.
    pub cpu: Limit<CpuLimit>,
    /// The CPUs the job may run on: bit `i` allows logical CPU `i`. Clearing lets it run on
    /// every CPU it could without a limit.
    pub cpu_affinity: Limit<u64>,
    /// Memory for the whole job, in bytes. On Linux at least one page (the kernel counts whole
    /// pages, rounding down), and less than 2^63 bytes less one page (from there the kernel
    /// holds no limit).
    pub memory: Limit<u64>,
    /// A soft memory limit for the whole job, in bytes: above it the kernel throttles the
    /// job's allocations and reclaims its memory hard, but kills nothing (a [`memory`] limit
    /// is where the OOM killer acts). Linux cgroup v2 only (`memory.high`); on a v1 memory
    /// controller (hybrid and legacy hosts) and on Windows setting it is
    /// [`Error::Unsupported`](crate::Error::Unsupported). The same bounds as `memory`.
    ///
    /// [`memory`]: Self::memory
    pub memory_high: Limit<u64>,
    /// Swap the whole job may use, in bytes; `0` lets it swap nothing. Linux cgroup v2 only
    /// (`memory.swap.max`, which counts swap alone: v1's `memsw` limits memory and swap
    /// together, which is another limit); elsewhere setting it is
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    pub swap: Limit<u64>,
    /// I/O bytes per second, on every disk: at most [`MAX_IO_BANDWIDTH`].
    pub io_bandwidth: Limit<u64>,
    /// I/O operations per second, on every disk. On Linux at most 4294967294 (the kernel
    /// holds 32 bits, the last meaning no limit).
    pub io_iops: Limit<u64>,
    /// Processes alive in the job at once. On Linux at most 4194304 (the kernel's
    /// `PID_MAX_LIMIT`).
    pub max_processes: Limit<u32>,
}

impl JobLimits {
    /// No change to any limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`cpu`](Self::cpu).
    pub fn cpu(mut self, limit: CpuLimit) -> Self {
        self.cpu = Limit::Set(limit);
        self
    }

    /// Sets [`cpu_affinity`](Self::cpu_affinity).
    pub fn cpu_affinity(mut self, mask: u64) -> Self {
        self.cpu_affinity = Limit::Set(mask);
        self
    }

    /// Sets [`memory`](Self::memory).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Limit::Set(bytes);
        self
    }

    /// Sets [`memory_high`](Self::memory_high).
    pub fn memory_high(mut self, bytes: u64) -> Self {
        self.memory_high = Limit::Set(bytes);
        self
    }

    /// Sets [`swap`](Self::swap).
    pub fn swap(mut self, bytes: u64) -> Self {
        self.swap = Limit::Set(bytes);
        self
    }

    /// Sets [`io_bandwidth`](Self::io_bandwidth).
    pub fn io_bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.io_bandwidth = Limit::Set(bytes_per_second);
        self
    }

    /// Sets [`io_iops`](Self::io_iops).
    pub fn io_iops(mut self, operations_per_second: u64) -> Self {
        self.io_iops = Limit::Set(operations_per_second);
        self
    }

    /// Sets [`max_processes`](Self::max_processes).
    pub fn max_processes(mut self, count: u32) -> Self {
        self.max_processes = Limit::Set(count);
        self
    }

    /// Checks every value to set, the affinity against the CPUs the host has (`available`,
    /// a mask): what every platform refuses.
    pub(crate) fn check(&self, available_cpus: u64) -> Result<(), Error> {
        if let Limit::Set(limit) = self.cpu {
            check_cpu(limit)?;
        }
        if let Limit::Set(mask) = self.cpu_affinity {
            check_affinity(mask, available_cpus)?;
        }
        if let Limit::Set(bytes) = self.memory {
            check_nonzero(bytes, "a memory limit")?;
        }
        if let Limit::Set(bytes) = self.memory_high {
            check_nonzero(bytes, "a soft memory limit")?;
        }
        if let Limit::Set(rate) = self.io_bandwidth {
            check_nonzero(rate, "an I/O bandwidth limit")?;
            if rate > MAX_IO_BANDWIDTH {
                return Err(Error::invalid(format!(
                    "an I/O bandwidth limit must be at most {MAX_IO_BANDWIDTH} bytes per second, \
                     got {rate}"
                )));
            }
        }
        if let Limit::Set(rate) = self.io_iops {
            check_nonzero(rate, "an I/O operations limit")?;
        }
        if let Limit::Set(count) = self.max_processes {
            check_nonzero(u64::from(count), "a process limit")?;
        }
        Ok(())
    }
}

impl<T> Limit<T> {
    /// The same change, of the value `f` makes (as [`Option::map`]).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Limit<U> {
        match self {
            Limit::Keep => Limit::Keep,
            Limit::Set(value) => Limit::Set(f(value)),
            Limit::Clear => Limit::Clear,
        }
    }
}

impl<T> From<Option<T>> for Limit<T> {
    /// `Some` sets, `None` removes: what the single setters
    /// ([`set_memory_limit`](crate::JobObject::set_memory_limit) and the like) take.
    fn from(value: Option<T>) -> Self {
        value.map_or(Limit::Clear, Limit::Set)
    }
}

/// Checks a CPU limit's range for its kind.
pub(crate) fn check_cpu(limit: CpuLimit) -> Result<(), Error> {
    let (value, max, what) = match limit {
        CpuLimit::Weight(value) => (value, MAX_CPU_WEIGHT, "CPU weight"),
        CpuLimit::Rate(value) => (value, MAX_CPU_RATE, "CPU rate"),
    };
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} must be 1 to {max}, got {value}"
        )))
    }
}

/// Checks an affinity mask against the CPUs the host has (`available`, a mask).
pub(crate) fn check_affinity(mask: u64, available: u64) -> Result<(), Error> {
    if mask == 0 {
        return Err(Error::invalid(
            "CPU affinity mask may not be 0 (to remove the limit, clear it)",
        ));
    }
    let unknown = mask & !available;
    if unknown != 0 {
        return Err(Error::invalid(format!(
            "CPU affinity {mask:#x} (CPUs {}) names CPUs this host does not have: {} (it has \
             {})",
            crate::cpu_list::format(mask),
            crate::cpu_list::format(unknown),
            crate::cpu_list::format(available),
        )));
    }
    Ok(())
}

/// A limit of 0 is no limit anyone means: removing one is saying so (`None`, `Limit::Clear`).
fn check_nonzero(value: u64, what: &str) -> Result<(), Error> {
    if value == 0 {
        return Err(Error::invalid(format!(
            "{what} of 0 (to remove the limit, clear it)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use CpuLimit::*;
        for (limit, ok) in [
            (Weight(0), false),
            (Weight(1), true),
            (Weight(9), true),
            (Weight(10), false),
            (Rate(0), false),
            (Rate(1), true),
            (Rate(10_000), true),
            (Rate(10_001), false),
        ] {
            assert_eq!(check_cpu(limit).is_ok(), ok, "{limit:?}");
        }
        assert!(check_affinity(0, 0b11).is_err());
        assert!(check_affinity(0b100, 0b11).is_err());
        assert!(check_affinity(0b11, 0b11).is_ok());
    }

    #[test]
    fn job_limits_are_checked_as_a_whole() {
        assert!(
            JobLimits::new()
                .cpu(CpuLimit::Rate(0))
                .check(u64::MAX)
                .is_err()
        );
        let zero = JobLimits::new().memory(1 << 20).io_iops(0);
        assert!(zero.check(u64::MAX).is_err());
        assert!(JobLimits::new().max_processes(0).check(u64::MAX).is_err());
        assert!(JobLimits::default().check(1).is_ok());
        let mut cleared = JobLimits::new();
        cleared.memory = Limit::Clear;
        cleared.cpu = Limit::Clear;
        assert!(cleared.check(1).is_ok());
    }

    #[test]
    fn options_become_changes() {
        assert_eq!(Limit::from(Some(5)), Limit::Set(5));
        assert_eq!(Limit::<u32>::from(None), Limit::Clear);
    }
}
