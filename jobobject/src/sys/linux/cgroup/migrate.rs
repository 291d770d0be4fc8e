//! Moving a running process into a job that spans several hierarchies (hybrid and v1), so that
//! no process of its tree is left in the job in some hierarchies and outside it in others.
//!
//! The kernel moves a process one hierarchy at a time, and a child forked between two writes
//! inherits the new cgroup of the first and the old one of the second: it is *split*. So:
//! - the `pids` hierarchy goes first, so that every process a split parent forks is already
//!   counted by the job's process limit; the primary hierarchy (membership, events, kill)
//!   goes last, so that whatever is a member is in every other hierarchy too;
//! - after the last write, every process in the first hierarchy's job cgroup that is missing
//!   from another one is moved there, until a pass finds none: only a split process can fork
//!   a split child, so a clean pass leaves none;
//! - when the kernel refuses a write, every process moved so far goes back where it was.
//!
//! On a unified host a job is one cgroup and one write moves the process atomically.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::membership::{is_alive, is_realtime, write_procs};
use super::{CgroupDir, JobCgroups, Version, dir, os, parse};
use crate::Error;

/// How many clean-up passes a tree that keeps forking split children gets before `assign`
/// gives up (each pass moves every split process it finds; in practice one or two suffice).
const MAX_PASSES: usize = 64;

/// Moves process `pid` (all its threads) into `job` in every hierarchy.
pub(super) fn assign(job: &JobCgroups, pid: u32) -> Result<(), Error> {
    let order = write_order(job);
    let origins = if order.len() > 1 {
        origins(job, &order, pid)?
    } else {
        Vec::new()
    };
    let text = pid.to_string();
    for (i, d) in order.iter().enumerate() {
        let written = d
            .open_fd()
            .and_then(|fd| write_procs(fd.as_fd(), text.as_bytes()));
        if let Err(err) = written {
            if i > 0 {
                roll_back(&order[..i], d, &origins);
            }
            return Err(write_error(job, d, pid, err));
        }
    }
    if order.len() > 1 {
        heal_split(job, &order)?;
    }
    // The kernel skips an exiting process without an error: a zombie was not moved.
    if !is_alive(pid) {
        return Err(Error::NotFound {
            what: format!("process {pid} (it has exited)"),
        });
    }
    Ok(())
}

/// The job's directories in the order a process is moved: `pids` first, the primary last.
fn write_order(job: &JobCgroups) -> Vec<&CgroupDir> {
    let primary = job.primary();
    let rank = |d: &CgroupDir| {
        if std::ptr::eq(d, primary) {
            2
        } else if d.hierarchy.has("pids") {
            0
        } else {
            1
        }
    };
    let mut order: Vec<&CgroupDir> = job.dirs.iter().collect();
    order.sort_by_key(|d| rank(d));
    order
}

/// Where process `pid` is now in each hierarchy of `order`, to move it back on failure.
fn origins(job: &JobCgroups, order: &[&CgroupDir], pid: u32) -> Result<Vec<PathBuf>, Error> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => Error::NotFound {
            what: format!("process {pid}"),
        },
        _ => os(job.name(), "read", path.as_ref(), err),
    })?;
    let entries =
        parse::proc_cgroup(&text).map_err(|e| os(job.name(), "parse", path.as_ref(), e.into()))?;
    order
        .iter()
        .map(|d| {
            d.hierarchy
                .find(&entries)
                .and_then(|entry| d.hierarchy.path_of(&entry.path))
                .ok_or_else(|| Error::Unavailable {
                    message: format!(
                        "process {pid}'s cgroup in the hierarchy at {} is not visible from \
                         this process",
                        d.hierarchy.mount_point.display()
                    ),
                })
        })
        .collect()
}

fn write_error(job: &JobCgroups, d: &CgroupDir, pid: u32, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::ESRCH) => Error::NotFound {
            what: format!("process {pid}"),
        },
        Some(libc::EINVAL) if may_hold_cpu(d) && is_realtime(pid) => Error::invalid(format!(
            "process {pid} has a thread with a real-time scheduling policy, and the kernel \
                 refused to move it into {}: that cgroup has no real-time runtime \
                 (cpu.rt_runtime_us)",
            d.path.display()
        )),
        _ => os(job.name(), "write cgroup.procs in", &d.path, err),
    }
}

/// Whether the cpu controller can be in this directory's hierarchy.
fn may_hold_cpu(d: &CgroupDir) -> bool {
    d.hierarchy.has("cpu") || d.hierarchy.version == Version::V2
}

/// The processes listed in a directory's own `cgroup.procs`.
fn members(d: &CgroupDir) -> io::Result<BTreeSet<u32>> {
    let text = dir::read(d.open_fd()?.as_fd(), "cgroup.procs")?;
    Ok(parse::pids(&text)?.into_iter().collect())
}

/// Moves every process that is in the first directory of `order` but missing from another one
/// into that one, until a pass finds none.
fn heal_split(job: &JobCgroups, order: &[&CgroupDir]) -> Result<(), Error> {
    let read_error = |d: &CgroupDir, e| os(job.name(), "read cgroup.procs in", &d.path, e);
    for _ in 0..MAX_PASSES {
        let reference = members(order[0]).map_err(|e| read_error(order[0], e))?;
        let mut moved = false;
        for d in &order[1..] {
            let present = members(d).map_err(|e| read_error(d, e))?;
            for &pid in reference.difference(&present) {
                moved |= move_live(d, pid).map_err(|e| write_error(job, d, pid, e))?;
            }
        }
        if !moved {
            return Ok(());
        }
    }
    Err(Error::Busy {
        what: format!(
            "the assigned process tree kept forking processes that were moved into job {:?} \
             in some hierarchies only ({MAX_PASSES} passes)",
            job.name()
        ),
    })
}

/// Writes `pid` to a directory's `cgroup.procs`; `Ok(false)` when it has exited (it no longer
/// needs moving), `Ok(true)` when a live process was moved.
fn move_live(d: &CgroupDir, pid: u32) -> io::Result<bool> {
    if !is_alive(pid) {
        return Ok(false);
    }
    match write_procs(d.open_fd()?.as_fd(), pid.to_string().as_bytes()) {
        Ok(()) => Ok(true),
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(err) => Err(err),
    }
}

/// After the kernel refused the move into `refused`: every process in the directories written
/// so far (`written`) that is not in `refused` is the assigned process or a child it forked
/// meanwhile; each goes back to the cgroup the assigned process came from. Best effort: the
/// refusal is the error the caller reports.
fn roll_back(written: &[&CgroupDir], refused: &CgroupDir, origins: &[PathBuf]) {
    for _ in 0..MAX_PASSES {
        let Ok(outside) = members(refused) else {
            return;
        };
        let mut moved = false;
        for (d, origin) in written.iter().zip(origins).rev() {
            let Ok(inside) = members(d) else { continue };
            let Ok(back) = dir::open_path(origin) else {
                continue;
            };
            for &pid in inside.difference(&outside) {
                if is_alive(pid) {
                    moved |= write_procs(back.as_fd(), pid.to_string().as_bytes()).is_ok();
                }
            }
        }
        if !moved {
            return;
        }
    }
}
