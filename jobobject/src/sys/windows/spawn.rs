//! Starting a child inside the job before it runs any code of its own.
//!
//! `PROC_THREAD_ATTRIBUTE_JOB_LIST` would place the child in the job at creation, but std's
//! `CommandExt::raw_attribute` is still unstable (`windows_process_extensions_raw_attribute`),
//! so the child is created suspended, assigned to the job, then resumed. Its main thread has
//! not run a single instruction of the program before it is in the job.
//!
//! std offers no way to read a `Command`'s creation flags, so `spawn` replaces them with
//! `CREATE_SUSPENDED` for the spawn and resets them to 0 afterwards: flags set with
//! `CommandExt::creation_flags` before are not kept. The library's own builder keeps its
//! flags and adds `CREATE_SUSPENDED` to them.

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::os::windows::process::CommandExt;
use std::process::{Child, Command, Stdio};

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::AssignProcessToJobObject;
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
};

use super::builder::{self, Process};
use super::errors;
use super::handle::{self, owned, raw};
use crate::Error;
use crate::os::windows::CommandOptions;
use crate::process::{Parts, StdioKind};

/// Spawns `command` suspended, puts it in `job`, and resumes it.
pub(super) fn spawn(job: HANDLE, label: &str, command: &mut Command) -> Result<Child, Error> {
    let spawned = start(job, label, command, 0);
    command.creation_flags(0);
    spawned
}

/// Spawns the library's own builder: through `CreateProcessW` with the child born in the job
/// (see [`builder`](super::builder)), or for a batch file through a std `Command` made from
/// it, created with the builder's own flags plus `CREATE_SUSPENDED`, assigned, resumed.
pub(super) fn spawn_builder(
    job: HANDLE,
    label: &str,
    parts: &Parts<'_>,
    options: &CommandOptions,
) -> Result<crate::process::Child, Error> {
    if let Some(spawned) = builder::spawn(job, label, parts, options)? {
        return Ok(crate::process::Child::new(spawned.process, spawned.pipes));
    }
    let mut command = Command::new(parts.program);
    command.args(parts.args);
    if parts.env.clear {
        command.env_clear();
    }
    for (key, value) in &parts.env.vars {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    if let Some(dir) = parts.current_dir {
        command.current_dir(dir);
    }
    let [stdin, stdout, stderr] = parts.stdio.map(stdio);
    command.stdin(stdin.map_err(|e| errors::os(label, "duplicate stdin", e))?);
    command.stdout(stdout.map_err(|e| errors::os(label, "duplicate stdout", e))?);
    command.stderr(stderr.map_err(|e| errors::os(label, "duplicate stderr", e))?);
    let mut child = start(job, label, &mut command, options.creation_flags)?;
    let pipes = [
        child.stdin.take().map(OwnedHandle::from),
        child.stdout.take().map(OwnedHandle::from),
        child.stderr.take().map(OwnedHandle::from),
    ];
    let id = child.id();
    let process = Process::new(OwnedHandle::from(child), id);
    Ok(crate::process::Child::new(process, pipes))
}

/// std's form of one of the builder's streams.
fn stdio(stdio: Option<&crate::process::Stdio>) -> io::Result<Stdio> {
    Ok(match stdio.map(|s| &s.0) {
        None | Some(StdioKind::Inherit) => Stdio::inherit(),
        Some(StdioKind::Null) => Stdio::null(),
        Some(StdioKind::Piped) => Stdio::piped(),
        Some(StdioKind::Owned(handle)) => Stdio::from(handle.try_clone()?),
    })
}

fn start(job: HANDLE, label: &str, command: &mut Command, flags: u32) -> Result<Child, Error> {
    start_with(
        job,
        label,
        command,
        |command| command,
        Command::spawn,
        flags,
    )
}

/// Spawns a command that wraps a std `Command` (which `std_of` reaches) with `spawn`,
/// suspended, puts the child in `job`, and resumes it; tokio's `Command` takes this path.
/// The std command's creation flags are set to `flags` plus `CREATE_SUSPENDED`.
pub(super) fn start_with<C, T: Started>(
    job: HANDLE,
    label: &str,
    command: &mut C,
    std_of: impl Fn(&mut C) -> &mut Command,
    spawn: impl FnOnce(&mut C) -> io::Result<T>,
    flags: u32,
) -> Result<T, Error> {
    std_of(command).creation_flags(flags | CREATE_SUSPENDED);
    let mut child = spawn(command).map_err(|source| Error::Spawn {
        job: label.to_owned(),
        program: format!("{:?}", std_of(command).get_program()),
        source,
    })?;
    let (process, pid) = child.process();
    // SAFETY: `job` and `process` are valid handles; the child's handle has every right.
    if unsafe { AssignProcessToJobObject(job, process) } == 0 {
        let err = errors::last(label, format!("AssignProcessToJobObject (child {pid})"));
        child.abandon();
        return Err(err);
    }
    if let Err(source) = resume(process, pid) {
        child.abandon();
        return Err(errors::os(label, format!("resume child {pid}"), source));
    }
    Ok(child)
}

/// A child just started suspended, by std or by tokio.
pub(super) trait Started {
    /// Its process handle and id.
    fn process(&self) -> (HANDLE, u32);
    /// Kills the child that never ran (and reaps it where that cannot block).
    fn abandon(&mut self);
}

impl Started for Child {
    fn process(&self) -> (HANDLE, u32) {
        (self.as_raw_handle(), self.id())
    }

    fn abandon(&mut self) {
        // It is suspended and ours alone: killing it cannot fail in a way worth reporting
        // over the error that got us here.
        let _ = self.kill();
        let _ = self.wait();
    }
}

#[cfg(feature = "tokio")]
impl Started for tokio::process::Child {
    fn process(&self) -> (HANDLE, u32) {
        // Both are there until the child is waited for, and it has not been.
        (
            self.raw_handle().unwrap_or_default(),
            self.id().unwrap_or(0),
        )
    }

    fn abandon(&mut self) {
        // tokio reaps it; a wait here would block.
        let _ = self.start_kill();
    }
}

/// Resumes the suspended child: NtResumeProcess where ntdll has it, else each of its threads
/// found in a toolhelp snapshot (only the main thread exists yet).
fn resume(process: HANDLE, pid: u32) -> io::Result<()> {
    if let Some(nt_resume) = handle::nt_resume_process() {
        // SAFETY: `process` is a valid handle with PROCESS_SUSPEND_RESUME (it has all rights).
        let status = unsafe { nt_resume(process) };
        if handle::nt_success(status) {
            return Ok(());
        }
    }
    resume_threads(pid)
}

fn resume_threads(pid: u32) -> io::Result<()> {
    // SAFETY: a thread snapshot of the whole system; the result is checked by `owned`.
    let snapshot = owned(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) })?;
    let mut entry = THREADENTRY32 {
        dwSize: size_of::<THREADENTRY32>() as u32,
        ..THREADENTRY32::default()
    };
    let mut resumed = 0;
    // SAFETY: `snapshot` is valid and `entry` is writable with its dwSize set.
    let mut more = unsafe { Thread32First(raw(&snapshot), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: OpenThread takes plain values and returns a new handle or null.
            let thread =
                owned(unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) })?;
            // SAFETY: `thread` is valid with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(raw(&thread)) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(raw(&snapshot), &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(
            "the suspended child has no thread to resume",
        ));
    }
    Ok(())
}
