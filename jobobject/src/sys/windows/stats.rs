//! Statistics: accounting, memory usage, I/O attribution, private working set.

use std::time::Duration;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::JobObjects::{
    IsProcessInJob, JOBOBJECT_IO_ATTRIBUTION_CONTROL_ENABLE, JOBOBJECT_IO_ATTRIBUTION_INFORMATION,
};
use windows_sys::Win32::System::Threading::PROCESS_QUERY_LIMITED_INFORMATION;

use super::handle::raw;
use super::info::{
    self, JOB_OBJECT_IO_ATTRIBUTION, JOB_OBJECT_MEMORY_USAGE_INFORMATION, MemoryUsageInformation,
};
use super::{errors, limits, process};
use crate::{Error, MemoryStats, ProcessorStats, StorageStats};

/// Windows counts CPU time in units of 100 ns.
fn hundred_ns(value: i64) -> Duration {
    Duration::from_nanos(u64::try_from(value).unwrap_or(0).saturating_mul(100))
}

/// JobObjectBasicAccountingInformation (class 1).
pub(super) fn processor(job: HANDLE, label: &str) -> Result<ProcessorStats, Error> {
    let info = info::accounting(job).map_err(|err| {
        errors::maybe_unsupported(label, "query JobObjectBasicAccountingInformation", err)
    })?;
    Ok(ProcessorStats {
        user_time: hundred_ns(info.TotalUserTime),
        kernel_time: hundred_ns(info.TotalKernelTime),
        page_faults: u64::from(info.TotalPageFaultCount),
        total_processes: info.TotalProcesses,
        active_processes: info.ActiveProcesses,
        terminated_processes: info.TotalTerminatedProcesses,
        // Windows counts neither.
        peak_processes: None,
        process_limit_refusals: None,
    })
}

/// JobObjectMemoryUsageInformation (class 28), with the limit from the extended limits.
pub(super) fn memory(job: HANDLE, label: &str) -> Result<MemoryStats, Error> {
    let usage: MemoryUsageInformation = info::query(job, JOB_OBJECT_MEMORY_USAGE_INFORMATION)
        .map_err(|err| {
            errors::maybe_unsupported(label, "query JobObjectMemoryUsageInformation", err)
        })?;
    Ok(MemoryStats {
        current: usage.job_memory,
        peak: usage.peak_job_memory_used,
        limit: limits::memory_limit(job, label)?,
        swap: None,
    })
}

/// Turns on JobObjectIoAttribution (class 42).
pub(super) fn set_io_tracking(job: HANDLE, label: &str) -> Result<(), Error> {
    let info = JOBOBJECT_IO_ATTRIBUTION_INFORMATION {
        ControlFlags: JOBOBJECT_IO_ATTRIBUTION_CONTROL_ENABLE as u32,
        ..JOBOBJECT_IO_ATTRIBUTION_INFORMATION::default()
    };
    info::set(job, JOB_OBJECT_IO_ATTRIBUTION, &info)
        .map_err(|err| errors::maybe_unsupported(label, "set JobObjectIoAttribution", err))
}

/// JobObjectIoAttribution (class 42); [`Error::IoTrackingDisabled`] until it is on.
/// `tracking` says whether this handle turned it on.
pub(super) fn storage(job: HANDLE, label: &str, tracking: bool) -> Result<StorageStats, Error> {
    // Asked with the enable flag, as hcsshim asks.
    let asked = JOBOBJECT_IO_ATTRIBUTION_INFORMATION {
        ControlFlags: JOBOBJECT_IO_ATTRIBUTION_CONTROL_ENABLE as u32,
        ..JOBOBJECT_IO_ATTRIBUTION_INFORMATION::default()
    };
    let info: JOBOBJECT_IO_ATTRIBUTION_INFORMATION =
        match info::query_from(job, JOB_OBJECT_IO_ATTRIBUTION, asked) {
            Ok(info) => info,
            Err(_) if !tracking => return Err(Error::IoTrackingDisabled),
            Err(err) => {
                return Err(errors::maybe_unsupported(
                    label,
                    "query JobObjectIoAttribution",
                    err,
                ));
            }
        };
    if info.ControlFlags & JOBOBJECT_IO_ATTRIBUTION_CONTROL_ENABLE as u32 == 0 {
        return Err(Error::IoTrackingDisabled);
    }
    Ok(StorageStats {
        read_operations: info.ReadStats.IoCount as u64,
        read_bytes: info.ReadStats.TotalSize,
        write_operations: info.WriteStats.IoCount as u64,
        write_bytes: info.WriteStats.TotalSize,
    })
}

/// The sum of the private working sets of the job's processes. A process that exits between
/// the list and the query, or whose id was reused by a process outside the job, is left out.
pub(super) fn private_working_set(job: HANDLE, label: &str) -> Result<u64, Error> {
    let pids = info::process_ids(job)
        .map_err(|err| errors::os(label, "query JobObjectBasicProcessIdList", err))?;
    let mut total = 0u64;
    for pid in pids {
        // A process that exited meanwhile, or that this process may not open, is left out,
        // as hcsshim leaves it out: one process does not fail the job's figure.
        let Ok(process) = process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION) else {
            continue;
        };
        let mut inside = 0;
        // SAFETY: both handles are valid; `inside` is writable.
        let ok = unsafe { IsProcessInJob(raw(&process), job, &mut inside) };
        if ok != 0 && inside == 0 {
            continue;
        }
        match process::private_working_set(raw(&process)) {
            Ok(Some(bytes)) => total += bytes,
            Ok(None) => {
                return Err(Error::Unsupported {
                    what: format!(
                        "the private working set of process {pid} in job {label}: {}",
                        errors::lacks("report it (VM_COUNTERS_EX2)")
                    ),
                });
            }
            Err(_) if process::has_exited(&process) => continue,
            Err(err) => {
                return Err(errors::os(
                    label,
                    format!("NtQueryInformationProcess {pid}"),
                    err,
                ));
            }
        }
    }
    Ok(total)
}
