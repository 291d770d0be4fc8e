//! Removing a job's cgroups: its own directories, retried while the kernel reports them busy,
//! and the nested jobs a kill left behind.

use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::{Duration, Instant};

use super::{CgroupDir, JobCgroups, dir, os};
use crate::Error;

/// Whether an error is the kernel reporting a cgroup busy (`EBUSY`).
pub(crate) fn is_busy(err: &Error) -> bool {
    err.raw_os_error() == Some(libc::EBUSY)
}

impl JobCgroups {
    /// Whether a nested cgroup (another job) lives inside this one.
    pub(crate) fn has_nested(&self) -> bool {
        // Jobs are made in every hierarchy at once: the primary one tells.
        dir::subdirectories(self.primary_fd()).is_ok_and(|s| !s.is_empty())
    }

    /// After a kill: removes the cgroups nested in the job (jobs made inside it, whose
    /// creators died with it), deepest first, unless a handle still holds one (its `flock`),
    /// so that the job itself can be removed. One attempt each, without waiting: a nested
    /// cgroup still busy is tried again by the caller's next attempt.
    pub(crate) fn remove_unheld_nested(&self) {
        for name in dir::subdirectories(self.primary_fd()).unwrap_or_default() {
            self.remove_nested(&name);
        }
    }

    /// Removes the nested cgroup at `relative` (below the job) and everything below it, in
    /// every hierarchy; returns whether it is gone.
    fn remove_nested(&self, relative: &str) -> bool {
        let Ok(nested) = dir::open_child(self.primary_fd(), relative) else {
            return false;
        };
        if !dir::try_lock(nested.as_fd(), true).unwrap_or(false) {
            return false;
        }
        let mut gone = true;
        for name in dir::subdirectories(nested.as_fd()).unwrap_or_default() {
            gone &= self.remove_nested(&format!("{relative}/{name}"));
        }
        if gone {
            let dirs: Vec<&CgroupDir> = self.all_dirs().collect();
            for d in dirs.into_iter().rev() {
                let removed = self
                    .open_dir(d)
                    .and_then(|fd| dir::remove_child(fd.as_fd(), relative));
                match removed {
                    Err(err) if err.raw_os_error() != Some(libc::ENOENT) => gone = false,
                    _ => {}
                }
            }
        }
        gone
    }

    /// Removes the job's directories (it must be empty), retrying for up to
    /// [`dir::REMOVE_RETRY`] while the kernel reports one busy.
    pub(crate) fn remove(&self) -> Result<(), Error> {
        let start = Instant::now();
        let mut delay = Duration::from_micros(100);
        loop {
            match self.remove_once() {
                Err(err) if is_busy(&err) && start.elapsed() < dir::REMOVE_RETRY => {
                    thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// One `rmdir` of each of the job's directories still there, the primary one last: it
    /// holds the job's marks, by which whoever finishes the removal (this process's event
    /// thread, or its keeper should the process end first) finds the job, so it goes only
    /// once the others are gone. A busy directory (`EBUSY`) is the error returned, and the
    /// primary one is then left for the next attempt.
    pub(crate) fn remove_once(&self) -> Result<(), Error> {
        if self.dirs.is_empty() {
            // A job whose making failed at its first directory.
            return Ok(());
        }
        // Those another process made on demand are this job's too.
        self.refresh_on_demand();
        let primary = self.primary();
        let mut first_error = None;
        for d in self.all_dirs().filter(|d| !std::ptr::eq(*d, primary)) {
            if let Err(err) = self.remove_dir(d) {
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => self.remove_dir(primary),
        }
    }

    /// Removes one directory if it is still this job's (not one that took its name since).
    pub(super) fn remove_dir(&self, d: &CgroupDir) -> Result<(), Error> {
        let remove = |parent: BorrowedFd<'_>| {
            if dir::identity_at(parent, &self.name)? != d.identity {
                return Ok(());
            }
            dir::remove_child(parent, &self.name)
        };
        let removed = match &d.parent {
            Some(parent) => remove(parent.as_fd()),
            None => dir::open_path(d.path.parent().unwrap_or(&d.path))
                .and_then(|parent| remove(parent.as_fd())),
        };
        match removed {
            Err(err) if err.raw_os_error() != Some(libc::ENOENT) => {
                Err(os(&self.name, "rmdir", &d.path, err))
            }
            _ => Ok(()),
        }
    }
}
