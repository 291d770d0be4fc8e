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
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOBOBJECT_CPU_RATE_CONTROL_INFORMATION,
    JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOBOBJECT_IO_RATE_CONTROL_INFORMATION, JobObjectCpuRateControlInformation,
    JobObjectExtendedLimitInformation,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessAffinityMask};

use super::errors;
use super::handle;
use super::info;
use crate::limits::{check_affinity, check_cpu, check_io};
use crate::{CpuRateControlType, Error, JobLimits};

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
    pub(super) memory: Option<u64>,
    pub(super) processes: Option<u32>,
    pub(super) affinity: Option<u64>,
    /// Set JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE (or keep it, where the system reads back no
    /// flags).
    pub(super) kill_on_close: bool,
}

impl Extended {
    /// Whether no limit (besides kill on close) changes.
    pub(super) fn is_empty(&self) -> bool {
        self.memory.is_none() && self.processes.is_none() && self.affinity.is_none()
    }
}

/// Applies `changes` to the extended limits, keeping every other flag, and reads them back.
pub(super) fn set_extended(job: HANDLE, label: &str, changes: Extended) -> Result<(), Error> {
    if changes.is_empty() && !changes.kill_on_close {
        return Ok(());
    }
    let _guard = EXTENDED.lock().unwrap_or_else(PoisonError::into_inner);
    let mut limits = info::extended_limits(job)
        .map_err(|err| errors::maybe_unsupported(label, "query the extended limits", err))?;
    let basic = &mut limits.BasicLimitInformation;
    if let Some(bytes) = changes.memory {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        limits.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    let basic = &mut limits.BasicLimitInformation;
    if let Some(count) = changes.processes {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
        basic.ActiveProcessLimit = count;
    }
    if let Some(mask) = changes.affinity {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_AFFINITY;
        basic.Affinity = mask as usize;
    }
    if changes.kill_on_close {
        basic.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    info::set(job, JobObjectExtendedLimitInformation, &limits)
        .map_err(|err| errors::maybe_unsupported(label, "set the extended limits", err))?;

    let read = info::extended_limits(job)
        .map_err(|err| errors::maybe_unsupported(label, "query the extended limits", err))?;
    let flags = read.BasicLimitInformation.LimitFlags;
    let has = |flag: JOB_OBJECT_LIMIT| flags & flag != 0;
    if changes.memory.is_some() && (!has(JOB_OBJECT_LIMIT_JOB_MEMORY) || read.JobMemoryLimit == 0) {
        return Err(errors::not_applied(label, "the job memory limit"));
    }
    if let Some(count) = changes.processes {
        if !has(JOB_OBJECT_LIMIT_ACTIVE_PROCESS)
            || read.BasicLimitInformation.ActiveProcessLimit != count
        {
            return Err(errors::not_applied(label, "the active process limit"));
        }
    }
    if let Some(mask) = changes.affinity {
        if !has(JOB_OBJECT_LIMIT_AFFINITY) || read.BasicLimitInformation.Affinity as u64 & mask == 0
        {
            return Err(errors::not_applied(label, "the CPU affinity"));
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

/// The affinity: the job's own, else every CPU of the host.
pub(super) fn cpu_affinity(job: HANDLE, label: &str) -> Result<u64, Error> {
    let basic = extended(job, label)?.BasicLimitInformation;
    if basic.LimitFlags & JOB_OBJECT_LIMIT_AFFINITY != 0 && basic.Affinity != 0 {
        Ok(basic.Affinity as u64)
    } else {
        Ok(available_cpus())
    }
}

/// Sets a CPU weight or rate; the structure replaces the previous one, so the other kind is
/// cleared (not OR-ed in beside it).
pub(super) fn set_cpu(
    job: HANDLE,
    label: &str,
    kind: CpuRateControlType,
    value: u32,
) -> Result<(), Error> {
    check_cpu(kind, value)?;
    let info = match kind {
        CpuRateControlType::WeightBased => JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE
                | JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 { Weight: value },
        },
        CpuRateControlType::RateBased => JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 { CpuRate: value },
        },
    };
    info::set(job, JobObjectCpuRateControlInformation, &info)
        .map_err(|err| errors::maybe_unsupported(label, "set the CPU rate control", err))?;
    match cpu(job, label, kind)? {
        // The system may round a value; only one that reads back unset is not applied.
        Some(read) if read != 0 => Ok(()),
        _ => Err(errors::not_applied(label, "the CPU rate control")),
    }
}

/// The CPU limit of `kind`, `None` when that kind is not set.
pub(super) fn cpu(
    job: HANDLE,
    label: &str,
    kind: CpuRateControlType,
) -> Result<Option<u32>, Error> {
    let info: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION =
        info::query(job, JobObjectCpuRateControlInformation)
            .map_err(|err| errors::maybe_unsupported(label, "query the CPU rate control", err))?;
    let flags = info.ControlFlags;
    if flags & JOB_OBJECT_CPU_RATE_CONTROL_ENABLE == 0 {
        return Ok(None);
    }
    let weight_based = flags & JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED != 0;
    // SAFETY: all the union's members are integers over the same bytes; the flags say which
    // one the system filled.
    let (weight, rate) = unsafe { (info.Anonymous.Weight, info.Anonymous.CpuRate) };
    Ok(match kind {
        CpuRateControlType::WeightBased => weight_based.then_some(weight),
        CpuRateControlType::RateBased => {
            (!weight_based && flags & JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP != 0).then_some(rate)
        }
    })
}

/// Sets the I/O limits for every volume (a null volume name); 0 leaves one unlimited.
pub(super) fn set_io(
    job: HANDLE,
    label: &str,
    max_bandwidth: i64,
    max_iops: i64,
) -> Result<(), Error> {
    check_io(max_bandwidth, max_iops)?;
    let set = handle::set_io_rate_control()
        .ok_or_else(|| errors::missing_function(label, "SetIoRateControlInformationJobObject"))?;
    let info = JOBOBJECT_IO_RATE_CONTROL_INFORMATION {
        MaxIops: max_iops,
        MaxBandwidth: max_bandwidth,
        ReservationIops: 0,
        VolumeName: std::ptr::null(),
        BaseIoSize: 0,
        ControlFlags: JOB_OBJECT_IO_RATE_CONTROL_ENABLE as u32,
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
    let (bandwidth, iops) = io(job, label)?;
    // The system may round a value; only one that reads back unset is not applied.
    if (max_bandwidth != 0 && bandwidth == 0) || (max_iops != 0 && iops == 0) {
        return Err(errors::not_applied(label, "the I/O rate control"));
    }
    Ok(())
}

/// The I/O limits for every volume: (bandwidth, operations), 0 when unlimited.
pub(super) fn io(job: HANDLE, label: &str) -> Result<(i64, i64), Error> {
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
        return Ok((0, 0));
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
    let result = if block.ControlFlags & JOB_OBJECT_IO_RATE_CONTROL_ENABLE as u32 != 0 {
        (block.MaxBandwidth, block.MaxIops)
    } else {
        (0, 0)
    };
    // SAFETY: `blocks` was allocated by the query and is freed once, after its last use.
    unsafe { free(blocks.cast()) };
    Ok(result)
}

/// Checks every field of `limits`, then applies the non-zero ones: CPU, then the extended
/// limits in one write, then I/O. A missing I/O rate control fails before anything changes
/// (the current I/O limits are read first). `kill_on_close` keeps that flag where the system
/// does not report it back (Wine).
pub(super) fn set_resource_limits(
    job: HANDLE,
    label: &str,
    limits: &JobLimits,
    kill_on_close: bool,
) -> Result<(), Error> {
    limits.check(available_cpus())?;
    let io_wanted = limits.max_bandwidth != 0 || limits.max_iops != 0;
    // The I/O field left at 0 keeps its current value.
    let io_now = if io_wanted {
        Some(io(job, label)?)
    } else {
        None
    };
    if limits.cpu_limit != 0 {
        set_cpu(job, label, CpuRateControlType::RateBased, limits.cpu_limit)?;
    } else if limits.cpu_weight != 0 {
        set_cpu(
            job,
            label,
            CpuRateControlType::WeightBased,
            limits.cpu_weight,
        )?;
    }
    let changes = Extended {
        memory: (limits.memory_limit_in_bytes != 0).then_some(limits.memory_limit_in_bytes),
        processes: (limits.max_processes != 0).then_some(limits.max_processes),
        affinity: (limits.cpu_affinity != 0).then_some(limits.cpu_affinity),
        kill_on_close,
    };
    if !changes.is_empty() {
        set_extended(job, label, changes)?;
    }
    if let Some((bandwidth, iops)) = io_now {
        let pick = |wanted: i64, now: i64| if wanted != 0 { wanted } else { now };
        set_io(
            job,
            label,
            pick(limits.max_bandwidth, bandwidth),
            pick(limits.max_iops, iops),
        )?;
    }
    Ok(())
}

/// Checks an affinity mask against the host's CPUs.
pub(super) fn check_cpu_affinity(mask: u64) -> Result<(), Error> {
    check_affinity(mask, available_cpus())
}
