//! Moving a running process into a job that spans several hierarchies (hybrid and v1), so that
//! no process of its tree is left in the job in some hierarchies and outside it in others.
//!
//! The kernel moves a process one hierarchy at a time, and a child forked between two writes
//! inherits the new cgroup of the first and the old one of the second: it is *split*. So:
//! - the `pids` hierarchy goes first, so that every process a split parent forks is already
//!   counted by the job's process limit; the primary hierarchy (membership, events, kill)
//!   goes last, so that whatever is a member is in every other hierarchy too;
//! - after the last write, every split process is moved, hierarchy by hierarchy in the same
//!   order, until a pass finds none. Only a split process can fork a split child, so a clean
//!   pass leaves none. Every split process is still in the primary hierarchy's old cgroup,
//!   so a pass looks there: a v2 cgroup lists its processes exactly; a v1 listing can drop
//!   some while processes fork (its array is sized before it is filled), so on a v1-only host
//!   a pass looks at every process;
//! - when the kernel refuses a write, every process moved so far goes back where it was.
//!
//! On a unified host a job is one cgroup and one write moves the process atomically.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::membership::{is_alive, is_exiting, is_realtime, write_procs};
use super::{CgroupDir, JobCgroups, Version, dir, os, parse};
use crate::Error;

/// How many passes a tree that keeps forking split children gets before `assign` gives up
/// (each pass moves every split process it finds; in practice one or two suffice).
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
        let written = job
            .open_dir(d)
            .and_then(|fd| write_procs(fd.as_fd(), text.as_bytes()));
        if let Err(err) = written {
            if i > 0 {
                roll_back(&order, i, &origins);
            }
            return Err(write_error(job, d, pid, err));
        }
    }
    if order.len() > 1 {
        heal(job, &order, &origins)?;
    }
    // The kernel skips an exiting process without an error: a zombie was not moved.
    if !is_alive(pid) {
        return Err(Error::ProcessNotFound { pid, exited: true });
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
    job.refresh_on_demand();
    let mut order: Vec<&CgroupDir> = job.all_dirs().collect();
    order.sort_by_key(|d| rank(d));
    order
}

/// Where process `pid` is now in each hierarchy of `order`.
fn origins(job: &JobCgroups, order: &[&CgroupDir], pid: u32) -> Result<Vec<PathBuf>, Error> {
    let path = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => Error::ProcessNotFound { pid, exited: false },
        _ => os(job.name(), "read", path.as_ref(), err),
    })?;
    let entries =
        parse::proc_cgroup(&text).map_err(|e| os(job.name(), "parse", path.as_ref(), e.into()))?;
    order
        .iter()
        .map(|d| {
            cgroup_of(d, &entries).ok_or_else(|| Error::Unavailable {
                source: None,
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
        Some(libc::ESRCH) => Error::ProcessNotFound { pid, exited: false },
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

/// The processes that may be split: those in the primary hierarchy's old cgroup (where a v2
/// listing is exact), else every process of the host.
fn candidates(order: &[&CgroupDir], origins: &[PathBuf]) -> Vec<u32> {
    let (Some(primary), Some(origin)) = (order.last(), origins.last()) else {
        return Vec::new();
    };
    if primary.hierarchy.version == Version::V2 {
        let listed = dir::open_path(origin)
            .and_then(|fd| dir::read(fd.as_fd(), "cgroup.procs"))
            .ok();
        return listed
            .and_then(|text| parse::pids(&text).ok())
            .unwrap_or_default();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// For each directory of `order`, whether process `pid` is in it; `None` when the process is
/// gone or exiting (v1 then shows it in its root cgroup).
fn places(pid: u32, order: &[&CgroupDir]) -> Option<Vec<bool>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let entries = parse::proc_cgroup(&text).ok()?;
    if is_exiting(pid) {
        return None;
    }
    Some(
        order
            .iter()
            .map(|d| cgroup_of(d, &entries).is_some_and(|path| path == d.path))
            .collect(),
    )
}

/// The cgroup, in the hierarchy of `d`, that a process's `/proc/PID/cgroup` lines name.
fn cgroup_of(d: &CgroupDir, entries: &[parse::ProcCgroup]) -> Option<PathBuf> {
    d.hierarchy
        .find(entries)
        .and_then(|entry| d.hierarchy.path_of(&entry.path))
}

/// Moves every split process into the directories of `order` it is missing from, in order,
/// until a pass finds none.
fn heal(job: &JobCgroups, order: &[&CgroupDir], origins: &[PathBuf]) -> Result<(), Error> {
    for _ in 0..MAX_PASSES {
        let mut moved = false;
        for pid in candidates(order, origins) {
            let Some(places) = places(pid, order) else {
                continue;
            };
            if places.iter().all(|&p| p) || !places.iter().any(|&p| p) {
                continue;
            }
            for (d, _) in order.iter().zip(&places).filter(|(_, inside)| !**inside) {
                moved |=
                    move_live(job.open_dir(d), pid).map_err(|e| write_error(job, d, pid, e))?;
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

/// Writes `pid` to the `cgroup.procs` of `dir`; `Ok(false)` when it has exited or is exiting
/// (it needs no move), `Ok(true)` when a live process was moved.
fn move_live(dir: io::Result<impl AsFd>, pid: u32) -> io::Result<bool> {
    if !is_alive(pid) || is_exiting(pid) {
        return Ok(false);
    }
    match write_procs(dir?.as_fd(), pid.to_string().as_bytes()) {
        Ok(()) => Ok(true),
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(err) => Err(err),
    }
}

/// After the kernel refused the move into `order[refused]`: every process in the job in some
/// of the directories written before but not in the refused one is the assigned process or a
/// child it forked meanwhile; each goes back where the assigned process came from. Best
/// effort: the refusal is the error the caller reports.
fn roll_back(order: &[&CgroupDir], refused: usize, origins: &[PathBuf]) {
    for _ in 0..MAX_PASSES {
        let mut moved = false;
        for pid in candidates(order, origins) {
            let Some(places) = places(pid, order) else {
                continue;
            };
            if places[refused] {
                continue;
            }
            for i in (0..refused).rev().filter(|&i| places[i]) {
                moved |= move_live(dir::open_path(&origins[i]), pid).unwrap_or(false);
            }
        }
        if !moved {
            return;
        }
    }
}
