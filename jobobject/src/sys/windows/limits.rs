//! Limits: CPU rate control, the extended limits (memory, processes, affinity, kill on close)
//! and I/O rate control.
//!
//! Every limit is read back after it is set: a system that accepts a limit without applying
//! it (Wine 8 stores none of the extended limits) gets [`Error::Unsupported`], never a limit
//! claimed but not applied.

use std::sync::{Mutex, PoisonError};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::JobObjects::{
    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE, JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
    JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED, JOB_OBJECT_IO_RATE_CONTROL_ENABLE, JOB_OBJECT_LIMIT,
    JOB_OBJECT_LIMIT_ACTIVE_PROCESS, JOB_OBJECT_LIMIT_AFFINITY, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_JOB_TIME, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME, JOBOBJECT_CPU_RATE_CONTROL_INFORMATION,
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOBOBJECT_IO_RATE_CONTROL_INFORMATION, JobObjectCpuRateControlInformation,
    JobObjectExtendedLimitInformation,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessAffinityMask};

use super::errors;
use super::handle;
use super::info;
use crate::{CpuLimit, Error, JobLimits, Limit};

/// Serializes read-modify-write of the extended limits within this process.
static EXTENDED: Mutex<()> = Mutex::new(());

/// The logical CPUs of the host, as a mask.
pub(super) fn available_cpus() -> u64 {
    let mut process = 0usize;
    let mut system = 0usize;
    // SAFETY: the pseudo-handle of this process; both masks are writable.
    let ok = unsafe { GetProcessAffinityMask(GetCurrentProcess(), &mut process, &mut system) };
    if ok == 0 || system == 0 {
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(64);
        return if count == 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
    }
    system as u64
}

/// The extended limits to change, in one read-modify-write.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Extended {
    pub(super) memory: Limit<u64>,
    pub(super) processes: Limit<u32>,
    pub(super) affinity: Limit<u64>,
    /// Set JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE (or keep it, where the system reads back no
    /// flags).
    pub(super) kill_on_close: bool,
}

impl Extended {
    /// Whether no limit (besides kill on close) changes.
    pub(super) fn is_empty(&self) -> bool {
        self.memory == Limit::Keep && self.processes == Limit::Keep && self.affinity == Limit::Keep
    }
}

/// Applies `changes` to the extended limits, keeping every other flag, and reads them back.
/// The flags to write back: a job time limit that someone set stays as it is, its time
/// used so far included (`JOB_OBJECT_LIMIT_JOB_TIME` written again would restart it, and
/// `JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME` keeps it; the two may not go together).
fn keep_job_time(flags: JOB_OBJECT_LIMIT) -> JOB_OBJECT_LIMIT {
    if flags & JOB_OBJECT_LIMIT_JOB_TIME == 0 {
        return flags;
    }
    (flags & !JOB_OBJECT_LIMIT_JOB_TIME) | JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME
}

pub(super) fn set_extended(job: HANDLE, label: &str, changes: Extended) -> Result<(), Error> {
    if changes.is_empty() && !changes.kill_on_close {
        return Ok(());
    }
    let _guard = EXTENDED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut limits = info::extended_limits(job)
        .map_err(|err| errors::maybe_unsupported(label, "query the extended limits", err))?;
    let flags = &mut limits.BasicLimitInformation.LimitFlags;
    let memory = flag(flags, JOB_OBJECT_LIMIT_JOB_MEMORY, changes.memory);
    let processes = flag(flags, JOB_OBJECT_LIMIT_ACTIVE_PROCESS, changes.processes);
    let affinity = flag(flags, JOB_OBJECT_LIMIT_AFFINITY, changes.affinity);
    if let Some(bytes) = memory {
        limits.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    let basic = &mut limits.BasicLimitInformation;
    if let Some(count) = processes {
        basic.ActiveProcessLimit = count;
    }
    if let Some(mask) = affinity {
        basic.Affinity = mask as usize;
    }
    if changes.kill_on_close {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    basic.LimitFlags = keep_job_time(basic.LimitFlags);
    info::set(job, JobObjectExtendedLimitInformation, &limits)
        .map_err(|err| errors::maybe_unsupported(label, "set the extended limits", err))?;

    let read = info::extended_limits(job)
        .map_err(|err| errors::maybe_unsupported(label, "query the extended limits", err))?;
    let flags = read.BasicLimitInformation.LimitFlags;
    let has = |flag: JOB_OBJECT_LIMIT| flags & flag != 0;
    let basic = &read.BasicLimitInformation;
    let applied = [
        (
            "the job memory limit",
            changes.memory,
            has(JOB_OBJECT_LIMIT_JOB_MEMORY) && read.JobMemoryLimit != 0,
            true,
        ),
        (
            "the active process limit",
            changes.processes.map(u64::from),
            has(JOB_OBJECT_LIMIT_ACTIVE_PROCESS),
            processes.is_none_or(|count| basic.ActiveProcessLimit == count),
        ),
        (
            "the CPU affinity",
            changes.affinity,
            has(JOB_OBJECT_LIMIT_AFFINITY),
            affinity.is_none_or(|mask| basic.Affinity as u64 & mask != 0),
        ),
    ];
    for (what, change, flagged, value_ok) in applied {
        let ok = match change {
            Limit::Keep => true,
            Limit::Set(_) => flagged && value_ok,
            Limit::Clear => !flagged,
        };
        if !ok {
            return Err(errors::not_applied(label, what));
        }
    }
    // Wine applies kill on close but reads back no flags at all: check it on Windows only.
    if changes.kill_on_close
        && handle::wine_version().is_none()
        && !has(JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)
    {
        return Err(errors::not_applied(label, "kill on job close"));
    }
    Ok(())
}

/// Sets or clears `bit` of `flags` as `limit` says; the value to store when it sets one.
fn flag<T>(flags: &mut JOB_OBJECT_LIMIT, bit: JOB_OBJECT_LIMIT, limit: Limit<T>) -> Option<T> {
    match limit {
        Limit::Keep => None,
        Limit::Set(value) => {
            *flags |= bit;
            Some(value)
        }
        Limit::Clear => {
            *flags &= !bit;
            None
        }
    }
}

fn extended(job: HANDLE, label: &str) -> Result<JOBOBJECT_EXTENDED_LIMIT_INFORMATION, Error> {
    info::extended_limits(job)
        .map_err(|err| errors::maybe_unsupported(label, "query the extended limits", err))
}

/// The job memory limit.
pub(super) fn memory_limit(job: HANDLE, label: &str) -> Result<Option<u64>, Error> {
    let limits = extended(job, label)?;
    let set = limits.BasicLimitInformation.LimitFlags & JOB_OBJECT_LIMIT_JOB_MEMORY != 0;
    Ok((set && limits.JobMemoryLimit != 0).then_some(limits.JobMemoryLimit as u64))
}

/// The active process limit.
pub(super) fn max_processes(job: HANDLE, label: &str) -> Result<Option<u32>, Error> {
    let basic = extended(job, label)?.BasicLimitInformation;
    let set = basic.LimitFlags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS != 0;
    Ok(set.then_some(basic.ActiveProcessLimit))
}

/// The job's own affinity, `None` without one.
pub(super) fn cpu_affinity(job: HANDLE, label: &str) -> Result<Option<u64>, Error> {
    let basic = extended(job, label)?.BasicLimitInformation;
    let set = basic.LimitFlags & JOB_OBJECT_LIMIT_AFFINITY != 0 && basic.Affinity != 0;
    Ok(set.then_some(basic.Affinity as u64))
}

/// Sets a CPU weight or rate, or neither (`None`); the structure replaces the previous one, so
/// the other kind is cleared (not OR-ed in beside it).
fn set_cpu(job: HANDLE, label: &str, limit: Option<CpuLimit>) -> Result<(), Error> {
    let info = match limit {
        Some(CpuLimit::Weight(weight)) => JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE
                | JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 { Weight: weight },
        },
        Some(CpuLimit::Rate(rate)) => JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 { CpuRate: rate },
        },
        None => JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: 0,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 { CpuRate: 0 },
        },
    };
    info::set(job, JobObjectCpuRateControlInformation, &info)
        .map_err(|err| errors::maybe_unsupported(label, "set the CPU rate control", err))?;
    // The system may round a value; only a kind that reads back other than set is not applied.
    let applied = match (limit, cpu(job, label)?) {
        (None, read) => read.is_none(),
        (Some(CpuLimit::Weight(_)), Some(CpuLimit::Weight(w))) => w != 0,
        (Some(CpuLimit::Rate(_)), Some(CpuLimit::Rate(r))) => r != 0,
        _ => false,
    };
    if applied {
        Ok(())
    } else {
        Err(errors::not_applied(label, "the CPU rate control"))
    }
}

/// The CPU limit, `None` without one.
pub(super) fn cpu(job: HANDLE, label: &str) -> Result<Option<CpuLimit>, Error> {
    let info: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION =
        info::query(job, JobObjectCpuRateControlInformation)
            .map_err(|err| errors::maybe_unsupported(label, "query the CPU rate control", err))?;
    let flags = info.ControlFlags;
    if flags & JOB_OBJECT_CPU_RATE_CONTROL_ENABLE == 0 {
        return Ok(None);
    }
    // SAFETY: all the union's members are integers over the same bytes; the flags say which
    // one the system filled.
    let (weight, rate) = unsafe { (info.Anonymous.Weight, info.Anonymous.CpuRate) };
    Ok(if flags & JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED != 0 {
        Some(CpuLimit::Weight(weight))
    } else if flags & JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP != 0 {
        Some(CpuLimit::Rate(rate))
    } else {
        None
    })
}

/// Sets the I/O limits for every volume (a null volume name); `None` leaves one unlimited, and
/// two `None`s turn the rate control off.
fn set_io(
    job: HANDLE,
    label: &str,
    bandwidth: Option<u64>,
    iops: Option<u64>,
) -> Result<(), Error> {
    let signed = |value: Option<u64>, what: &str| {
        i64::try_from(value.unwrap_or(0)).map_err(|_| {
            Error::invalid(format!(
                "an I/O {what} limit of at most {} per second",
                i64::MAX
            ))
        })
    };
    let (max_bandwidth, max_iops) = (signed(bandwidth, "bandwidth")?, signed(iops, "operations")?);
    let enable = if bandwidth.is_some() || iops.is_some() {
        JOB_OBJECT_IO_RATE_CONTROL_ENABLE as u32
    } else {
        0
    };
    let set = handle::set_io_rate_control()
        .ok_or_else(|| errors::missing_function(label, "SetIoRateControlInformationJobObject"))?;
    let info = JOBOBJECT_IO_RATE_CONTROL_INFORMATION {
        MaxIops: max_iops,
        MaxBandwidth: max_bandwidth,
        ReservationIops: 0,
        VolumeName: std::ptr::null(),
        BaseIoSize: 0,
        ControlFlags: enable,
    };
    // SAFETY: `job` is valid and `info` a complete structure in the SDK's field order.
    if unsafe { set(job, &info) } == 0 {
        let err = std::io::Error::last_os_error();
        return Err(errors::maybe_unsupported(
            label,
            "SetIoRateControlInformationJobObject",
            err,
        ));
    }
    let read = io(job, label)?;
    // The system may round a value; only one that reads back set or unset otherwise than
    // asked is not applied.
    if read.0.is_some() != bandwidth.is_some() || read.1.is_some() != iops.is_some() {
        return Err(errors::not_applied(label, "the I/O rate control"));
    }
    Ok(())
}

/// The I/O limits for every volume: (bandwidth, operations), 0 when unlimited.
pub(super) fn io(job: HANDLE, label: &str) -> Result<(Option<u64>, Option<u64>), Error> {
    let query = handle::query_io_rate_control()
        .ok_or_else(|| errors::missing_function(label, "QueryIoRateControlInformationJobObject"))?;
    let free = handle::free_memory_job_object()
        .ok_or_else(|| errors::missing_function(label, "FreeMemoryJobObject"))?;
    let mut blocks: *mut JOBOBJECT_IO_RATE_CONTROL_INFORMATION = std::ptr::null_mut();
    let mut count = 0u32;
    // SAFETY: `job` is valid, a null volume asks for every block, and the out-pointers are
    // writable; the system allocates the blocks, freed below with FreeMemoryJobObject.
    if unsafe { query(job, std::ptr::null(), &mut blocks, &mut count) } == 0 {
        let err = std::io::Error::last_os_error();
        return Err(errors::maybe_unsupported(
            label,
            "QueryIoRateControlInformationJobObject",
            err,
        ));
    }
    if blocks.is_null() || count == 0 {
        return Ok((None, None));
    }
    // SAFETY: the call returned `count` initialized blocks at `blocks`.
    let slice = unsafe { std::slice::from_raw_parts(blocks, count as usize) };
    // The block for every volume has no volume name; else take the first.
    let block = slice
        .iter()
        .find(|block| {
            block.VolumeName.is_null() || {
                // SAFETY: a non-null name is a NUL-terminated string inside the allocation.
                unsafe { *block.VolumeName == 0 }
            }
        })
        .unwrap_or(&slice[0]);
    let limit = |value: i64| u64::try_from(value).ok().filter(|&v| v != 0);
    let result = if block.ControlFlags & JOB_OBJECT_IO_RATE_CONTROL_ENABLE as u32 != 0 {
        (limit(block.MaxBandwidth), limit(block.MaxIops))
    } else {
        (None, None)
    };
    // SAFETY: `blocks` was allocated by the query and is freed once, after its last use.
    unsafe { free(blocks.cast()) };
    Ok(result)
}

/// Checks every value of `limits`, then changes what it says: the CPU limit, then the extended
/// limits in one write, then I/O. A missing I/O rate control fails before anything changes
/// (the current I/O limits are read first). `kill_on_close` keeps that flag where the system
/// does not report it back (Wine).
/// The limits only Linux has: setting one is `Unsupported` (before anything changes), and
/// clearing one is nothing to do.
fn refuse_linux_only(label: &str, limits: &JobLimits) -> Result<(), Error> {
    let refused = [
        (
            limits.memory_high,
            "a soft memory limit (Windows job limits are hard)",
        ),
        (
            limits.swap,
            "a swap limit (Windows counts committed memory, wherever it lies)",
        ),
    ];
    match refused
        .iter()
        .find(|(limit, _)| matches!(limit, Limit::Set(_)))
    {
        Some((_, what)) => Err(Error::Unsupported {
            what: format!("job {label}: {what}"),
        }),
        None => Ok(()),
    }
}

pub(super) fn set_resource_limits(
    job: HANDLE,
    label: &str,
    limits: &JobLimits,
    kill_on_close: bool,
) -> Result<(), Error> {
    limits.check(available_cpus())?;
    refuse_linux_only(label, limits)?;
    let io_now = if limits.io_bandwidth != Limit::Keep || limits.io_iops != Limit::Keep {
        Some(io(job, label)?)
    } else {
        None
    };
    match limits.cpu {
        Limit::Keep => {}
        Limit::Set(limit) => set_cpu(job, label, Some(limit))?,
        Limit::Clear => set_cpu(job, label, None)?,
    }
    let changes = Extended {
        memory: limits.memory,
        processes: limits.max_processes,
        affinity: limits.cpu_affinity,
        kill_on_close,
    };
    if !changes.is_empty() {
        set_extended(job, label, changes)?;
    }
    if let Some((bandwidth, iops)) = io_now {
        let pick = |change: Limit<u64>, now: Option<u64>| match change {
            Limit::Keep => now,
            Limit::Set(value) => Some(value),
            Limit::Clear => None,
        };
        set_io(
            job,
            label,
            pick(limits.io_bandwidth, bandwidth),
            pick(limits.io_iops, iops),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_time_limit_is_kept_not_restarted() {
        let others = JOB_OBJECT_LIMIT_JOB_MEMORY | JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        assert_eq!(keep_job_time(others), others);
        assert_eq!(
            keep_job_time(others | JOB_OBJECT_LIMIT_JOB_TIME),
            others | JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME
        );
    }
}
