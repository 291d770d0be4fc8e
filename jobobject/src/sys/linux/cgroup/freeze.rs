//! Freezing a whole job: v2 `cgroup.freeze` (a hybrid host's unified mount too), else the v1
//! freezer. Both freeze the jobs nested in it with it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::{JobCgroups, dir, os, v2, wait_until};
use crate::Error;

/// How long a freeze may take before it is given up: a process in an uninterruptible sleep
/// (a hung NFS read) is frozen only once it returns from it.
const FREEZE_WAIT: Duration = Duration::from_secs(10);
/// How often a v1 freeze still under way is asked for again.
const REKICK: Duration = Duration::from_millis(500);

impl JobCgroups {
    /// Freezes (`true`) or thaws every process of the job and of the jobs nested in it, and
    /// waits until the kernel reports the job frozen. A freeze that does not complete within
    /// [`FREEZE_WAIT`] is undone, and an error.
    pub(crate) fn freeze(&self, frozen: bool) -> Result<(), Error> {
        let (path, file) = self.freezer_file()?;
        let fail = |e: io::Error| match e.raw_os_error() {
            Some(libc::ENOENT) if !self.exists() => Error::NotFound {
                what: format!("job {:?} (it was deleted)", self.name),
            },
            _ => os(&self.name, if frozen { "freeze" } else { "thaw" }, &path, e),
        };
        self.write_freezer(file, frozen).map_err(fail)?;
        if !frozen {
            return Ok(());
        }
        let mut kicked = Instant::now();
        let settled = wait_until(FREEZE_WAIT, || {
            if self.frozen_inner()? {
                return Ok(true);
            }
            // The v1 freezer signals each task when FROZEN is written: one that missed it
            // (a spinner in the v1-only guest stayed unfrozen for 10 s) waits for the next
            // write, which signals every task of the cgroup again.
            if matches!(file, Freezer::V1) && kicked.elapsed() >= REKICK {
                self.write_freezer(file, true)?;
                kicked = Instant::now();
            }
            Ok(false)
        });
        if settled.map_err(fail)? {
            return Ok(());
        }
        self.write_freezer(file, false).map_err(fail)?;
        Err(fail(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "not every process was frozen within {} s (one in an uninterruptible sleep?); \
                 the job was thawed again",
                FREEZE_WAIT.as_secs()
            ),
        )))
    }

    /// Whether the kernel reports every process of the job frozen (by this job's freeze or
    /// by a freeze of a cgroup above it).
    pub(crate) fn frozen(&self) -> Result<bool, Error> {
        let (path, _) = self.freezer_file()?;
        self.frozen_inner().map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) if !self.exists() => Error::NotFound {
                what: format!("job {:?} (it was deleted)", self.name),
            },
            _ => os(&self.name, "read the freezer state of", &path, e),
        })
    }

    /// Whether a freeze is asked for or in force: a child born now would be frozen before
    /// it could `exec`, and its spawn would wait for the thaw.
    pub(crate) fn freezing(&self) -> bool {
        if let Some(fd) = self.v2_fd() {
            let asked = dir::read(fd, "cgroup.freeze").is_ok_and(|v| v.trim() == "1");
            return asked || v2::events(fd).is_ok_and(|e| e.frozen == Some(true));
        }
        let Some(freezer) = self.v1("freezer") else {
            return false;
        };
        self.open_dir(freezer)
            .and_then(|fd| dir::read(fd.as_fd(), "freezer.state"))
            .is_ok_and(|state| state.trim() != "THAWED")
    }

    /// Thaws a v2 job frozen by its own `cgroup.freeze` (its processes were just killed).
    pub(super) fn thaw_after_kill(&self) -> io::Result<()> {
        match self.v2_fd() {
            Some(fd) if dir::read(fd, "cgroup.freeze").is_ok_and(|v| v.trim() == "1") => {
                dir::write(fd, "cgroup.freeze", b"0")
            }
            _ => Ok(()),
        }
    }

    /// The directory and file that freeze the job: v2's `cgroup.freeze`, else v1's
    /// `freezer.state`.
    fn freezer_file(&self) -> Result<(std::path::PathBuf, Freezer), Error> {
        if let Some(d) = self.v2() {
            if dir::exists(self.primary_fd(), "cgroup.freeze") {
                return Ok((d.path.clone(), Freezer::V2));
            }
        }
        match self.v1("freezer") {
            Some(d) => Ok((d.path.clone(), Freezer::V1)),
            None => Err(Error::Unsupported {
                what: format!(
                    "freezing job {:?}: it has no cgroup.freeze (Linux 5.2+ on cgroup v2) and \
                     no v1 freezer directory",
                    self.name
                ),
            }),
        }
    }

    fn write_freezer(&self, file: Freezer, frozen: bool) -> io::Result<()> {
        match file {
            Freezer::V2 => {
                let value: &[u8] = if frozen { b"1" } else { b"0" };
                dir::write(self.primary_fd(), "cgroup.freeze", value)
            }
            Freezer::V1 => {
                let freezer = self.v1("freezer").ok_or(io::ErrorKind::NotFound)?;
                let state: &[u8] = if frozen { b"FROZEN" } else { b"THAWED" };
                dir::write(self.open_dir(freezer)?.as_fd(), "freezer.state", state)
            }
        }
    }

    fn frozen_inner(&self) -> io::Result<bool> {
        if let Some(fd) = self.v2_fd() {
            if let Some(frozen) = v2::events(fd)?.frozen {
                // Some kernels (6.1) report a cgroup frozen once its own processes are,
                // before its nested cgroups': those are asked too.
                return Ok(frozen && nested_frozen(fd)?);
            }
        }
        let freezer = self.v1("freezer").ok_or(io::ErrorKind::Unsupported)?;
        let state = dir::read(self.open_dir(freezer)?.as_fd(), "freezer.state")?;
        Ok(state.trim() == "FROZEN")
    }
}

/// Which file freezes a job.
#[derive(Clone, Copy)]
enum Freezer {
    V2,
    V1,
}

/// Whether every cgroup nested in the v2 cgroup `dir` reports itself frozen (one removed
/// meanwhile holds nothing to freeze).
fn nested_frozen(dir: BorrowedFd<'_>) -> io::Result<bool> {
    for name in dir::subdirectories(dir)? {
        let child = match dir::open_child(dir, &name) {
            Ok(child) => child,
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(err) => return Err(err),
        };
        let frozen = match v2::events(child.as_fd()) {
            Ok(events) => events.frozen.unwrap_or(true),
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => true,
            Err(err) => return Err(err),
        };
        if !frozen || !nested_frozen(child.as_fd())? {
            return Ok(false);
        }
    }
    Ok(true)
}
