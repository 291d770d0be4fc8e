//! What the keeper does for a job its owner held to the end, once it holds the job's lock
//! exclusively (no other process holds it): what the library's last close does (see
//! `shared::lifetime`), from the job's marks alone. It kills the job if it is marked
//! kill-on-close, and removes it once empty if this library made it and it is not persistent.
//! Nothing here allocates (see `raw`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::fs::AtFlags;
use rustix::process::{Pid, Signal};

use super::raw::{self, Name};
use super::watch::{Job, Keeper, Parent};
use super::{MAX_PARENTS, V2};
use crate::sys::linux::cgroup::dir;
use crate::sys::linux::cgroup::{JOB_MARK, KILL_ON_CLOSE_MARK, PERSISTENT_MARK};

/// How long a killed job may take to empty (as `TERMINATE_WAIT` in `lifetime`).
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a removal retries while the kernel reports a just-emptied cgroup busy.
const REMOVE_RETRY: Duration = dir::REMOVE_RETRY;

/// What is left to do for a job.
pub(super) enum Outcome {
    Done,
    /// It still holds processes: remove it once it is empty.
    WhenEmpty,
}

/// The last close, for a job whose lock the keeper holds exclusively.
pub(super) fn last_close(keeper: &Keeper, job: &Job) -> Outcome {
    let fd = job.fd();
    let terminate = dir::has_mark(fd, KILL_ON_CLOSE_MARK);
    let persistent = dir::has_mark(fd, PERSISTENT_MARK);
    let made = dir::has_mark(fd, JOB_MARK);
    let owned = (made || terminate) && !persistent;
    if terminate {
        kill(keeper, job);
        if owned {
            remove_unheld_nested(keeper, job);
        }
    }
    if !owned {
        return Outcome::Done;
    }
    remove(keeper, job)
}

/// Removes the job if it is empty: the other directories first, then its primary one, which
/// holds the marks (while one of the others is busy the job stays findable). A job with
/// nested jobs stays, as the library leaves it.
pub(super) fn remove(keeper: &Keeper, job: &Job) -> Outcome {
    let mut others: [Option<(&Parent, (u64, u64))>; MAX_PARENTS] = [None; MAX_PARENTS];
    let mut primary = None;
    for (slot, parent) in others.iter_mut().zip(keeper.group(job.group)) {
        if primary.is_none() {
            primary = Some(parent);
            continue;
        }
        // Their identities now, while the job (held and whole) cannot be replaced.
        *slot = dir::identity_at(parent.fd(), job.name.as_cstr())
            .ok()
            .map(|identity| (parent, identity));
    }
    let Some(primary) = primary else {
        return Outcome::Done;
    };
    let Ok(identity) = dir::identity(job.fd()) else {
        return Outcome::Done;
    };
    if has_subdirs(job.fd()) {
        return Outcome::Done;
    }
    let mut waited = Duration::ZERO;
    let targets = others
        .iter()
        .flatten()
        .map(|(parent, identity)| (*parent, *identity))
        .chain(std::iter::once((primary, identity)));
    for (parent, identity) in targets {
        loop {
            match raw::remove_if_same(parent.fd(), job.name.as_cstr(), identity) {
                Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {
                    if populated(keeper, job) || waited >= REMOVE_RETRY {
                        return Outcome::WhenEmpty;
                    }
                    // Its last process exited a moment ago: the kernel frees it soon.
                    pause(&mut waited);
                }
                // Gone, or not the job's any more: the next.
                Err(_) | Ok(()) => break,
            }
        }
    }
    Outcome::Done
}

/// A short pause that grows with the time already waited, added to it.
fn pause(waited: &mut Duration) {
    let delay = (*waited / 2).clamp(Duration::from_micros(100), Duration::from_millis(50));
    raw::sleep(delay);
    *waited += delay;
}

fn has_subdirs(fd: BorrowedFd<'_>) -> bool {
    let mut any = false;
    let _ = raw::for_each_subdir(fd, |_| any = true);
    any
}

/// Whether any process is in the job or below it. On v2 `cgroup.events` tells (read through
/// the job's held file while it is reaped, which also rearms its notification); on v1 the
/// `cgroup.procs` of the job and its nested cgroups.
fn populated(keeper: &Keeper, job: &Job) -> bool {
    if keeper.group_tags(job.group) & V2 == 0 {
        return any_process(job.fd());
    }
    let mut text = [0u8; 256];
    let read = match job.events {
        fd if fd >= 0 => {
            // SAFETY: the job's descriptors stay open while it is in the keeper's tables.
            raw::pread(unsafe { BorrowedFd::borrow_raw(fd) }, &mut text)
        }
        _ => raw::read(job.fd(), c"cgroup.events", &mut text),
    };
    match read {
        Ok(n) => !raw::has_line(text.get(..n).unwrap_or_default(), b"populated", b"0"),
        Err(_) => false,
    }
}

fn any_process(fd: BorrowedFd<'_>) -> bool {
    let mut any = false;
    let _ = raw::for_each_pid(fd, |_| any = true);
    if !any {
        let _ = raw::for_each_subdir(fd, |name| {
            any = any || dir::open_child(fd, name).is_ok_and(|c| any_process(c.as_fd()));
        });
    }
    any
}

/// SIGKILLs every process of the job and its nested cgroups, and waits for them to be gone:
/// `cgroup.kill` where there is one; else passes over the job's processes repeat until it is
/// empty (a process forked before its parent's signal is caught by the next pass). The
/// keeper does not freeze the job first: in the v1-only guest (Linux 6.1) freezing took over
/// a second, and killing while it froze locked the kernel up. Processes frozen by the v1
/// freezer are thawed, or they would ignore the signal.
fn kill(keeper: &Keeper, job: &Job) {
    let v2 = keeper.group_tags(job.group) & V2 != 0;
    let killed = v2 && raw::write(job.fd(), c"cgroup.kill", b"1").is_ok();
    let freezer = keeper
        .freezer(job.group)
        .and_then(|p| dir::open_child(p.fd(), job.name.as_cstr()).ok());
    if !killed {
        signal_tree(job.fd());
    }
    if let Some(freezer) = &freezer {
        thaw_tree(freezer.as_fd());
    }
    let mut waited = Duration::ZERO;
    while populated(keeper, job) && waited < KILL_WAIT {
        if !killed {
            signal_tree(job.fd());
        }
        pause(&mut waited);
    }
}

/// SIGKILLs every process listed in the cgroup and its descendants.
fn signal_tree(fd: BorrowedFd<'_>) {
    let _ = raw::for_each_pid(fd, |pid| {
        if let Some(pid) = Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    });
    let _ = raw::for_each_subdir(fd, |name| {
        if let Ok(child) = dir::open_child(fd, name) {
            signal_tree(child.as_fd());
        }
    });
}

/// Thaws a v1 freezer cgroup and each one below it that was frozen by itself.
fn thaw_tree(freezer: BorrowedFd<'_>) {
    let mut state = [0u8; 8];
    let self_frozen = raw::read(freezer, c"freezer.self_freezing", &mut state)
        .is_ok_and(|n| state.get(..n).is_some_and(|s| s.starts_with(b"1")));
    if self_frozen {
        let _ = raw::write(freezer, c"freezer.state", b"THAWED");
    }
    let _ = raw::for_each_subdir(freezer, |name| {
        if let Ok(child) = dir::open_child(freezer, name) {
            thaw_tree(child.as_fd());
        }
    });
}

/// After a kill: removes the cgroups nested in the job (jobs made inside it, whose creators
/// died with it), deepest first, unless a process holds one (its lock).
fn remove_unheld_nested(keeper: &Keeper, job: &Job) {
    let mut dirs: [Option<OwnedFd>; MAX_PARENTS] = Default::default();
    for (slot, parent) in dirs.iter_mut().zip(keeper.group(job.group)) {
        *slot = dir::open_child(parent.fd(), job.name.as_cstr()).ok();
    }
    let _ = raw::for_each_subdir(job.fd(), |name| {
        if let Some(relative) = Name::new(name.to_bytes()) {
            remove_nested(&dirs, &relative);
        }
    });
}

/// Removes the nested cgroup at `relative` below the job (whose directory in each hierarchy
/// is in `dirs`, the primary one first) and everything below it; returns whether it is gone.
fn remove_nested(dirs: &[Option<OwnedFd>], relative: &Name) -> bool {
    let Some(Some(primary)) = dirs.first() else {
        return false;
    };
    let Ok(nested) = dir::open_child(primary.as_fd(), relative.as_cstr()) else {
        return false;
    };
    if !dir::try_lock(nested.as_fd(), true).unwrap_or(false) {
        return false;
    }
    let mut gone = true;
    let _ = raw::for_each_subdir(nested.as_fd(), |name| {
        let mut deeper = *relative;
        gone &= deeper.join(name.to_bytes()) && remove_nested(dirs, &deeper);
    });
    if !gone {
        return false;
    }
    for d in dirs.iter().rev().flatten() {
        let mut waited = Duration::ZERO;
        loop {
            match rustix::fs::unlinkat(d, relative.as_cstr(), AtFlags::REMOVEDIR) {
                Err(rustix::io::Errno::BUSY) if waited < REMOVE_RETRY => {
                    pause(&mut waited);
                }
                Ok(()) | Err(rustix::io::Errno::NOENT) => break,
                Err(_) => {
                    gone = false;
                    break;
                }
            }
        }
    }
    gone
}
