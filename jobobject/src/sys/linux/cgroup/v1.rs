//! What only cgroup v1 needs: the freezer's states and cpuset's initialisation.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use super::{dir, wait_until};

/// Freezes (`true`) or thaws a v1 freezer cgroup, waiting up to a second for `FROZEN`.
///
/// A frozen v1 task ignores even SIGKILL until it is thawed, so callers signal while frozen
/// (no task can fork) and thaw afterwards (every signalled task dies).
pub(crate) fn freeze(freezer: BorrowedFd<'_>, frozen: bool) -> io::Result<()> {
    let state: &[u8] = if frozen { b"FROZEN" } else { b"THAWED" };
    dir::write(freezer, "freezer.state", state)?;
    if frozen {
        wait_until(Duration::from_secs(1), || {
            Ok(dir::read(freezer, "freezer.state")?.trim() == "FROZEN")
        })?;
    }
    Ok(())
}

/// A new v1 cpuset refuses processes (`ENOSPC`) until `cpuset.cpus` and `cpuset.mems` are
/// set: copy both from the parent.
pub(crate) fn init_cpuset(parent: BorrowedFd<'_>, child: BorrowedFd<'_>) -> io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = dir::read(parent, file)?;
        let value = value.trim();
        if !value.is_empty() {
            dir::write(child, file, value.as_bytes())?;
        }
    }
    Ok(())
}
