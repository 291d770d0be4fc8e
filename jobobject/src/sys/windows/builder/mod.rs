//! The library's process builder on Windows: `CreateProcessW` with the child born in the job
//! (`PROC_THREAD_ATTRIBUTE_JOB_LIST`, Windows 10 and later), and its three standard handles
//! the only ones it inherits (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`), so that no handle of the
//! caller leaks into it whatever other threads create meanwhile. The caller's creation flags
//! are kept.
//!
//! The child is also created suspended: where the system ignores the job attribute (Wine) or
//! refuses it (before Windows 10), it is assigned to the job before its first instruction and
//! then resumed; on Windows 10 and later it was in the job from its creation and is only
//! resumed (unless the caller asked for `CREATE_SUSPENDED` itself).
//!
//! The rest follows std: the program is looked up and the command line quoted as std does
//! ([`command_line`]). Batch files are started through std's own spawn (`spawn.rs`), whose
//! escaping of arguments for `cmd.exe` this crate does not repeat.

mod command_line;
mod stdio;

use std::ffi::c_void;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, OwnedHandle};
use std::os::windows::process::ExitStatusExt;
use std::process::ExitStatus;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, IsProcessInJob};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateProcessW, DeleteProcThreadAttributeList,
    EXTENDED_STARTUPINFO_PRESENT, GetExitCodeProcess, INFINITE, InitializeProcThreadAttributeList,
    LPPROC_THREAD_ATTRIBUTE_LIST, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
    PROC_THREAD_ATTRIBUTE_JOB_LIST, PROCESS_INFORMATION, ResumeThread, STARTF_USESTDHANDLES,
    STARTUPINFOEXW, TerminateProcess, UpdateProcThreadAttribute, WaitForSingleObject,
};

use super::errors;
use super::handle::{owned, raw};
use crate::Error;
use crate::os::windows::CommandOptions;
use crate::process::Parts;
use stdio::Handles;

/// The system refused the job attribute once (before Windows 10): do without it.
static NO_JOB_LIST: AtomicBool = AtomicBool::new(false);

/// A child and the caller's ends of its pipes.
pub(super) struct Spawned {
    pub(super) process: Process,
    pub(super) pipes: [Option<OwnedHandle>; 3],
}

/// Starts the builder's program in `job`; `None` for a batch file, which std must start.
pub(super) fn spawn(
    job: HANDLE,
    label: &str,
    parts: &Parts<'_>,
    options: &CommandOptions,
) -> Result<Option<Spawned>, Error> {
    let spawn_error = |source| Error::Spawn {
        job: label.to_owned(),
        program: format!("{:?}", parts.program),
        source,
    };
    let program = command_line::resolve(parts.program, parts.env).map_err(spawn_error)?;
    if command_line::is_batch_file(&program) {
        return Ok(None);
    }
    let invalid = |e: io::Error| Error::invalid(e.to_string());
    let mut line = command_line::command_line(parts.program, parts.args).map_err(invalid)?;
    let env = command_line::environment_block(parts.env).map_err(invalid)?;
    let cwd: Option<Vec<u16>> = parts
        .current_dir
        .map(|d| d.as_os_str().encode_wide().chain([0]).collect());
    let program: Vec<u16> = program.as_os_str().encode_wide().chain([0]).collect();
    let handles = Handles::new(parts.stdio)
        .map_err(|e| errors::os(label, "set up the child's standard handles", e))?;
    let start = Start {
        job,
        program: &program,
        env: env.as_deref(),
        cwd: cwd.as_deref(),
        handles: &handles,
        flags: options.creation_flags,
    };
    let info = start.create(&mut line).map_err(spawn_error)?;
    // Both handles were just returned by CreateProcessW, and are ours to own.
    let (process, thread) = (owned(info.hProcess), owned(info.hThread));
    let (process, thread) = (process.map_err(spawn_error)?, thread.map_err(spawn_error)?);
    let child = Process::new(process, info.dwProcessId);
    if let Err(err) = settle(job, &child, &thread, options.creation_flags) {
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        return Err(errors::os(
            label,
            format!("start child {}", info.dwProcessId),
            err,
        ));
    }
    let Handles { parent, .. } = handles;
    Ok(Some(Spawned {
        process: child,
        pipes: parent,
    }))
}

/// Puts the suspended child in the job if the system did not (Wine), and resumes it unless
/// the caller wants it suspended.
fn settle(job: HANDLE, child: &Process, thread: &OwnedHandle, flags: u32) -> io::Result<()> {
    let mut inside = 0;
    // SAFETY: valid process and job handles; `inside` is written.
    if unsafe { IsProcessInJob(raw(&child.handle), job, &mut inside) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: valid handles; the child has not run, so nothing of it is outside the job.
    if inside == 0 && unsafe { AssignProcessToJobObject(job, raw(&child.handle)) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `thread` is the child's main thread, with all access.
    if flags & CREATE_SUSPENDED == 0 && unsafe { ResumeThread(raw(thread)) } == u32::MAX {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What one `CreateProcessW` call takes.
struct Start<'a> {
    job: HANDLE,
    program: &'a [u16],
    env: Option<&'a [u16]>,
    cwd: Option<&'a [u16]>,
    handles: &'a Handles,
    flags: u32,
}

impl Start<'_> {
    /// Creates the child suspended, with the job attribute unless the system refused it once;
    /// a refusal of it is retried without.
    fn create(&self, line: &mut [u16]) -> io::Result<PROCESS_INFORMATION> {
        if !NO_JOB_LIST.load(Ordering::Relaxed) {
            match self.create_with(line, true) {
                // ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED: no job attribute here.
                Err(err) if matches!(err.raw_os_error(), Some(87 | 50)) => {
                    NO_JOB_LIST.store(true, Ordering::Relaxed);
                }
                result => return result,
            }
        }
        self.create_with(line, false)
    }

    fn create_with(&self, line: &mut [u16], job_list: bool) -> io::Result<PROCESS_INFORMATION> {
        let inherited: Vec<HANDLE> = self
            .handles
            .raw()
            .into_iter()
            .filter(|h| !h.is_null())
            .collect();
        let mut attributes = Attributes::new(2)?;
        if job_list {
            attributes.set(PROC_THREAD_ATTRIBUTE_JOB_LIST, &self.job)?;
        }
        if !inherited.is_empty() {
            attributes.set_slice(PROC_THREAD_ATTRIBUTE_HANDLE_LIST, &inherited)?;
        }
        let [stdin, stdout, stderr] = self.handles.raw();
        let mut startup = STARTUPINFOEXW::default();
        startup.StartupInfo.cb = size_of::<STARTUPINFOEXW>() as u32;
        startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
        startup.StartupInfo.hStdInput = stdin;
        startup.StartupInfo.hStdOutput = stdout;
        startup.StartupInfo.hStdError = stderr;
        startup.lpAttributeList = attributes.list();
        let flags = self.flags
            | CREATE_SUSPENDED
            | CREATE_UNICODE_ENVIRONMENT
            | EXTENDED_STARTUPINFO_PRESENT;
        let mut info = PROCESS_INFORMATION::default();
        // SAFETY: every pointer is valid for the call: NUL-terminated strings, a mutable
        // command line, an environment block ending in two NULs, a STARTUPINFOEXW whose
        // attribute list lives in `attributes`, and the handles it lists are open.
        let ok = unsafe {
            CreateProcessW(
                self.program.as_ptr(),
                line.as_mut_ptr(),
                ptr::null(),
                ptr::null(),
                i32::from(!inherited.is_empty()),
                flags,
                self.env
                    .map_or(ptr::null(), |e| e.as_ptr().cast::<c_void>()),
                self.cwd.map_or(ptr::null(), <[u16]>::as_ptr),
                &startup.StartupInfo,
                &mut info,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info)
    }
}

/// A `PROC_THREAD_ATTRIBUTE_LIST`, with the values it points to kept alive by the caller.
struct Attributes {
    buffer: Vec<u64>,
}

impl Attributes {
    fn new(count: u32) -> io::Result<Attributes> {
        let mut size = 0;
        // SAFETY: a null list asks for the size it needs, which is written to `size`.
        unsafe { InitializeProcThreadAttributeList(ptr::null_mut(), count, 0, &mut size) };
        let mut attributes = Attributes {
            buffer: vec![0u64; size.div_ceil(8)],
        };
        // SAFETY: the buffer holds `size` bytes, 8-byte aligned.
        if unsafe { InitializeProcThreadAttributeList(attributes.list(), count, 0, &mut size) } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(attributes)
    }

    fn list(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buffer.as_mut_ptr().cast()
    }

    /// Sets `attribute` to the value `value` points to (which must outlive the list's use).
    fn set<T>(&mut self, attribute: u32, value: &T) -> io::Result<()> {
        self.update(attribute, ptr::from_ref(value).cast(), size_of::<T>())
    }

    fn set_slice<T>(&mut self, attribute: u32, values: &[T]) -> io::Result<()> {
        self.update(attribute, values.as_ptr().cast(), size_of_val(values))
    }

    fn update(&mut self, attribute: u32, value: *const c_void, size: usize) -> io::Result<()> {
        // SAFETY: the list was initialized; `value` points to `size` bytes that the caller
        // keeps alive until CreateProcessW has returned.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                self.list(),
                0,
                attribute as usize,
                value,
                size,
                ptr::null_mut(),
                ptr::null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: the list was initialized in `new`.
        unsafe { DeleteProcThreadAttributeList(self.list()) };
    }
}

/// A child of the builder: its process handle and id, and its status once it has exited.
#[derive(Debug)]
pub(crate) struct Process {
    handle: OwnedHandle,
    id: u32,
    status: Option<ExitStatus>,
}

impl Process {
    pub(super) fn new(handle: OwnedHandle, id: u32) -> Self {
        Process {
            handle,
            id,
            status: None,
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }

    /// `TerminateProcess` with exit code 1, as std's `kill`; an exited child is left alone.
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        // SAFETY: the handle has PROCESS_TERMINATE (all access).
        if unsafe { TerminateProcess(self.handle.as_raw_handle(), 1) } == 0 {
            let err = io::Error::last_os_error();
            if self.try_wait()?.is_none() {
                return Err(err);
            }
        }
        Ok(())
    }

    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.poll(INFINITE)? {
                return Ok(status);
            }
        }
    }

    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.poll(0)
    }

    /// Waits for the child without blocking the thread (see [`exit_wait`](super::exit_wait)).
    #[cfg(feature = "tokio")]
    pub(crate) async fn wait_async(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        super::exit_wait::exited(self.handle.as_handle()).await?;
        self.try_wait()?
            .ok_or_else(|| io::Error::other("the process was signalled but has not exited"))
    }

    fn poll(&mut self, timeout: u32) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        // SAFETY: the handle has SYNCHRONIZE.
        match unsafe { WaitForSingleObject(self.handle.as_raw_handle(), timeout) } {
            WAIT_OBJECT_0 => {}
            WAIT_TIMEOUT => return Ok(None),
            _ => return Err(io::Error::last_os_error()),
        }
        let mut code = 0;
        // SAFETY: the handle has PROCESS_QUERY_INFORMATION; `code` is written.
        if unsafe { GetExitCodeProcess(self.handle.as_raw_handle(), &mut code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let status = ExitStatus::from_raw(code);
        self.status = Some(status);
        Ok(Some(status))
    }
}
