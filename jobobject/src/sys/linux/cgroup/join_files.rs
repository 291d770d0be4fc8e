//! The `cgroup.procs` files a child writes `0` to before it execs, to join the hierarchies it
//! was not born in. A job that starts one process usually starts more, and opening the files
//! costs four system calls per hierarchy (the directory by path, its identity, the file, the
//! directory's close), so a job keeps them open once it has spawned, within a budget of the
//! open-file limit ([`FdBudget`]); past it, each spawn opens its own.

use std::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use super::{JobCgroups, Version, dir, os};
use crate::Error;
use crate::sys::linux::fd_budget::{FdBudget, Reserved};

/// The join files kept by every job: at most 256, and a sixteenth of the open-file limit.
static KEPT: FdBudget = FdBudget::new(256, 16);

/// The open `cgroup.procs` files of every directory of a job, as of its directories then.
#[derive(Debug)]
pub(crate) struct JoinFiles {
    /// (Is it the v2 directory's, the file.)
    files: Vec<(bool, OwnedFd)>,
    /// Kept by the job: counted against the budget.
    _kept: Option<Reserved>,
}

impl JoinFiles {
    /// The descriptors to write to: every hierarchy's, or (`with_v2` false, for a child born
    /// in the v2 directory) the v1 ones.
    pub(crate) fn raw(&self, with_v2: bool) -> Vec<c_int> {
        self.files
            .iter()
            .filter(|(v2, _)| with_v2 || !v2)
            .map(|(_, fd)| fd.as_raw_fd())
            .collect()
    }
}

/// A job's kept [`JoinFiles`], and how many directories it had then (an on-demand one made
/// since makes them stale).
#[derive(Debug, Default)]
pub(crate) struct JoinCache(Mutex<Option<(usize, Arc<JoinFiles>)>>);

impl JobCgroups {
    /// The job's join files: the kept ones while they are current, else opened (and kept if
    /// the budget allows).
    pub(crate) fn join_files(&self) -> Result<Arc<JoinFiles>, Error> {
        self.refresh_on_demand();
        let dirs = self.all_dirs().count();
        let mut cache = self
            .join_cache
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, files)) = cache.as_ref().filter(|(count, _)| *count == dirs) {
            return Ok(Arc::clone(files));
        }
        let files = self.open_join_files_now()?;
        let kept = KEPT.reserve(files.len());
        let keep = kept.is_some();
        let files = Arc::new(JoinFiles { files, _kept: kept });
        *cache = keep.then(|| (dirs, Arc::clone(&files)));
        Ok(files)
    }

    /// Forgets the kept join files (a child failed to join through them).
    pub(crate) fn forget_join_files(&self) {
        let mut cache = self
            .join_cache
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *cache = None;
    }

    /// Opens every directory's `cgroup.procs` for writing, those another process made on
    /// demand included; the first failure is the error.
    pub(crate) fn open_join_files(&self) -> Result<Vec<(bool, OwnedFd)>, Error> {
        self.refresh_on_demand();
        self.open_join_files_now()
    }

    fn open_join_files_now(&self) -> Result<Vec<(bool, OwnedFd)>, Error> {
        self.all_dirs()
            .map(|d| {
                self.open_dir(d)
                    .and_then(|fd| dir::open_write(fd.as_fd(), "cgroup.procs"))
                    .map(|file| (d.hierarchy.version == Version::V2, file))
                    .map_err(|e| os(&self.name, "open cgroup.procs in", &d.path, e))
            })
            .collect()
    }
}
