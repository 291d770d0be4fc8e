//! Typed `QueryInformationJobObject` and `SetInformationJobObject`.

use std::ffi::c_void;
use std::io;
use std::mem::size_of;

use windows_sys::Win32::Foundation::{ERROR_MORE_DATA, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, JOBOBJECT_BASIC_PROCESS_ID_LIST,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOBOBJECTINFOCLASS, JobObjectBasicAccountingInformation,
    JobObjectBasicProcessIdList, JobObjectExtendedLimitInformation, QueryInformationJobObject,
    SetInformationJobObject,
};

/// JobObjectMemoryUsageInformation: not in the SDK's enumeration (it calls 28 "reserved").
pub(super) const JOB_OBJECT_MEMORY_USAGE_INFORMATION: JOBOBJECTINFOCLASS = 28;
/// JobObjectIoAttribution: not in the SDK's enumeration (it calls 42 "reserved").
pub(super) const JOB_OBJECT_IO_ATTRIBUTION: JOBOBJECTINFOCLASS = 42;

/// Information classes that are plain data: every bit pattern, all zeros included, is a valid
/// value, so the system may fill them.
///
/// # Safety
/// Implement it only for `#[repr(C)]` structures of integers (and unions of integers) that
/// match the layout the system expects for the class they are used with.
pub(super) unsafe trait PlainInfo: Copy + Default {}

// SAFETY: each one is the SDK's #[repr(C)] structure of integers, as windows-sys declares it.
unsafe impl PlainInfo for JOBOBJECT_BASIC_ACCOUNTING_INFORMATION {}
// SAFETY: as above.
unsafe impl PlainInfo for JOBOBJECT_EXTENDED_LIMIT_INFORMATION {}
// SAFETY: as above.
unsafe impl PlainInfo
    for windows_sys::Win32::System::JobObjects::JOBOBJECT_CPU_RATE_CONTROL_INFORMATION
{
}
// SAFETY: as above.
unsafe impl PlainInfo
    for windows_sys::Win32::System::JobObjects::JOBOBJECT_IO_ATTRIBUTION_INFORMATION
{
}
// SAFETY: as above.
unsafe impl PlainInfo
    for windows_sys::Win32::System::JobObjects::JOBOBJECT_LIMIT_VIOLATION_INFORMATION
{
}
// SAFETY: the SDK's #[repr(C)] structure of a key and a handle, both pointer-sized values that
// are only ever set, never read back.
unsafe impl PlainInfo
    for windows_sys::Win32::System::JobObjects::JOBOBJECT_ASSOCIATE_COMPLETION_PORT
{
}
// SAFETY: a #[repr(C)] structure of two u64, as ntdll fills it.
unsafe impl PlainInfo for MemoryUsageInformation {}

/// JOBOBJECT_MEMORY_USAGE_INFORMATION (class 28), which the SDK does not declare.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MemoryUsageInformation {
    /// The memory the job's processes have committed now, in bytes.
    pub(super) job_memory: u64,
    /// The most the job has had committed at once, in bytes.
    pub(super) peak_job_memory_used: u64,
}

/// Reads information of `class` about `job`.
pub(super) fn query<T: PlainInfo>(job: HANDLE, class: JOBOBJECTINFOCLASS) -> io::Result<T> {
    query_from(job, class, T::default())
}

/// Reads information of `class` about `job` into `value`, which says what is asked for
/// (some classes read flags of the structure passed in, as the I/O attribution does).
pub(super) fn query_from<T: PlainInfo>(
    job: HANDLE,
    class: JOBOBJECTINFOCLASS,
    mut value: T,
) -> io::Result<T> {
    // SAFETY: `value` is a writable `T` of the size passed, and `T: PlainInfo` is the layout
    // the system writes for `class`; the return-length pointer may be null.
    let ok = unsafe {
        QueryInformationJobObject(
            job,
            class,
            (&raw mut value).cast::<c_void>(),
            size_of::<T>() as u32,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sets information of `class` on `job`.
pub(super) fn set<T: PlainInfo>(
    job: HANDLE,
    class: JOBOBJECTINFOCLASS,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a readable `T` of the size passed, laid out as `class` expects.
    let ok = unsafe {
        SetInformationJobObject(
            job,
            class,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The job's extended limits (which hold the basic ones).
pub(super) fn extended_limits(job: HANDLE) -> io::Result<JOBOBJECT_EXTENDED_LIMIT_INFORMATION> {
    query(job, JobObjectExtendedLimitInformation)
}

/// The job's accounting: CPU times and process counts.
pub(super) fn accounting(job: HANDLE) -> io::Result<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION> {
    query(job, JobObjectBasicAccountingInformation)
}

/// The number of processes in the job now.
pub(super) fn active_processes(job: HANDLE) -> io::Result<u32> {
    Ok(accounting(job)?.ActiveProcesses)
}

/// How many times the process list is read while the job outgrows the buffer.
const PROCESS_ID_READS: usize = 8;
/// The most process ids read (Windows holds far fewer processes): 8 MiB of buffer.
const MAX_PROCESS_IDS: usize = 1 << 20;

/// The buffer's next capacity for a job that holds `assigned` processes: that many and an
/// eighth more for the ones it starts meanwhile, at least one more than `capacity`, at most
/// [`MAX_PROCESS_IDS`].
fn next_capacity(capacity: usize, assigned: usize) -> io::Result<usize> {
    if assigned > MAX_PROCESS_IDS {
        return Err(io::Error::other(format!(
            "the job reports {assigned} processes, more than the {MAX_PROCESS_IDS} ids read"
        )));
    }
    let wanted = assigned.saturating_add(assigned / 8).max(capacity + 1);
    Ok(wanted.min(MAX_PROCESS_IDS))
}

/// Every process id in the job (nested jobs included), ascending.
///
/// The list is read into a buffer sized from the last count; while the job grows between
/// two reads (the count exceeds what the buffer held), it is read again into one sized from
/// the new count, a few times at most, and never beyond [`MAX_PROCESS_IDS`].
pub(super) fn process_ids(job: HANDLE) -> io::Result<Vec<u32>> {
    const HEADER: usize = size_of::<JOBOBJECT_BASIC_PROCESS_ID_LIST>() - size_of::<usize>();
    let mut capacity = 64usize;
    for _ in 0..PROCESS_ID_READS {
        // `usize` elements keep the buffer aligned for the structure, whose header (two u32)
        // takes the first element.
        let mut buffer = vec![0usize; HEADER / size_of::<usize>() + capacity];
        let bytes = buffer.len() * size_of::<usize>();
        // SAFETY: `buffer` is writable, `bytes` long and aligned for
        // JOBOBJECT_BASIC_PROCESS_ID_LIST, whose id array runs to the end of the buffer.
        let ok = unsafe {
            QueryInformationJobObject(
                job,
                JobObjectBasicProcessIdList,
                buffer.as_mut_ptr().cast::<c_void>(),
                bytes as u32,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(ERROR_MORE_DATA as i32) {
                return Err(err);
            }
        }
        // SAFETY: the buffer starts with the structure's header, which the call filled (on
        // ERROR_MORE_DATA too), and is aligned for it.
        let list = unsafe { &*buffer.as_ptr().cast::<JOBOBJECT_BASIC_PROCESS_ID_LIST>() };
        let assigned = list.NumberOfAssignedProcesses as usize;
        let listed = (list.NumberOfProcessIdsInList as usize).min(capacity);
        if ok != 0 && assigned <= listed {
            let ids = &buffer[HEADER / size_of::<usize>()..][..listed];
            let mut pids: Vec<u32> = ids.iter().map(|&id| id as u32).collect();
            pids.sort_unstable();
            pids.dedup();
            return Ok(pids);
        }
        capacity = next_capacity(capacity, assigned)?;
    }
    Err(io::Error::other(
        "the job's process list kept growing faster than it could be read",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_list_buffer_is_bounded() {
        assert_eq!(next_capacity(64, 10).unwrap(), 65);
        assert_eq!(next_capacity(64, 800).unwrap(), 900);
        assert_eq!(next_capacity(64, MAX_PROCESS_IDS).unwrap(), MAX_PROCESS_IDS);
        assert!(next_capacity(64, MAX_PROCESS_IDS + 1).is_err());
        // A count truncated to u32 that reads huge never grows the buffer past the bound.
        assert!(next_capacity(64, u32::MAX as usize).is_err());
    }
}
