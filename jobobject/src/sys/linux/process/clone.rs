//! Starting the child: clone3 straight into a cgroup, or a vfork-style clone, both sharing
//! the caller's memory and running [`child_main`](super::exec::child_main) on a stack of
//! their own.
//!
//! libc has no clone3 wrapper, and a clone3 that gives the child a new stack cannot be made
//! through `syscall(2)`: the child would return from it on a stack with no frames. So on
//! x86_64 and aarch64 the call is a few instructions of inline assembly that jump straight to
//! the child's entry in the child; elsewhere there is only the vfork-style path.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

use super::exec::{Exec, child_main};

/// A child that was cloned: its pid and, where the kernel gave one, its pidfd.
pub(super) struct Cloned {
    pub(super) pid: libc::pid_t,
    pub(super) pidfd: Option<OwnedFd>,
}

/// Whether this build can clone3 with a stack of the child's own.
pub(super) const HAS_CLONE3: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// clone3 with `CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_INTO_CGROUP`: the child is born
/// in the v2 cgroup `cgroup`. Returns when it has exec'd or exited.
pub(super) fn into_cgroup(exec: &Exec, cgroup: BorrowedFd<'_>) -> io::Result<Cloned> {
    with_stack(|stack| {
        let mut pidfd: c_int = -1;
        let mut args = CloneArgs {
            flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64
                | CLONE_INTO_CGROUP,
            pidfd: &raw mut pidfd as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.base as u64,
            stack_size: stack.len as u64,
            cgroup: cgroup.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        let arg = ptr::from_ref(exec).cast_mut().cast::<c_void>();
        // SAFETY: `args` is a valid clone_args; the child runs `child_main(arg)` on `stack`,
        // which stays mapped and unused by anyone else until it has exec'd or exited, and
        // `exec` outlives it (CLONE_VFORK suspends this thread until then).
        let pid = with_signals_blocked(|| unsafe { clone3(&mut args, child_main, arg) });
        let pid = if pid < 0 {
            Err(io::Error::from_raw_os_error(-pid as i32))
        } else {
            Ok(pid as libc::pid_t)
        };
        cloned(pid, pidfd)
    })
}

/// The vfork-style clone (`CLONE_VM | CLONE_VFORK`, with `CLONE_PIDFD` when `pidfd`), for
/// where clone3 or `CLONE_INTO_CGROUP` is not available: the child joins the job itself.
pub(super) fn vfork(exec: &Exec, pidfd: bool) -> io::Result<Cloned> {
    with_stack(|stack| {
        let mut fd: c_int = -1;
        let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        if pidfd {
            flags |= libc::CLONE_PIDFD;
        }
        let arg = ptr::from_ref(exec).cast_mut().cast::<c_void>();
        let top = stack.base.wrapping_add(stack.len).cast::<c_void>();
        // SAFETY: as for clone3; glibc's clone switches to `top` and calls `child_main(arg)`
        // in the child. With CLONE_PIDFD it stores the pidfd in `fd` (its parent_tid
        // argument).
        let pid = with_signals_blocked(|| {
            match unsafe { libc::clone(child_main, top, flags, arg, &raw mut fd) } {
                -1 => Err(io::Error::last_os_error()),
                pid => Ok(pid),
            }
        });
        cloned(pid, fd)
    })
}

fn cloned(pid: io::Result<libc::pid_t>, pidfd: c_int) -> io::Result<Cloned> {
    let pid = pid?;
    // SAFETY: the kernel wrote a new descriptor there, or left -1.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    Ok(Cloned { pid, pidfd })
}

/// Runs `f` with every signal blocked in this thread: the child starts with them blocked,
/// so no handler of the caller's can run on the shared memory before the child has reset
/// it.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data, filled by sigfillset before use.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigset_t.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let result = f();
    // SAFETY: restores the mask read above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
    result
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` up to `cgroup` (version 2, 88 bytes, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

type ChildFn = extern "C" fn(*mut c_void) -> c_int;

/// The raw clone3: in the child, calls `f(arg)` on the new stack and exits with its result
/// if it returns; in the caller, returns the child's pid or `-errno`.
///
/// # Safety
/// `args` must be valid, with a stack that `f` may use alone until it execs or exits.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3(args: &mut CloneArgs, f: ChildFn, arg: *mut c_void) -> i64 {
    let result: i64;
    // SAFETY: the caller's contract. In the child every register but rax, rcx, r11 and rsp
    // holds the caller's value, so `f` and `arg` are still there; rsp is the new stack's top,
    // 16-byte aligned, so after `call` `f` sees the ABI's alignment. rcx and r11 are
    // declared clobbered before the inputs are placed, so neither holds `f` or `arg`.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, {arg}",
            "call {f}",
            "mov edi, eax",
            "mov eax, 231", // exit_group
            "syscall",
            "ud2",
            "2:",
            f = in(reg) f,
            arg = in(reg) arg,
            inlateout("rax") libc::SYS_clone3 => result,
            in("rdi") ptr::from_mut(args),
            in("rsi") size_of::<CloneArgs>(),
            out("rcx") _,
            out("r11") _,
        );
    }
    result
}

/// See the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn clone3(args: &mut CloneArgs, f: ChildFn, arg: *mut c_void) -> i64 {
    let result: i64;
    // SAFETY: as on x86_64: in the child only x0 (0) and sp (the new, 16-byte aligned stack)
    // differ from the caller's registers, so `f` and `arg` are still there.
    unsafe {
        std::arch::asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, {arg}",
            "blr {f}",
            "mov x8, #94", // exit_group
            "svc #0",
            "brk #1",
            "2:",
            f = in(reg) f,
            arg = in(reg) arg,
            inlateout("x0") ptr::from_mut(args) => result,
            in("x1") size_of::<CloneArgs>(),
            in("x8") libc::SYS_clone3,
        );
    }
    result
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn clone3(_: &mut CloneArgs, _: ChildFn, _: *mut c_void) -> i64 {
    -(libc::ENOSYS as i64)
}

/// The child's stack: 64 KiB with a guard page below, mapped once per thread and kept.
struct Stack {
    base: *mut u8,
    len: usize,
    mapping: *mut c_void,
    mapped: usize,
}

const STACK_SIZE: usize = 64 * 1024;

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: sysconf takes a plain value.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let mapped = STACK_SIZE + page;
        // SAFETY: a new private anonymous mapping; the result is checked.
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack {
            base: mapping.cast::<u8>().wrapping_add(page),
            len: STACK_SIZE,
            mapping,
            mapped,
        };
        // SAFETY: the first page of the mapping made above becomes the guard page.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by no child any more (each child is gone
        // or exec'd before the call that lent it the stack returns).
        unsafe { libc::munmap(self.mapping, self.mapped) };
    }
}

thread_local! {
    static STACK: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

/// Lends `f` this thread's child stack (a new one while it is lent out or unavailable, as in
/// a thread-local destructor).
fn with_stack<T>(f: impl FnOnce(&Stack) -> io::Result<T>) -> io::Result<T> {
    let cached = STACK
        .try_with(|cell| cell.try_borrow_mut().ok().and_then(|mut slot| slot.take()))
        .ok()
        .flatten();
    let stack = match cached {
        Some(stack) => stack,
        None => Stack::new()?,
    };
    let result = f(&stack);
    let _ = STACK.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            slot.get_or_insert(stack);
        }
    });
    result
}
