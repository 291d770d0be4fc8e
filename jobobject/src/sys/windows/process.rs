//! Single processes: opening them by id, their exit codes, their private working sets.

use std::io;
use std::mem::size_of;
use std::os::windows::io::OwnedHandle;
use std::time::Duration;

use windows_sys::Win32::Foundation::{HANDLE, STILL_ACTIVE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_ACCESS_RIGHTS, PROCESS_SYNCHRONIZE,
    WaitForSingleObject,
};

use super::handle::{self, owned, raw};

/// `ProcessVmCounters`, the NtQueryInformationProcess class of `VM_COUNTERS_EX2`.
const PROCESS_VM_COUNTERS: i32 = 3;

/// Opens process `pid` with `access` (plus SYNCHRONIZE, to wait for it). A process that does
/// not exist fails with ERROR_INVALID_PARAMETER.
pub(super) fn open(pid: u32, access: PROCESS_ACCESS_RIGHTS) -> io::Result<OwnedHandle> {
    // SAFETY: OpenProcess takes plain values and returns a new handle or null.
    owned(unsafe { OpenProcess(access | PROCESS_SYNCHRONIZE, 0, pid) })
}

/// Whether the process has exited.
pub(super) fn has_exited(process: &OwnedHandle) -> bool {
    // SAFETY: `process` is a valid handle with SYNCHRONIZE access; a zero timeout only polls.
    unsafe { WaitForSingleObject(raw(process), 0) == WAIT_OBJECT_0 }
}

/// The exit code of a process that is exiting, waiting up to `wait` for it to be final.
pub(super) fn exit_code(process: &OwnedHandle, wait: Duration) -> io::Result<u32> {
    let millis = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: `process` is a valid handle with SYNCHRONIZE access.
    unsafe { WaitForSingleObject(raw(process), millis) };
    let mut code = 0u32;
    // SAFETY: `process` is valid with query access, `code` writable.
    if unsafe { GetExitCodeProcess(raw(process), &mut code) } == 0 {
        return Err(io::Error::last_os_error());
    }
    if code == STILL_ACTIVE as u32 && !has_exited(process) {
        return Err(io::Error::other("the process is still running"));
    }
    Ok(code)
}

/// ntdll's `VM_COUNTERS_EX2`, the memory counters of a process (Windows 10 and later).
#[repr(C)]
#[derive(Default)]
struct VmCountersEx2 {
    peak_virtual_size: usize,
    virtual_size: usize,
    page_fault_count: u32,
    peak_working_set_size: usize,
    working_set_size: usize,
    quota_peak_paged_pool_usage: usize,
    quota_paged_pool_usage: usize,
    quota_peak_non_paged_pool_usage: usize,
    quota_non_paged_pool_usage: usize,
    pagefile_usage: usize,
    peak_pagefile_usage: usize,
    private_usage: usize,
    private_working_set_size: usize,
    shared_commit_usage: u64,
}

/// The private working set of `process`, in bytes: `Ok(None)` where the system does not
/// report it (before Windows 10, and under Wine).
pub(super) fn private_working_set(process: HANDLE) -> io::Result<Option<u64>> {
    let Some(query) = handle::nt_query_information_process() else {
        return Ok(None);
    };
    let mut counters = VmCountersEx2::default();
    // SAFETY: `counters` is writable and as large as the size passed; the layout is ntdll's
    // VM_COUNTERS_EX2; the return-length pointer may be null.
    let status = unsafe {
        query(
            process,
            PROCESS_VM_COUNTERS,
            (&raw mut counters).cast(),
            size_of::<VmCountersEx2>() as u32,
            std::ptr::null_mut(),
        )
    };
    /// STATUS_INFO_LENGTH_MISMATCH: the system knows only the older, shorter counters.
    const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
    if status == STATUS_INFO_LENGTH_MISMATCH {
        return Ok(None);
    }
    if !handle::nt_success(status) {
        return Err(handle::nt_error(status));
    }
    Ok(Some(counters.private_working_set_size as u64))
}
