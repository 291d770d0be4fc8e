//! Starting a keeper: cloned from its owner without `exec`, through a short-lived middle
//! process, so that it is nobody's child (it is reparented to init or the nearest subreaper,
//! which reaps it) and the owner's `wait` for any child never sees it.
//!
//! The middle process shares the owner's memory (`CLONE_VM | CLONE_VFORK`, as `posix_spawn`
//! does, so the owner's memory is copied once, for the keeper). The keeper then lets go of
//! what it does not need of that copy: every anonymous mapping (heap, thread stacks) except
//! its own stack, so that it neither pins the owner's memory nor counts it as its own. It
//! keeps the mapped files (its code) and its own stack, and runs on system calls alone (see
//! `raw`).

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};

use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use super::raw::{MapVec, Name};
use super::watch::Keeper;

/// The keeper's stack: its loop, and the recursion over nested cgroups (a few KiB a level).
const KEEPER_STACK: usize = 1 << 20;
/// The middle process only clones the keeper.
const MIDDLE_STACK: usize = 64 << 10;
const PAGE: usize = 4096;

/// What the keeper starts with, read by the middle process (sharing the owner's memory) and
/// by the keeper (in its copy of that memory, before it lets go of it).
#[derive(Clone, Copy)]
struct Start {
    socket: RawFd,
    pidfd: RawFd,
    mark: Name,
    /// Where the keeper's stack ends (it grows down).
    keeper_stack: *mut c_void,
    /// The owner's anonymous mappings, for the keeper to unmap.
    unmap: *const (usize, usize),
    unmap_len: usize,
    /// Ranges the keeper keeps whatever the list says: its stacks, the list itself, and the
    /// C library's thread data (see [`thread_data`]).
    keep: [(usize, usize); 3],
    /// Written by the middle process: the keeper's pid, or -1.
    keeper_pid: i32,
}

/// Memory mapped for the two stacks, unmapped in the owner once the middle process is done.
struct Stacks {
    base: NonNull<c_void>,
    len: usize,
}

impl Stacks {
    fn map() -> io::Result<Self> {
        let len = KEEPER_STACK + MIDDLE_STACK;
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?
        };
        let base = NonNull::new(base).ok_or(io::ErrorKind::OutOfMemory)?;
        // A guard page below each stack: an overflow faults instead of writing elsewhere.
        for guard in [0, KEEPER_STACK] {
            // SAFETY: the page lies inside this mapping, which nothing else uses yet.
            unsafe {
                rustix::mm::mprotect(
                    base.as_ptr().cast::<u8>().add(guard).cast(),
                    PAGE,
                    MprotectFlags::empty(),
                )?;
            }
        }
        Ok(Stacks { base, len })
    }

    fn top(&self, end: usize) -> *mut c_void {
        // SAFETY: `end` is at most the mapping's length.
        unsafe { self.base.as_ptr().cast::<u8>().add(end).cast() }
    }

    fn range(&self) -> (usize, usize) {
        let start = self.base.as_ptr() as usize;
        (start, start + self.len)
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's, and the middle process that used it is gone.
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr(), self.len) };
    }
}

/// Starts a keeper that watches the owner's end through `socket` (its end of the pair) and
/// `pidfd` (the owner's), and acts for the jobs marked `mark`. Returns its pid.
pub(super) fn launch(socket: &OwnedFd, pidfd: Option<&OwnedFd>, mark: Name) -> io::Result<u32> {
    let stacks = Stacks::map()?;
    let unmap = anonymous_mappings(&[stacks.range()])?;
    let list_start = unmap.as_slice().as_ptr() as usize;
    let list_end = list_start + size_of_val(unmap.as_slice());
    let mut start = Start {
        socket: socket.as_raw_fd(),
        pidfd: pidfd.map_or(-1, AsRawFd::as_raw_fd),
        mark,
        keeper_stack: stacks.top(KEEPER_STACK),
        unmap: unmap.as_slice().as_ptr(),
        unmap_len: unmap.len(),
        keep: [stacks.range(), (list_start, list_end), thread_data()],
        keeper_pid: -1,
    };
    let middle = {
        let _blocked = BlockedSignals::block();
        // SAFETY: the middle process runs `middle` on its own stack in `stacks`, sharing this
        // process's memory while this thread waits (CLONE_VFORK); `start` outlives it. It
        // calls only `clone`, and writes only `start.keeper_pid`.
        unsafe {
            libc::clone(
                middle,
                stacks.top(KEEPER_STACK + MIDDLE_STACK),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                ptr::from_mut(&mut start).cast(),
            )
        }
    };
    if middle < 0 {
        return Err(io::Error::last_os_error());
    }
    reap(middle);
    // SAFETY: written by the middle process, which has exited.
    let pid = unsafe { ptr::read_volatile(&raw const start.keeper_pid) };
    drop(stacks);
    u32::try_from(pid).map_err(|_| io::Error::other("the keeper could not be cloned"))
}

/// Around this thread's thread control block and `errno`: the C library reads them on some
/// calls (`close` checks for cancellation, a failed call sets `errno`), and so does std's
/// `OwnedFd` when it closes a descriptor. The keeper runs with this thread's thread pointer.
fn thread_data() -> (usize, usize) {
    /// Static TLS (the C library's and the program's) lies next to the control block.
    const MARGIN: usize = 256 << 10;
    // SAFETY: both return addresses in this thread's own data; nothing is dereferenced.
    let (tcb, errno) = unsafe {
        (
            libc::pthread_self() as usize,
            libc::__errno_location() as usize,
        )
    };
    let low = tcb.min(errno).saturating_sub(MARGIN) & !(PAGE - 1);
    let high = (tcb.max(errno).saturating_add(MARGIN) + PAGE - 1) & !(PAGE - 1);
    (low, high)
}

/// Reaps the middle process (unless the owner's own `wait` for any child got it first).
fn reap(pid: i32) {
    loop {
        // SAFETY: waits for our own child; no memory is passed.
        let r = unsafe { libc::waitpid(pid, ptr::null_mut(), 0) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Every signal blocked on this thread while it clones, so that no handler of the owner
/// runs in the middle process or in the keeper before it resets them; restored when dropped.
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn block() -> Self {
        // SAFETY: sigset_t is plain data, filled by sigfillset; pthread_sigmask only reads
        // and writes the sets given.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockedSignals(old)
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, ptr::null_mut()) };
    }
}

/// The middle process: clones the keeper, tells its pid, and exits (which resumes the owner).
extern "C" fn middle(arg: *mut c_void) -> i32 {
    let start = arg.cast::<Start>();
    // SAFETY: `arg` is the owner's `Start`, alive while the owner waits for this process;
    // the keeper's stack lies in the owner's mapping, copied into the keeper with the rest.
    unsafe {
        let pid = libc::clone(keeper, (*start).keeper_stack, libc::SIGCHLD, arg);
        ptr::write_volatile(&raw mut (*start).keeper_pid, pid);
    }
    0
}

/// The keeper: detaches from the owner's session, signals and files, lets go of the owner's
/// memory, and runs.
extern "C" fn keeper(arg: *mut c_void) -> i32 {
    // SAFETY: the keeper's copy of the owner's `Start`, read before anything is unmapped.
    let start = unsafe { *arg.cast::<Start>() };
    detach();
    let (socket, pidfd) = keep_only(start.socket, start.pidfd);
    let _ = rustix::thread::set_name(c"jobobject-keep");
    raise_file_limit();
    // SAFETY: the list lies in a mapping the keeper keeps; each range is unmapped only
    // where it misses the ranges the keeper runs on.
    unsafe { unmap_all(&start) };
    let (Some(socket), pidfd) = (socket, pidfd) else {
        return 1;
    };
    Keeper::new(socket, pidfd, start.mark).run();
    0
}

/// A session of its own (no terminal's signals reach it), the default action for every
/// signal but those a terminal or a pipe sends, which it ignores, and none blocked.
fn detach() {
    let _ = rustix::process::setsid();
    // SAFETY: sigaction and sigprocmask with sets built here; async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        for signal in 1..libc::SIGRTMAX() {
            action.sa_sigaction = match signal {
                libc::SIGINT
                | libc::SIGQUIT
                | libc::SIGHUP
                | libc::SIGPIPE
                | libc::SIGTSTP
                | libc::SIGTTIN
                | libc::SIGTTOU => libc::SIG_IGN,
                _ => libc::SIG_DFL,
            };
            libc::sigaction(signal, &action, ptr::null_mut());
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, ptr::null_mut());
    }
}

/// Keeps the socket (as 3) and the pidfd (as 4), `/dev/null` as 0, 1 and 2, and closes every
/// other descriptor inherited from the owner: its job descriptors above all, whose locks
/// would otherwise outlive it.
fn keep_only(socket: RawFd, pidfd: RawFd) -> (Option<OwnedFd>, Option<OwnedFd>) {
    // SAFETY: plain descriptor calls on numbers this process has or gets here.
    unsafe {
        let high_socket = libc::fcntl(socket, libc::F_DUPFD_CLOEXEC, 10);
        let high_pidfd = match pidfd {
            -1 => -1,
            fd => libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10),
        };
        let socket = (high_socket >= 0 && libc::dup3(high_socket, 3, libc::O_CLOEXEC) == 3)
            .then(|| OwnedFd::from_raw_fd(3));
        let pidfd = (high_pidfd >= 0 && libc::dup3(high_pidfd, 4, libc::O_CLOEXEC) == 4)
            .then(|| OwnedFd::from_raw_fd(4));
        let first = if pidfd.is_some() { 5 } else { 4 };
        if libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) != 0 {
            for fd in first..65_536 {
                libc::close(fd as RawFd);
            }
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        for fd in 0..3 {
            if null >= 0 {
                libc::dup2(null, fd);
            } else {
                libc::close(fd);
            }
        }
        if null > 2 {
            libc::close(null);
        }
        (socket, pidfd)
    }
}

/// Takes the soft limit on open files up to the hard one: the keeper holds a descriptor for
/// each job it is acting for.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// Unmaps the owner's anonymous mappings listed in `start`, around the kept ranges.
///
/// # Safety
/// Nothing the caller uses may lie in the listed ranges outside `start.keep`.
unsafe fn unmap_all(start: &Start) {
    // SAFETY: the list is `unmap_len` pairs in a kept range.
    let list = unsafe { std::slice::from_raw_parts(start.unmap, start.unmap_len) };
    let mut keep = start.keep;
    keep.sort_unstable();
    for &(mut from, to) in list {
        for &(keep_start, keep_end) in &keep {
            if keep_end <= from || keep_start >= to {
                continue;
            }
            if keep_start > from {
                // SAFETY: per this function's contract.
                let _ = unsafe { rustix::mm::munmap(from as *mut c_void, keep_start - from) };
            }
            from = from.max(keep_end);
        }
        if from < to {
            // SAFETY: per this function's contract.
            let _ = unsafe { rustix::mm::munmap(from as *mut c_void, to - from) };
        }
    }
}

/// The ranges of this process's anonymous memory (heap, thread stacks, allocations), from
/// `/proc/self/maps`, except `keep` and an anonymous mapping right after a mapped file (a
/// program's or library's zero-initialised data).
fn anonymous_mappings(keep: &[(usize, usize)]) -> io::Result<MapVec<(usize, usize)>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut ranges = Vec::new();
    let mut previous_file_end = None;
    for line in maps.lines() {
        let Some((range, path)) = parse_line(line) else {
            continue;
        };
        let anonymous = path.is_empty()
            || path == "[heap]"
            || path == "[stack]"
            || path.starts_with("[anon:")
            || path.starts_with("[anon_shmem:");
        let data_of_file = path.is_empty() && previous_file_end == Some(range.0);
        if anonymous && !data_of_file && !keep.contains(&range) {
            ranges.push(range);
        }
        previous_file_end = (!path.is_empty() && !path.starts_with('[')).then_some(range.1);
    }
    let mut list = MapVec::new();
    for range in ranges {
        list.push(range)?;
    }
    Ok(list)
}

/// A `/proc/self/maps` line: its address range and its path (empty for anonymous memory).
fn parse_line(line: &str) -> Option<((usize, usize), &str)> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let range = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    let path = fields.nth(4).unwrap_or("").trim_start();
    Some((range, path))
}

/// A pidfd of this process, for its keeper to see it exit.
pub(super) fn own_pidfd() -> Option<OwnedFd> {
    let pid = rustix::process::getpid();
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// Whether the keeper's end of `socket` is gone (the keeper died).
pub(super) fn peer_gone(socket: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut polled = [PollFd::from_borrowed_fd(socket, PollFlags::empty())];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    rustix::event::poll(&mut polled, Some(&zero)).is_ok_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_read() {
        let line = "7f00-7f10 rw-p 00000000 00:00 0 ";
        assert_eq!(parse_line(line), Some(((0x7f00, 0x7f10), "")));
        let line = "5600-5610 r-xp 00001000 08:01 1234                       /usr/bin/true";
        assert_eq!(parse_line(line), Some(((0x5600, 0x5610), "/usr/bin/true")));
        let line = "5700-5800 rw-p 00000000 00:00 0                          [heap]";
        assert_eq!(parse_line(line), Some(((0x5700, 0x5800), "[heap]")));
    }

    #[test]
    fn allocations_are_listed_and_code_is_not() {
        // Large enough to get a mapping of its own from the allocator.
        let allocation = vec![1u8; 4 << 20];
        let list = anonymous_mappings(&[]).unwrap();
        let listed = |addr: usize| list.as_slice().iter().any(|&(s, e)| s <= addr && addr < e);
        assert!(
            listed(allocation.as_ptr() as usize),
            "an allocation is let go"
        );
        let code = anonymous_mappings as *const () as usize;
        assert!(!listed(code), "code is kept");
    }
}
