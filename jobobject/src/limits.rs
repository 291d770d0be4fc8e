//! Resource limits of a job.

/// Which kind of CPU limit [`JobObject::set_cpu_limit`](crate::JobObject::set_cpu_limit)
/// sets or [`cpu_limit`](crate::JobObject::cpu_limit) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuRateControlType {
    /// A relative weight from 1 to 9 (Windows' default is 5): under contention, a job gets
    /// CPU time in proportion to its weight.
    WeightBased,
    /// A hard cap from 1 to 10000: percent × 100 of all the host's CPUs (2500 is a quarter of
    /// the machine).
    RateBased,
}

/// The highest CPU weight.
pub const MAX_CPU_WEIGHT: u32 = 9;
/// The highest CPU rate: all CPUs of the host.
pub const MAX_CPU_RATE: u32 = 10_000;

/// Limits to apply at once with
/// [`JobObject::set_resource_limits`](crate::JobObject::set_resource_limits).
///
/// A zero field leaves that limit as it is. Every field is checked before any is applied. On
/// Linux the call is all or nothing: when the kernel refuses a value, the limits applied before
/// it are put back to exactly what they were.
///
/// ```
/// use jobobject::JobLimits;
///
/// let limits = JobLimits {
///     memory_limit_in_bytes: 512 << 20,
///     cpu_limit: 2_500, // a quarter of the machine
///     max_processes: 64,
///     ..JobLimits::default()
/// };
/// assert_eq!(limits.cpu_weight, 0); // left as it is
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct JobLimits {
    /// CPU rate, 1-10000 (see [`CpuRateControlType::RateBased`]).
    pub cpu_limit: u32,
    /// CPU weight, 1-9 (see [`CpuRateControlType::WeightBased`]); not together with
    /// `cpu_limit`.
    pub cpu_weight: u32,
    /// CPU affinity: bit `i` allows logical CPU `i`.
    pub cpu_affinity: u64,
    /// Memory for the whole job, in bytes. On Linux at least one page (the kernel counts whole
    /// pages, rounding down), and less than 2^63 bytes less one page (from there the kernel
    /// holds no limit).
    pub memory_limit_in_bytes: u64,
    /// I/O operations per second, on every disk. On Linux at most 4294967294 (the kernel
    /// holds 32 bits, the last meaning no limit).
    pub max_iops: i64,
    /// I/O bytes per second, on every disk.
    pub max_bandwidth: i64,
    /// Processes alive in the job at once. On Linux at most 4194304 (the kernel's
    /// `PID_MAX_LIMIT`).
    pub max_processes: u32,
}

use crate::Error;

/// Checks a CPU limit's range for its kind.
pub(crate) fn check_cpu(kind: CpuRateControlType, value: u32) -> Result<(), Error> {
    let (max, what) = match kind {
        CpuRateControlType::WeightBased => (MAX_CPU_WEIGHT, "CPU weight"),
        CpuRateControlType::RateBased => (MAX_CPU_RATE, "CPU rate"),
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
        return Err(Error::invalid("CPU affinity mask may not be 0"));
    }
    let unknown = mask & !available;
    if unknown != 0 {
        return Err(Error::invalid(format!(
            "CPU affinity {mask:#x} names CPUs this host does not have (mask {unknown:#x}; \
             available {available:#x})"
        )));
    }
    Ok(())
}

/// Checks I/O limits: negative values are invalid.
pub(crate) fn check_io(max_bandwidth: i64, max_iops: i64) -> Result<(), Error> {
    if max_bandwidth < 0 || max_iops < 0 {
        return Err(Error::invalid(format!(
            "I/O limits may not be negative (bandwidth {max_bandwidth}, IOPS {max_iops})"
        )));
    }
    Ok(())
}

impl JobLimits {
    /// Checks every non-zero field, against the host's CPUs for the affinity.
    pub(crate) fn check(&self, available_cpus: u64) -> Result<(), Error> {
        if self.cpu_limit != 0 && self.cpu_weight != 0 {
            return Err(Error::invalid(
                "a CPU rate and a CPU weight exclude each other: set one of them",
            ));
        }
        if self.cpu_limit != 0 {
            check_cpu(CpuRateControlType::RateBased, self.cpu_limit)?;
        }
        if self.cpu_weight != 0 {
            check_cpu(CpuRateControlType::WeightBased, self.cpu_weight)?;
        }
        if self.cpu_affinity != 0 {
            check_affinity(self.cpu_affinity, available_cpus)?;
        }
        check_io(self.max_bandwidth, self.max_iops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use CpuRateControlType::*;
        for (kind, value, ok) in [
            (WeightBased, 0, false),
            (WeightBased, 1, true),
            (WeightBased, 9, true),
            (WeightBased, 10, false),
            (RateBased, 0, false),
            (RateBased, 1, true),
            (RateBased, 10_000, true),
            (RateBased, 10_001, false),
        ] {
            assert_eq!(check_cpu(kind, value).is_ok(), ok, "{kind:?} {value}");
        }
        assert!(check_affinity(0, 0b11).is_err());
        assert!(check_affinity(0b100, 0b11).is_err());
        assert!(check_affinity(0b11, 0b11).is_ok());
        assert!(check_io(-1, 0).is_err());
        assert!(check_io(0, -5).is_err());
        assert!(check_io(0, 0).is_ok());
    }

    #[test]
    fn job_limits_are_checked_as_a_whole() {
        let both = JobLimits {
            cpu_limit: 100,
            cpu_weight: 5,
            ..JobLimits::default()
        };
        assert!(both.check(u64::MAX).is_err());
        let negative = JobLimits {
            memory_limit_in_bytes: 1 << 20,
            max_iops: -1,
            ..JobLimits::default()
        };
        assert!(negative.check(u64::MAX).is_err());
        assert!(JobLimits::default().check(1).is_ok());
    }
}
