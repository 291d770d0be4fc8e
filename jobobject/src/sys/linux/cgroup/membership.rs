//! Membership: processes in and out of a job's cgroups, and killing them all.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::{dir, parse};

/// Whether process `pid` has a thread that has not exited (a zombie has none; a process whose
/// main thread exited before the others still has).
pub(super) fn is_alive(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        std::fs::read(thread.path().join("stat")).is_ok_and(|stat| {
            // "TID (COMMAND) STATE ...": the command may contain any byte, `)` included.
            let state = stat
                .iter()
                .rposition(|&b| b == b')')
                .and_then(|end| stat.get(end + 2));
            !matches!(state, None | Some(b'Z' | b'X' | b'x'))
        })
    })
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

/// SIGKILLs every process in the cgroup tree until a pass finds none it has not signalled.
pub(super) fn signal_until_none_new(cgroup: BorrowedFd<'_>) -> io::Result<()> {
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
                match rustix::process::kill_process(pid, Signal::KILL) {
                    Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            signalled.insert(pid);
        }
    }
}
