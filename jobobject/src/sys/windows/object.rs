//! Creating and opening the kernel object: `CreateJobObjectW` / `OpenJobObjectW`, or ntdll's
//! `NtCreateJobObject` / `NtOpenJobObject` when [`Options::use_nt_variant`] asks for them.
//!
//! [`Options::use_nt_variant`]: crate::Options::use_nt_variant

use std::os::windows::io::OwnedHandle;

use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_INVALID_HANDLE, ERROR_PATH_NOT_FOUND,
    GetLastError, HANDLE, SetLastError,
};
use windows_sys::Win32::System::JobObjects::{CreateJobObjectW, OpenJobObjectW};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;

use super::errors;
use super::handle::{self, ObjectAttributes, UnicodeString};
use crate::Error;

/// Every right on a job object: `JOB_OBJECT_ALL_ACCESS` as winnt.h has defined it since
/// Windows 8 (`STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x3F`, with
/// `JOB_OBJECT_IMPERSONATE`); the older value, 0x1F001F, lacks that right.
const JOB_OBJECT_ALL_ACCESS: u32 = 0x001F_003F;
/// `OBJ_CASE_INSENSITIVE`: names compare as kernel32 compares them.
const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// NTSTATUS `STATUS_OBJECT_NAME_COLLISION`.
const STATUS_OBJECT_NAME_COLLISION: i32 = 0xC000_0035_u32 as i32;
/// NTSTATUS `STATUS_OBJECT_NAME_NOT_FOUND`.
const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
/// NTSTATUS `STATUS_OBJECT_PATH_NOT_FOUND`.
const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003A_u32 as i32;
/// NTSTATUS `STATUS_OBJECT_TYPE_MISMATCH`.
const STATUS_OBJECT_TYPE_MISMATCH: i32 = 0xC000_0024_u32 as i32;

/// Creates a job, named or anonymous. A name that exists (as a job or as another kind of
/// object) is [`Error::AlreadyExists`].
pub(super) fn create(name: Option<&str>, nt: bool, label: &str) -> Result<OwnedHandle, Error> {
    if nt {
        return nt_create(name, label);
    }
    let wide = name.map(handle::wide);
    let name_ptr = wide.as_ref().map_or(std::ptr::null(), |w| w.as_ptr());
    // SAFETY: SetLastError only stores a value. Clearing it makes ERROR_ALREADY_EXISTS after a
    // successful CreateJobObjectW mean what it says.
    unsafe { SetLastError(0) };
    // SAFETY: null security attributes are the default; `name_ptr` is null or a
    // NUL-terminated UTF-16 string that outlives the call.
    let raw = unsafe { CreateJobObjectW(std::ptr::null(), name_ptr) };
    // SAFETY: GetLastError only reads the thread's last error, right after the call.
    let code = unsafe { GetLastError() };
    let job = match handle::owned(raw) {
        Ok(job) => job,
        Err(err) => {
            return Err(match (name, err.raw_os_error().map(|c| c as u32)) {
                // The name belongs to an object of another type.
                (Some(name), Some(ERROR_INVALID_HANDLE)) => Error::AlreadyExists {
                    job: name.to_owned(),
                },
                (Some(_), Some(ERROR_PATH_NOT_FOUND)) => {
                    Error::invalid(format!("job name {name:?}: no such namespace"))
                }
                _ => errors::os(label, "CreateJobObjectW", err),
            });
        }
    };
    if let Some(name) = name {
        if code == ERROR_ALREADY_EXISTS {
            // CreateJobObjectW opened the existing job: close that handle (dropping `job`).
            drop(job);
            return Err(Error::AlreadyExists {
                job: name.to_owned(),
            });
        }
    }
    Ok(job)
}

/// Opens the existing job `name`; a job that does not exist is [`Error::NotFound`].
pub(super) fn open(name: &str, nt: bool, label: &str) -> Result<OwnedHandle, Error> {
    if nt {
        return nt_open(name, label);
    }
    let wide = handle::wide(name);
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
    let raw = unsafe { OpenJobObjectW(JOB_OBJECT_ALL_ACCESS, 0, wide.as_ptr()) };
    handle::owned(raw).map_err(|err| {
        match err.raw_os_error().map(|c| c as u32) {
            // Absent, or a name of another type of object: there is no such job.
            Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND | ERROR_INVALID_HANDLE) => {
                Error::NotFound {
                    what: format!("job {name:?}"),
                }
            }
            _ => errors::os(label, "OpenJobObjectW", err),
        }
    })
}

/// NtCreateJobObject: the job lives in the session's `BaseNamedObjects` directory, where
/// `CreateJobObjectW` puts it, unless the name is an absolute NT path (`\...`).
fn nt_create(name: Option<&str>, label: &str) -> Result<OwnedHandle, Error> {
    let create = handle::nt_create_job_object()
        .ok_or_else(|| errors::missing_function(label, "ntdll NtCreateJobObject"))?;
    let status = nt_call(create, name, 0, label)?;
    match status {
        Ok(job) => Ok(job),
        Err(status)
            if status == STATUS_OBJECT_NAME_COLLISION || status == STATUS_OBJECT_TYPE_MISMATCH =>
        {
            Err(Error::AlreadyExists {
                job: name.unwrap_or_default().to_owned(),
            })
        }
        Err(status) => Err(errors::os(
            label,
            "NtCreateJobObject",
            handle::nt_error(status),
        )),
    }
}

/// NtOpenJobObject, with the names as [`nt_create`] makes them.
fn nt_open(name: &str, label: &str) -> Result<OwnedHandle, Error> {
    let open = handle::nt_open_job_object()
        .ok_or_else(|| errors::missing_function(label, "ntdll NtOpenJobObject"))?;
    match nt_call(open, Some(name), OBJ_CASE_INSENSITIVE, label)? {
        Ok(job) => Ok(job),
        Err(status)
            if status == STATUS_OBJECT_NAME_NOT_FOUND
                || status == STATUS_OBJECT_PATH_NOT_FOUND
                || status == STATUS_OBJECT_TYPE_MISMATCH =>
        {
            Err(Error::NotFound {
                what: format!("job {name:?}"),
            })
        }
        Err(status) => Err(errors::os(
            label,
            "NtOpenJobObject",
            handle::nt_error(status),
        )),
    }
}

/// Calls `function` (NtCreateJobObject or NtOpenJobObject) with the NT path of `name`: the
/// handle, or the failing NTSTATUS.
fn nt_call(
    function: handle::NtJobObjectFn,
    name: Option<&str>,
    attributes: u32,
    label: &str,
) -> Result<Result<OwnedHandle, i32>, Error> {
    let mut last = STATUS_OBJECT_PATH_NOT_FOUND;
    for path in nt_paths(name) {
        let wide: Vec<u16> = path
            .as_deref()
            .map(|p| p.encode_utf16().collect())
            .unwrap_or_default();
        let bytes = u16::try_from(wide.len() * 2).map_err(|_| {
            Error::invalid(format!(
                "job name {:?} is too long",
                name.unwrap_or_default()
            ))
        })?;
        let unicode = UnicodeString {
            length: bytes,
            maximum_length: bytes,
            buffer: wide.as_ptr(),
        };
        let object_attributes = ObjectAttributes {
            length: size_of::<ObjectAttributes>() as u32,
            root_directory: std::ptr::null_mut(),
            object_name: if path.is_some() {
                &unicode
            } else {
                std::ptr::null()
            },
            attributes,
            security_descriptor: std::ptr::null(),
            security_quality_of_service: std::ptr::null(),
        };
        let mut raw: HANDLE = std::ptr::null_mut();
        // SAFETY: `raw` is writable; `object_attributes` and the name it points to (`unicode`,
        // `wide`) are valid for the call.
        let status = unsafe { function(&mut raw, JOB_OBJECT_ALL_ACCESS, &object_attributes) };
        if handle::nt_success(status) {
            return Ok(Ok(
                handle::owned(raw).map_err(|err| errors::os(label, "NtCreateJobObject", err))?
            ));
        }
        last = status;
        if status != STATUS_OBJECT_PATH_NOT_FOUND {
            break;
        }
    }
    Ok(Err(last))
}

/// The NT paths to try for `name`: none for an anonymous job; the name itself when it is
/// absolute; else `\Sessions\N\BaseNamedObjects\NAME` (with `Global\` in `\BaseNamedObjects`),
/// then, in session 0, `\BaseNamedObjects\NAME`.
fn nt_paths(name: Option<&str>) -> Vec<Option<String>> {
    let Some(name) = name else {
        return vec![None];
    };
    if name.starts_with('\\') {
        return vec![Some(name.to_owned())];
    }
    if let Some(rest) = name.strip_prefix("Global\\") {
        return vec![Some(format!("\\BaseNamedObjects\\{rest}"))];
    }
    let name = name.strip_prefix("Local\\").unwrap_or(name);
    let mut session = 0u32;
    // SAFETY: `session` is writable; the pid is this process's.
    let known = unsafe { ProcessIdToSessionId(std::process::id(), &mut session) } != 0;
    let mut paths = Vec::new();
    if known {
        paths.push(Some(format!(
            "\\Sessions\\{session}\\BaseNamedObjects\\{name}"
        )));
    }
    if !known || session == 0 {
        paths.push(Some(format!("\\BaseNamedObjects\\{name}")));
    }
    paths
}
