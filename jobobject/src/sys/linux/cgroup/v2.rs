//! What only cgroup v2 has: `cgroup.events`, `cgroup.kill`, `cgroup.freeze`.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{dir, parse, wait_until};

/// Reads `cgroup.events`.
pub(crate) fn events(cgroup: BorrowedFd<'_>) -> io::Result<parse::CgroupEvents> {
    Ok(parse::cgroup_events(&dir::read(cgroup, "cgroup.events")?)?)
}

/// Kills every process in the cgroup and its descendants with `cgroup.kill` (Linux 5.14+),
/// which the kernel makes race-free against forks. Returns `false` where the file is missing.
pub(crate) fn kill(cgroup: BorrowedFd<'_>) -> io::Result<bool> {
    if !dir::exists(cgroup, "cgroup.kill") {
        return Ok(false);
    }
    dir::write(cgroup, "cgroup.kill", b"1")?;
    Ok(true)
}

/// Freezes (`true`) or thaws the cgroup and waits, up to a second, for the kernel to report
/// it done. Returns `false` where `cgroup.freeze` is missing (before Linux 5.2).
pub(crate) fn freeze(cgroup: BorrowedFd<'_>, frozen: bool) -> io::Result<bool> {
    if !dir::exists(cgroup, "cgroup.freeze") {
        return Ok(false);
    }
    dir::write(cgroup, "cgroup.freeze", if frozen { b"1" } else { b"0" })?;
    wait_until(Duration::from_secs(1), || {
        Ok(events(cgroup)?.frozen.unwrap_or(frozen) == frozen)
    })?;
    Ok(true)
}
