//! What the child runs between its birth and `execve`, in the caller's address space.
//!
//! The child shares the caller's memory (`CLONE_VM`) and runs on a stack of its own while
//! the calling thread waits (`CLONE_VFORK`); the caller's other threads keep running. So
//! this code only reads what the caller prepared ([`Exec`]) and makes raw system calls: it
//! allocates nothing, takes no lock, calls no libc function that keeps state (glibc's
//! `setuid` would change the credentials of the caller's threads), and cannot panic. It
//! reports a failure through [`Report`], which the caller reads once the child is gone.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};

/// Everything the child needs, as raw pointers into storage the caller keeps alive until
/// the child has exec'd or exited.
#[derive(Debug)]
pub(super) struct Exec {
    /// Paths to try in turn (one, or one per `PATH` entry), each NUL-terminated.
    pub(super) candidates: Vec<*const c_char>,
    /// NULL-terminated.
    pub(super) argv: *const *const c_char,
    /// NULL-terminated.
    pub(super) envp: *const *const c_char,
    pub(super) cwd: Option<*const c_char>,
    /// For stdin, stdout, stderr: the descriptor to put there (`None`: inherited). None of
    /// them is 0, 1 or 2 unless it is already in its place.
    pub(super) stdio: [Option<c_int>; 3],
    /// `cgroup.procs` files the child writes `0` to, to join the job where it was not born.
    pub(super) join: Vec<c_int>,
    pub(super) process_group: Option<libc::pid_t>,
    /// Drop supplementary groups (root changing its user, as std does).
    pub(super) drop_groups: bool,
    pub(super) gid: Option<libc::gid_t>,
    pub(super) uid: Option<libc::uid_t>,
    pub(super) report: Report,
}

/// What the child tells the caller: whether it ran at all, and why it did not exec.
#[derive(Debug, Default)]
pub(super) struct Report {
    started: AtomicBool,
    stage: AtomicU8,
    errno: AtomicI32,
}

/// The step that failed in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Join = 1,
    ProcessGroup,
    Stdio,
    Groups,
    Gid,
    Uid,
    Chdir,
    Exec,
}

impl Stage {
    fn from_u8(value: u8) -> Option<Stage> {
        [
            Stage::Join,
            Stage::ProcessGroup,
            Stage::Stdio,
            Stage::Groups,
            Stage::Gid,
            Stage::Uid,
            Stage::Chdir,
            Stage::Exec,
        ]
        .into_iter()
        .find(|stage| *stage as u8 == value)
    }
}

impl Report {
    /// Whether the child ran any of this code (a child killed at birth did not).
    pub(super) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// The step that failed and its errno, if one did.
    pub(super) fn failure(&self) -> Option<(Stage, i32)> {
        let stage = Stage::from_u8(self.stage.load(Ordering::Acquire))?;
        Some((stage, self.errno.load(Ordering::Acquire)))
    }

    /// Forgets a run, for another attempt with the same [`Exec`].
    pub(super) fn reset(&self) {
        self.started.store(false, Ordering::Release);
        self.stage.store(0, Ordering::Release);
    }

    fn fail(&self, stage: Stage, errno: i32) {
        self.errno.store(errno, Ordering::Release);
        self.stage.store(stage as u8, Ordering::Release);
    }
}

/// The child's entry point: `arg` is the caller's [`Exec`]. Never returns.
pub(super) extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: the caller passes a pointer to its `Exec`, which it keeps alive and does not
    // touch until this child has exec'd or exited (the caller's thread is suspended by
    // CLONE_VFORK).
    let exec = unsafe { &*(arg as *const Exec) };
    exec.report.started.store(true, Ordering::Release);
    let (stage, errno) = run(exec);
    exec.report.fail(stage, errno);
    // SAFETY: exit_group takes a plain value and does not return.
    unsafe { libc::syscall(libc::SYS_exit_group, 127 as c_long) };
    127
}

/// Prepares the child and execs; returns only on failure.
fn run(exec: &Exec) -> (Stage, i32) {
    reset_signal_handlers();
    for &fd in &exec.join {
        if let Err(errno) = write_zero(fd) {
            return (Stage::Join, errno);
        }
    }
    if let Some(group) = exec.process_group {
        if let Err(errno) = syscall(libc::SYS_setpgid, [0, group as c_long, 0]) {
            return (Stage::ProcessGroup, errno);
        }
    }
    for (target, source) in (0..).zip(exec.stdio) {
        if let Some(source) = source {
            if let Err(errno) = install(source, target) {
                return (Stage::Stdio, errno);
            }
        }
    }
    if let Err(failure) = change_user(exec) {
        return failure;
    }
    if let Some(dir) = exec.cwd {
        if let Err(errno) = syscall(libc::SYS_chdir, [dir as c_long, 0, 0]) {
            return (Stage::Chdir, errno);
        }
    }
    unblock_signals();
    (Stage::Exec, exec_first(exec))
}

/// Resets every signal with a handler to its default action: a handler run in this child
/// would run on the caller's memory. Ignored signals stay ignored, except SIGPIPE, which std
/// ignores in Rust programs and resets for its children.
fn reset_signal_handlers() {
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction::default();
        let query = [signal as c_long, 0, &raw mut old as c_long, SIGSET_SIZE];
        if syscall4(libc::SYS_rt_sigaction, query).is_err() {
            continue;
        }
        let ignored = old.handler == libc::SIG_IGN;
        if old.handler == libc::SIG_DFL || (ignored && signal != libc::SIGPIPE) {
            continue;
        }
        let default = KernelSigaction::default();
        let set = [
            signal as c_long,
            &raw const default as c_long,
            0,
            SIGSET_SIZE,
        ];
        let _ = syscall4(libc::SYS_rt_sigaction, set);
    }
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 both have `sa_restorer`), not libc's.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The kernel's signal set size, in bytes.
const SIGSET_SIZE: c_long = 8;

/// Unblocks every signal (the caller blocked them all around the clone), as std leaves a
/// child's mask.
fn unblock_signals() {
    let empty: u64 = 0;
    let args = [
        libc::SIG_SETMASK as c_long,
        &raw const empty as c_long,
        0,
        SIGSET_SIZE,
    ];
    let _ = syscall4(libc::SYS_rt_sigprocmask, args);
}

fn write_zero(fd: c_int) -> Result<(), i32> {
    let zero = b"0";
    let written = syscall(libc::SYS_write, [fd as c_long, zero.as_ptr() as c_long, 1])?;
    if written == 1 { Ok(()) } else { Err(libc::EIO) }
}

/// Puts `source` at descriptor `target`, open across exec.
fn install(source: c_int, target: c_int) -> Result<(), i32> {
    if source == target {
        syscall(
            libc::SYS_fcntl,
            [source as c_long, libc::F_SETFD as c_long, 0],
        )
        .map(drop)
    } else {
        syscall(libc::SYS_dup3, [source as c_long, target as c_long, 0]).map(drop)
    }
}

/// Groups, then group, then user, as std orders them; per-process raw calls.
fn change_user(exec: &Exec) -> Result<(), (Stage, i32)> {
    if exec.drop_groups {
        syscall(libc::SYS_setgroups, [0, 0, 0]).map_err(|e| (Stage::Groups, e))?;
    }
    if let Some(gid) = exec.gid {
        syscall(libc::SYS_setgid, [gid as c_long, 0, 0]).map_err(|e| (Stage::Gid, e))?;
    }
    if let Some(uid) = exec.uid {
        syscall(libc::SYS_setuid, [uid as c_long, 0, 0]).map_err(|e| (Stage::Uid, e))?;
    }
    Ok(())
}

/// Tries each candidate path as `execvp` does: on to the next while the file is missing or
/// not allowed, stop at any other error; `EACCES` wins over a later `ENOENT`.
fn exec_first(exec: &Exec) -> i32 {
    let mut denied = false;
    let mut last = libc::ENOENT;
    for &path in &exec.candidates {
        let args = [path as c_long, exec.argv as c_long, exec.envp as c_long];
        let Err(errno) = syscall(libc::SYS_execve, args) else {
            continue; // execve does not return on success
        };
        last = errno;
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return errno,
        }
    }
    if denied { libc::EACCES } else { last }
}

fn syscall(number: c_long, args: [c_long; 3]) -> Result<c_long, i32> {
    syscall4(number, [args[0], args[1], args[2], 0])
}

/// A raw system call: on failure the kernel's errno, read from the (shared) errno slot
/// right after, before anything else can change it.
fn syscall4(number: c_long, args: [c_long; 4]) -> Result<c_long, i32> {
    // SAFETY: every call site passes arguments that are valid for its system call: plain
    // values, or pointers to live, correctly laid out memory of this process.
    let result = unsafe { libc::syscall(number, args[0], args[1], args[2], args[3]) };
    if result == -1 {
        // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(result)
    }
}
