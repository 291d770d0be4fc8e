//! Starting a process that is inside the job before it runs any code of its own.
//!
//! `std::process::Command` is the interface, so the child joins from inside: a `pre_exec`
//! hook writes `0` (the writer itself) to the job's `cgroup.procs` in every hierarchy, after
//! the fork and before the exec. clone3's `CLONE_INTO_CGROUP` would place it at the fork, but
//! std offers no way to pass it, and a `Child` can only come from std's own spawn.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use super::cgroup::{JobCgroups, dir};
use crate::Error;

/// Spawns `command` with a hook that puts the child in `cgroups` first.
pub(crate) fn spawn(cgroups: &JobCgroups, command: &mut Command) -> Result<Child, Error> {
    // The hook stays on the command and owns its descriptors: a later spawn of the same
    // command joins the same job (or fails once the job is gone), never a recycled fd.
    let files = cgroups.join_files()?;
    let hook = move || join(&files);
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it makes one write(2) per descriptor and allocates nothing
    // (`io::Error::from_raw_os_error` does not allocate).
    unsafe { command.pre_exec(hook) };
    command.spawn().map_err(|source| Error::Os {
        job: format!("{:?}", cgroups.name()),
        op: format!("spawn {:?}", command.get_program()),
        path: None,
        source,
    })
}

fn join(files: &[OwnedFd]) -> io::Result<()> {
    for file in files {
        dir::write_all_once(file.as_fd(), b"0")?;
    }
    Ok(())
}
