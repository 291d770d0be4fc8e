//! The child's standard handles: inheritable copies made for the spawn (and closed after
//! it), and the caller's ends of the pipes.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr;

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, GENERIC_READ, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Pipes::CreatePipe;
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::super::handle::{owned, wide};
use crate::process::{Stdio, StdioKind};

/// The three handles for the child (each may be missing: a caller without a console has no
/// standard handles) and the caller's ends of its pipes.
#[derive(Default)]
pub(super) struct Handles {
    pub(super) child: [Option<OwnedHandle>; 3],
    pub(super) parent: [Option<OwnedHandle>; 3],
}

impl Handles {
    pub(super) fn new(stdio: [Option<&Stdio>; 3]) -> io::Result<Handles> {
        let mut handles = Handles::default();
        for (i, stdio) in stdio.into_iter().enumerate() {
            let child = match stdio.map(|s| &s.0) {
                None | Some(StdioKind::Inherit) => inherit(STD_KIND[i])?,
                Some(StdioKind::Null) => Some(null(i == 0)?),
                Some(StdioKind::Piped) => {
                    let (child, parent) = pipe(i == 0)?;
                    handles.parent[i] = Some(parent);
                    Some(child)
                }
                Some(StdioKind::Owned(handle)) => Some(inheritable_copy(handle.as_raw_handle())?),
            };
            handles.child[i] = child;
        }
        Ok(handles)
    }

    /// The raw child handles, null where there is none.
    pub(super) fn raw(&self) -> [HANDLE; 3] {
        self.child
            .each_ref()
            .map(|h| h.as_ref().map_or(ptr::null_mut(), |h| h.as_raw_handle()))
    }
}

const STD_KIND: [STD_HANDLE; 3] = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE];

/// An inheritable copy of this process's own standard handle, if it has one.
fn inherit(kind: STD_HANDLE) -> io::Result<Option<OwnedHandle>> {
    // SAFETY: GetStdHandle takes a plain value and returns a handle this process keeps.
    let handle = unsafe { GetStdHandle(kind) };
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Ok(None);
    }
    inheritable_copy(handle).map(Some)
}

/// An inheritable duplicate of `handle`, with its access.
fn inheritable_copy(handle: HANDLE) -> io::Result<OwnedHandle> {
    let mut copy: HANDLE = ptr::null_mut();
    // SAFETY: `handle` is a valid handle of this process; the copy is written to `copy`.
    let ok = unsafe {
        let me = GetCurrentProcess();
        DuplicateHandle(me, handle, me, &mut copy, 0, 1, DUPLICATE_SAME_ACCESS)
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    owned(copy)
}

fn inheritable() -> SECURITY_ATTRIBUTES {
    SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: ptr::null_mut(),
        bInheritHandle: 1,
    }
}

/// The null device, opened inheritable, for reading (stdin) or writing.
fn null(read: bool) -> io::Result<OwnedHandle> {
    let name = wide("NUL");
    let access = if read { GENERIC_READ } else { GENERIC_WRITE };
    let attributes = inheritable();
    // SAFETY: `name` is NUL-terminated and `attributes` valid for the call.
    owned(unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            &attributes,
            OPEN_EXISTING,
            FILE_ATTRIBUTE_NORMAL,
            ptr::null_mut(),
        )
    })
}

/// A pipe: the child's end inheritable (reading for stdin, writing otherwise), the caller's
/// end not.
fn pipe(child_reads: bool) -> io::Result<(OwnedHandle, OwnedHandle)> {
    let (mut read, mut write): (HANDLE, HANDLE) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: both out pointers are valid; no security attributes: neither end inherits.
    if unsafe { CreatePipe(&mut read, &mut write, ptr::null(), 0) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let (read, write) = (owned(read)?, owned(write)?);
    let (child, parent) = if child_reads {
        (read, write)
    } else {
        (write, read)
    };
    // The child's end becomes an inheritable copy; the original closes with `child`.
    Ok((inheritable_copy(child.as_raw_handle())?, parent))
}
