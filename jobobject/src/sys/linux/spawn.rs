//! The compatibility path: a `std::process::Command` started inside the job.
//!
//! std returns a `Child` only from its own spawn, so the child joins from inside: a
//! `pre_exec` hook writes `0` (the writer itself) to the job's `cgroup.procs` in every
//! hierarchy, after the fork and before the exec. A hook makes std fork the caller instead
//! of using `posix_spawn`, which is why [`process`](super::process) exists.
//!
//! std offers no way to take a hook off a `Command`. So the hook is disarmed once the spawn
//! returns: it holds the descriptors in atomics, which the spawn empties and closes, and a
//! later spawn of the same `Command` finds nothing to join (it still forks).

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use super::cgroup::{JobCgroups, dir};
use crate::Error;

/// Spawns `command` with a hook that puts the child in `cgroups` first, then disarms it.
pub(crate) fn spawn(cgroups: &JobCgroups, command: &mut Command) -> Result<Child, Error> {
    spawn_with(cgroups, command, |command| command, Command::spawn)
}

/// Spawns a command that wraps a std `Command` (which `std_of` reaches) with `start`, after
/// arming the std one's hook; tokio's `Command` takes this path.
pub(crate) fn spawn_with<C, T>(
    cgroups: &JobCgroups,
    command: &mut C,
    std_of: impl Fn(&mut C) -> &mut Command,
    start: impl FnOnce(&mut C) -> io::Result<T>,
) -> Result<T, Error> {
    let files: Arc<[AtomicI32]> = cgroups
        .open_join_files()?
        .into_iter()
        .map(|(_, fd)| AtomicI32::new(fd.into_raw_fd()))
        .collect();
    let hook = Arc::clone(&files);
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it reads atomics, makes one write(2) per descriptor and allocates
    // nothing (`io::Error::from_raw_os_error` does not allocate).
    unsafe { std_of(command).pre_exec(move || join(&hook)) };
    let spawned = start(command);
    disarm(&files);
    spawned.map_err(|source| Error::Spawn {
        job: format!("{:?}", cgroups.name()),
        program: format!("{:?}", std_of(command).get_program()),
        source,
    })
}

fn join(files: &[AtomicI32]) -> io::Result<()> {
    for file in files {
        let fd = file.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: a descriptor is in the slot only while it is open (see `disarm`).
            dir::write_all_once(unsafe { BorrowedFd::borrow_raw(fd) }, b"0")?;
        }
    }
    Ok(())
}

/// Empties the hook's slots and closes their descriptors.
fn disarm(files: &[AtomicI32]) {
    for file in files {
        let fd = file.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: the slot owned this descriptor, and no one else will read it now.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}
