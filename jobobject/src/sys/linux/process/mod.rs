//! Starting a child inside a job at the cost of a plain spawn.
//!
//! The child shares the caller's memory and runs on a small stack of its own until it execs
//! (as glibc's `posix_spawn` does), so nothing is copied however large the caller is. Three
//! paths, tried in this order:
//! 1. **Born in the job**: clone3 with `CLONE_INTO_CGROUP` into the job's v2 cgroup (pure v2,
//!    or the unified mount of a hybrid host); on hybrid the child then joins the v1
//!    hierarchies by writing `0` to their `cgroup.procs` before it execs.
//! 2. **Joins the job**: a vfork-style clone (`CLONE_VM | CLONE_VFORK | CLONE_PIDFD`) whose
//!    child writes `0` to every `cgroup.procs` of the job before it execs. Used on v1-only
//!    hosts, where clone3 is missing or refused (`ENOSYS`, `E2BIG` before Linux 5.7, or
//!    `EINVAL`, `EOPNOTSUPP`, `EPERM`, as seccomp filters in containers return), and for a
//!    job whose v2 cgroup has been killed (Linux 6.18 kills every child later cloned into
//!    such a cgroup from outside it; a child killed before it ran a single instruction is
//!    detected, and the spawn is redone on this path).
//! 3. The same without `CLONE_PIDFD`, on kernels before 5.2.
//!
//! [`exec`] is the code the child runs; [`clone`] the system calls; [`plan`] what the caller
//! prepares.

mod child;
mod clone;
mod exec;
mod plan;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use super::cgroup::JobCgroups;
use crate::Error;
use crate::os::linux::{CommandOptions, SpawnPath};
use crate::process::Parts;
pub(crate) use child::Process;
use clone::Cloned;
use exec::{Exec, Stage};
use plan::Storage;

/// A child that runs in the job, and the caller's ends of its piped streams.
pub(crate) struct Spawned {
    pub(crate) process: Process,
    pub(crate) pipes: [Option<OwnedFd>; 3],
}

/// clone3 with `CLONE_INTO_CGROUP` was refused for good (no clone3, or too old a kernel).
static NO_CLONE_INTO_CGROUP: AtomicBool = AtomicBool::new(false);
/// clone refused `CLONE_PIDFD`.
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

/// Starts the program of `parts` in `cgroups`.
pub(crate) fn spawn(
    cgroups: &JobCgroups,
    parts: &Parts<'_>,
    options: &CommandOptions,
) -> Result<Spawned, Error> {
    let mut storage = Storage::default();
    let mut exec = plan::prepare(cgroups.name(), parts, options, &mut storage)?;
    let cloned = clone_into_job(cgroups, &mut exec, options.path)?;
    if let Some((stage, errno)) = exec.report.failure() {
        // It is gone (exited) or going: reap it so that it leaves no zombie.
        let _ = child::reap(cloned.pid, 0);
        if stage == Stage::Join {
            // The next spawn opens them anew (a directory may have been removed and made).
            cgroups.forget_join_files();
        }
        return Err(failure(cgroups, parts, stage, errno));
    }
    Ok(Spawned {
        process: Process::new(cloned.pid, cloned.pidfd),
        pipes: std::mem::take(&mut storage.parent_ends),
    })
}

/// Clones the child by the first path that works (see the module docs).
fn clone_into_job(
    cgroups: &JobCgroups,
    exec: &mut Exec,
    forced: Option<SpawnPath>,
) -> Result<Cloned, Error> {
    let v2 = cgroups.v2_fd();
    let try_born = match forced {
        Some(SpawnPath::BornInJob) => true,
        Some(_) => false,
        None => {
            clone::HAS_CLONE3
                && !NO_CLONE_INTO_CGROUP.load(Ordering::Relaxed)
                && cgroups.clone_into_usable()
        }
    };
    if let (true, Some(v2)) = (try_born, v2) {
        let join = cgroups.join_files()?;
        exec.join = join.raw(false);
        match clone::into_cgroup(&*exec, v2) {
            Ok(cloned) if exec.report.started() => return Ok(cloned),
            Ok(cloned) => {
                // Killed before it ran anything: the cgroup was killed (see the module docs).
                let _ = child::reap(cloned.pid, 0);
                cgroups.refuse_clone_into();
            }
            Err(err) if forced.is_none() && falls_back(&err) => {
                if matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::E2BIG)) {
                    NO_CLONE_INTO_CGROUP.store(true, Ordering::Relaxed);
                }
            }
            Err(err) => return Err(clone_error(cgroups, err)),
        }
        exec.report.reset();
    }
    if forced == Some(SpawnPath::BornInJob) && v2.is_none() {
        return Err(Error::Unsupported {
            what: "a child born in the job needs a cgroup v2 hierarchy".into(),
        });
    }
    let join = cgroups.join_files()?;
    exec.join = join.raw(true);
    let pidfd = forced != Some(SpawnPath::JoinWithoutPidfd) && !NO_PIDFD.load(Ordering::Relaxed);
    match clone::vfork(exec, pidfd) {
        Err(err) if pidfd && err.raw_os_error() == Some(libc::EINVAL) => {
            NO_PIDFD.store(true, Ordering::Relaxed);
            clone::vfork(exec, false)
        }
        result => result,
    }
    .map_err(|err| clone_error(cgroups, err))
}

/// Whether a clone3 error means "not here", so that the vfork-style path should be tried.
fn falls_back(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM)
    )
}

fn clone_error(cgroups: &JobCgroups, source: io::Error) -> Error {
    let op = if source.raw_os_error() == Some(libc::EAGAIN) {
        "start a process (the job's process limit, or the system's, refused it)"
    } else {
        "start a process"
    };
    Error::Os {
        job: format!("{:?}", cgroups.name()),
        op: op.into(),
        path: None,
        source,
    }
}

/// The error for a child that failed before it ran the program.
fn failure(cgroups: &JobCgroups, parts: &Parts<'_>, stage: Stage, errno: i32) -> Error {
    let job = format!("{:?}", cgroups.name());
    let source = io::Error::from_raw_os_error(errno);
    let op = match stage {
        Stage::Exec => {
            return Error::Spawn {
                job,
                program: format!("{:?}", parts.program),
                source,
            };
        }
        Stage::Join => "join the job (write cgroup.procs) in the child",
        Stage::ProcessGroup => "set the child's process group",
        Stage::Stdio => "set up the child's standard streams",
        Stage::Groups => "drop the child's supplementary groups",
        Stage::Gid => "set the child's group",
        Stage::Uid => "set the child's user",
        Stage::Chdir => "change the child's working directory to",
    };
    let path = (stage == Stage::Chdir)
        .then(|| parts.current_dir.map(ToOwned::to_owned))
        .flatten();
    Error::Os {
        job,
        op: op.into(),
        path,
        source,
    }
}
