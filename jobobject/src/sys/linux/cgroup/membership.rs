//! Membership: processes in and out of a job's cgroups, and killing them all.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::{dir, parse};

/// `PF_EXITING` and `PF_KTHREAD` in the flags of `/proc/PID/stat`.
const PF_EXITING: u64 = 0x0000_0004;
const PF_KTHREAD: u64 = 0x0020_0000;
/// `SCHED_FIFO` and `SCHED_RR`: the real-time policies the cpu controller budgets.
const REALTIME_POLICIES: [u64; 2] = [1, 2];

/// The fields of a `/proc/.../stat` line after the command: "PID (COMMAND) STATE PPID ...",
/// where the command may contain any byte, `)` and spaces included. Index 0 is the state.
fn stat_fields(stat: &[u8]) -> Option<Vec<&str>> {
    let end = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(end + 1..)?).ok()?;
    Some(rest.split_whitespace().collect())
}

/// The stat fields of every thread of process `pid`.
fn thread_stats(pid: u32) -> Vec<Vec<u8>> {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    threads
        .flatten()
        .filter_map(|thread| std::fs::read(thread.path().join("stat")).ok())
        .collect()
}

/// Whether process `pid` has a thread that has not exited (a zombie has none; a process whose
/// main thread exited before the others still has).
pub(super) fn is_alive(pid: u32) -> bool {
    thread_stats(pid).iter().any(|stat| {
        let state = stat_fields(stat).and_then(|f| f.first().and_then(|s| s.bytes().next()));
        !matches!(state, None | Some(b'Z' | b'X' | b'x'))
    })
}

/// Whether a thread of process `pid` runs under a real-time policy (`SCHED_FIFO`, `SCHED_RR`).
pub(super) fn is_realtime(pid: u32) -> bool {
    thread_stats(pid).iter().any(|stat| {
        // Field 41 of stat(5): the policy; index 38 after the command.
        stat_fields(stat)
            .and_then(|f| f.get(38).and_then(|p| p.parse().ok()))
            .is_some_and(|policy: u64| REALTIME_POLICIES.contains(&policy))
    })
}

/// The flags of process `pid` (field 9 of stat(5)); `None` when it does not exist.
fn process_flags(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    stat_fields(&stat)?.get(6)?.parse().ok()
}

/// Whether process `pid` is a kernel thread; `None` when it does not exist.
pub(crate) fn is_kernel_thread(pid: u32) -> Option<bool> {
    Some(process_flags(pid)? & PF_KTHREAD != 0)
}

/// Whether process `pid` is exiting, or gone: the kernel no longer moves it between cgroups,
/// and v1 shows it in the root cgroup.
pub(super) fn is_exiting(pid: u32) -> bool {
    process_flags(pid).is_none_or(|flags| flags & PF_EXITING != 0)
}

/// Writes a pid to `cgroup.procs`, retrying `EINVAL` briefly: the kernel refuses a task that is
/// still being created.
pub(super) fn write_procs(cgroup: BorrowedFd<'_>, pid: &[u8]) -> io::Result<()> {
    let mut attempts = 0;
    loop {
        match dir::write(cgroup, "cgroup.procs", pid) {
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && attempts < 20 => {
                attempts += 1;
                thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

pub(super) fn collect_pids(cgroup: BorrowedFd<'_>, pids: &mut BTreeSet<u32>) -> io::Result<()> {
    pids.extend(parse::pids(&dir::read(cgroup, "cgroup.procs")?)?);
    for name in dir::subdirectories(cgroup)? {
        match dir::open_child(cgroup, &name) {
            Ok(child) => collect_pids(child.as_fd(), pids)?,
            // A nested job removed meanwhile.
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Sends `signal` to every process in the cgroup tree until a pass finds none it has not
/// signalled. A process forked by a signalled one after the last pass was forked with the
/// signal pending, which the kernel refuses (the fork is restarted after the signal), unless
/// the signal was blocked or ignored there.
pub(super) fn signal_until_none_new(cgroup: BorrowedFd<'_>, signal: Signal) -> io::Result<()> {
    let mut signalled = BTreeSet::new();
    loop {
        let mut pids = BTreeSet::new();
        collect_pids(cgroup, &mut pids)?;
        let fresh: Vec<u32> = pids.difference(&signalled).copied().collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for pid in fresh {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                match rustix::process::kill_process(pid, signal) {
                    Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            signalled.insert(pid);
        }
    }
}
