//! Owned handles, wide strings, and the functions that are resolved at run time.
//!
//! Some functions are missing on some systems: `SetIoRateControlInformationJobObject` and its
//! siblings before Windows 10 and under Wine, `wine_get_version` everywhere but under Wine.
//! Importing one of them statically would stop the whole program from loading there, so they
//! are looked up with `GetProcAddress` on first use, as are the ntdll calls that windows-sys
//! keeps in its driver-kit half.

use std::ffi::{CStr, c_char, c_void};
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE, NTSTATUS};
use windows_sys::Win32::System::JobObjects::JOBOBJECT_IO_RATE_CONTROL_INFORMATION;
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::core::PCWSTR;

/// Takes ownership of a handle that a call has just returned; null and `INVALID_HANDLE_VALUE`
/// are the call's failure, reported with the thread's last error.
pub(super) fn owned(raw: HANDLE) -> io::Result<OwnedHandle> {
    if raw.is_null() || raw == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid handle that a call has just returned to the caller, which owns
    // it and hands it over here; nothing else closes it.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

/// The raw value of a handle, for a call; the handle stays owned by `handle`.
pub(super) fn raw(handle: &OwnedHandle) -> HANDLE {
    handle.as_raw_handle()
}

/// `text` as a NUL-terminated UTF-16 string.
pub(super) fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Whether `status` is an NTSTATUS success or information code.
pub(super) fn nt_success(status: NTSTATUS) -> bool {
    status >= 0
}

/// The Win32 error that matches an NTSTATUS failure.
pub(super) fn nt_error(status: NTSTATUS) -> io::Error {
    match rtl_nt_status_to_dos_error() {
        // SAFETY: RtlNtStatusToDosError takes any status value and only maps it.
        Some(convert) => io::Error::from_raw_os_error(unsafe { convert(status) } as i32),
        None => io::Error::other(format!("NTSTATUS {:#010x}", status as u32)),
    }
}

/// The address of `symbol` in the loaded module `module`, if it exports it.
fn resolve(module: &str, symbol: &CStr) -> Option<unsafe extern "system" fn() -> isize> {
    let module = wide(module);
    // SAFETY: `module` is a NUL-terminated UTF-16 string that outlives the call; the modules
    // asked for (kernel32, kernelbase, ntdll) stay loaded for the life of the process, so the
    // handle, which is not reference-counted, stays valid.
    let handle = unsafe { GetModuleHandleW(module.as_ptr()) };
    if handle.is_null() {
        return None;
    }
    // SAFETY: `handle` is a loaded module and `symbol` a NUL-terminated ANSI string.
    unsafe { GetProcAddress(handle, symbol.as_ptr().cast()) }
}

/// Declares a function that returns the run-time address of an exported function, typed,
/// looked up once.
macro_rules! runtime_fn {
    ($(#[$doc:meta])* fn $name:ident from [$($module:literal),+] as $symbol:literal: $ty:ty) => {
        $(#[$doc])*
        pub(super) fn $name() -> Option<$ty> {
            static ADDRESS: OnceLock<Option<$ty>> = OnceLock::new();
            *ADDRESS.get_or_init(|| {
                let address = None $(.or_else(|| resolve($module, $symbol)))+?;
                // SAFETY: the export named `$symbol` has the signature `$ty` (it is declared
                // from the Windows SDK's, or Wine's, prototype), and function pointers of
                // either type have the same size and representation.
                Some(unsafe {
                    std::mem::transmute::<unsafe extern "system" fn() -> isize, $ty>(address)
                })
            })
        }
    };
}

/// `NtCreateJobObject` and `NtOpenJobObject`: handle out, access, object attributes.
pub(super) type NtJobObjectFn =
    unsafe extern "system" fn(*mut HANDLE, u32, *const ObjectAttributes) -> NTSTATUS;

runtime_fn! {
    /// ntdll's `NtCreateJobObject`.
    fn nt_create_job_object from ["ntdll.dll"] as c"NtCreateJobObject": NtJobObjectFn
}
runtime_fn! {
    /// ntdll's `NtOpenJobObject`.
    fn nt_open_job_object from ["ntdll.dll"] as c"NtOpenJobObject": NtJobObjectFn
}
runtime_fn! {
    /// ntdll's `RtlNtStatusToDosError`.
    fn rtl_nt_status_to_dos_error from ["ntdll.dll"] as c"RtlNtStatusToDosError":
        unsafe extern "system" fn(NTSTATUS) -> u32
}
runtime_fn! {
    /// ntdll's `NtResumeProcess`: resumes every thread of a process.
    fn nt_resume_process from ["ntdll.dll"] as c"NtResumeProcess":
        unsafe extern "system" fn(HANDLE) -> NTSTATUS
}
runtime_fn! {
    /// ntdll's `NtQueryInformationProcess`.
    fn nt_query_information_process from ["ntdll.dll"] as c"NtQueryInformationProcess":
        unsafe extern "system" fn(HANDLE, i32, *mut c_void, u32, *mut u32) -> NTSTATUS
}
runtime_fn! {
    /// Wine's `wine_get_version`, exported by its ntdll only.
    fn wine_get_version from ["ntdll.dll"] as c"wine_get_version":
        unsafe extern "C" fn() -> *const c_char
}
runtime_fn! {
    /// `SetIoRateControlInformationJobObject` (Windows 10 and later; not in Wine).
    fn set_io_rate_control from ["kernel32.dll", "kernelbase.dll"]
        as c"SetIoRateControlInformationJobObject":
        unsafe extern "system" fn(HANDLE, *const JOBOBJECT_IO_RATE_CONTROL_INFORMATION) -> u32
}
runtime_fn! {
    /// `QueryIoRateControlInformationJobObject` (Windows 10 and later; not in Wine).
    fn query_io_rate_control from ["kernel32.dll", "kernelbase.dll"]
        as c"QueryIoRateControlInformationJobObject":
        unsafe extern "system" fn(
            HANDLE,
            PCWSTR,
            *mut *mut JOBOBJECT_IO_RATE_CONTROL_INFORMATION,
            *mut u32,
        ) -> u32
}
runtime_fn! {
    /// `FreeMemoryJobObject`, which frees what `QueryIoRateControlInformationJobObject`
    /// returned.
    fn free_memory_job_object from ["kernel32.dll", "kernelbase.dll"] as c"FreeMemoryJobObject":
        unsafe extern "system" fn(*const c_void)
}

/// The Wine version this process runs under, or `None` on Windows.
pub(super) fn wine_version() -> Option<&'static str> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let get = wine_get_version()?;
            // SAFETY: wine_get_version takes nothing and returns a pointer to a static
            // NUL-terminated string (or null).
            let text = unsafe { get() };
            if text.is_null() {
                return Some("(unknown version)".to_owned());
            }
            // SAFETY: `text` is non-null and points to Wine's static NUL-terminated string.
            Some(
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned(),
            )
        })
        .as_deref()
}

/// ntdll's `UNICODE_STRING`: a counted UTF-16 string.
#[repr(C)]
pub(super) struct UnicodeString {
    /// Length in bytes, without a terminator.
    pub(super) length: u16,
    /// Size of the buffer in bytes.
    pub(super) maximum_length: u16,
    /// The characters.
    pub(super) buffer: *const u16,
}

/// ntdll's `OBJECT_ATTRIBUTES`.
#[repr(C)]
pub(super) struct ObjectAttributes {
    /// The size of this structure.
    pub(super) length: u32,
    /// The directory the name is relative to (null: the name is absolute).
    pub(super) root_directory: HANDLE,
    /// The object's name.
    pub(super) object_name: *const UnicodeString,
    /// `OBJ_*` flags.
    pub(super) attributes: u32,
    /// A security descriptor (null: the default).
    pub(super) security_descriptor: *const c_void,
    /// Quality of service (null).
    pub(super) security_quality_of_service: *const c_void,
}
