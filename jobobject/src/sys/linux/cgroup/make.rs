//! Making a job's cgroups (one directory per hierarchy, all or none) and opening existing ones;
//! the marks that say who made a job and whether it stays when closed.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use super::names::{anonymous_name, interface_file};
use super::on_demand::OnDemand;
use super::parent::{Parents, fresh_parents, parents};
use super::{CgroupDir, Hierarchy, JobCgroups, Layout, Version, dir, layout, os, v1};
use crate::Error;
use crate::os::linux::{CGROUP_PARENT_ENV, CgroupParent};

/// The extended attribute that marks a cgroup as a job this library made (so that whoever
/// closes its last handle may remove it), and the one that keeps it when closed.
pub(crate) const JOB_MARK: &CStr = c"user.jobobject.job";

pub(crate) const PERSISTENT_MARK: &CStr = c"user.jobobject.persistent";
/// The job's processes die with its last handle anywhere.
pub(crate) const KILL_ON_CLOSE_MARK: &CStr = c"user.jobobject.kill-on-close";
/// Marks a job made without a name: it is not opened by name, as on Windows.
pub(crate) const ANONYMOUS_MARK: &CStr = c"user.jobobject.anonymous";

/// The hierarchy whose directory is the job's primary one (held open; membership, events,
/// locks): v2 where mounted, else the v1 freezer's, else the pids one's, else the first.
fn primary_hierarchy(layout: &'static Layout) -> Option<&'static Hierarchy> {
    let made = || layout.hierarchies.iter().filter(|h| !h.on_demand);
    made()
        .find(|h| h.version == Version::V2)
        .or_else(|| made().find(|h| h.has("freezer")))
        .or_else(|| made().find(|h| h.has("pids")))
        .or_else(|| made().next())
}

/// The index of the primary directory among a job's directories (see [`primary_hierarchy`]).
fn primary_index(dirs: &[CgroupDir]) -> usize {
    let find = |found: &dyn Fn(&CgroupDir) -> bool| dirs.iter().position(found);
    find(&|d| d.hierarchy.version == Version::V2)
        .or_else(|| find(&|d| d.hierarchy.has("freezer")))
        .or_else(|| find(&|d| d.hierarchy.has("pids")))
        .unwrap_or(0)
}

/// Whether a failed make or open may be due to parents resolved earlier that have gone since
/// (removed, or no longer usable by this process): then they are resolved again, once.
fn parents_may_be_stale(err: &Error) -> bool {
    matches!(err, Error::Unavailable { .. } | Error::NotFound { .. })
        || err.raw_os_error() == Some(libc::ENOENT)
}

/// A failed `mkdir` of a job or its parent, with what to do when it is a permission problem.
pub(crate) fn creation_error(job: &str, path: &Path, source: io::Error) -> Error {
    match source.raw_os_error() {
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => Error::Unavailable {
            message: format!(
                "cannot create the cgroup {} ({source}): run as root, or delegate a cgroup \
                 subtree to this user (chown it) and point {CGROUP_PARENT_ENV} at it",
                path.display()
            ),
            source: Some(source),
        },
        _ => os(job, "mkdir", path, source),
    }
}

impl JobCgroups {
    /// Makes the job `name` (or an anonymous one) below `parent` in every hierarchy it uses
    /// from its creation.
    pub(crate) fn create(parent: &CgroupParent, name: Option<&str>) -> Result<Self, Error> {
        let layout = layout::get()?;
        let make = |parents: &Parents| match name {
            Some(name) => Self::make(layout, parents, name, true),
            None => loop {
                match Self::make(layout, parents, &anonymous_name(), false) {
                    // A directory left by an earlier process with the same pid.
                    Err(Error::AlreadyExists { .. }) => continue,
                    other => break other,
                }
            },
        };
        match make(&parents(layout, parent)?) {
            Err(err) if parents_may_be_stale(&err) => make(&fresh_parents(layout, parent)?),
            other => other,
        }
    }

    fn make(
        layout: &'static Layout,
        parents: &Parents,
        name: &str,
        named: bool,
    ) -> Result<Self, Error> {
        let primary = primary_hierarchy(layout);
        let mut made: Vec<CgroupDir> = Vec::with_capacity(parents.len());
        let mut primary_fd = None;
        let mut on_demand = Vec::new();
        for (parent, hierarchy) in parents.iter().zip(&layout.hierarchies) {
            let Some(fd) = &parent.fd else {
                on_demand.push(OnDemand::new(hierarchy, parent.path.clone(), None));
                continue;
            };
            let keep = primary.is_some_and(|p| std::ptr::eq(p, hierarchy));
            match Self::make_one(hierarchy, fd, parent.path.join(name), name, keep) {
                Ok((d, kept)) => {
                    primary_fd = primary_fd.or(kept);
                    made.push(d);
                }
                Err(err) => {
                    for d in made.iter().rev() {
                        if let Some(parent) = &d.parent {
                            dir::remove_child_retrying(parent.as_fd(), name).ok();
                        }
                    }
                    return Err(err);
                }
            }
        }
        Self::assemble(name, made, primary_fd, on_demand, named)
    }

    /// Makes the job's directory in one hierarchy, and opens it if `keep_open` (else only
    /// its identity is read); on failure nothing of it is left.
    pub(super) fn make_one(
        hierarchy: &'static Hierarchy,
        parent: &Arc<OwnedFd>,
        path: PathBuf,
        name: &str,
        keep_open: bool,
    ) -> Result<(CgroupDir, Option<OwnedFd>), Error> {
        let parent_fd = parent.as_fd();
        if let Err(err) = dir::make_child(parent_fd, name) {
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) if dir::is_file(parent_fd, name) => interface_file(name, &path),
                Some(libc::EEXIST) => Error::AlreadyExists {
                    job: name.to_owned(),
                },
                _ => creation_error(name, &path, err),
            });
        }
        let ready = Self::made_one(hierarchy, parent, path, name, keep_open);
        if ready.is_err() {
            dir::remove_child(parent_fd, name).ok();
        }
        ready
    }

    fn made_one(
        hierarchy: &'static Hierarchy,
        parent: &Arc<OwnedFd>,
        path: PathBuf,
        name: &str,
        keep_open: bool,
    ) -> Result<(CgroupDir, Option<OwnedFd>), Error> {
        let cpuset = hierarchy.has("cpuset");
        if !keep_open && !cpuset {
            let identity =
                dir::identity_at(parent.as_fd(), name).map_err(|e| os(name, "stat", &path, e))?;
            return Ok((CgroupDir::known(hierarchy, path, identity, parent), None));
        }
        let fd = dir::open_child(parent.as_fd(), name).map_err(|e| os(name, "open", &path, e))?;
        if cpuset {
            v1::init_cpuset(parent.as_fd(), fd.as_fd())
                .map_err(|e| os(name, "copy cpuset.cpus/mems into", &path, e))?;
        }
        let identity = dir::identity(fd.as_fd()).map_err(|e| os(name, "stat", &path, e))?;
        let made = CgroupDir::known(hierarchy, path, identity, parent);
        Ok((made, keep_open.then_some(fd)))
    }

    /// The job from its directories and the primary one's descriptor, which it keeps.
    pub(super) fn assemble(
        name: &str,
        dirs: Vec<CgroupDir>,
        primary_fd: Option<OwnedFd>,
        on_demand: Vec<OnDemand>,
        named: bool,
    ) -> Result<Self, Error> {
        let primary = primary_index(&dirs);
        let Some(primary_fd) = primary_fd else {
            return Err(Error::Unavailable {
                source: None,
                message: "no cgroup hierarchy to hold jobs".into(),
            });
        };
        Ok(JobCgroups {
            name: name.to_owned(),
            dirs,
            primary,
            primary_fd,
            killed: AtomicBool::new(false),
            on_demand,
            named,
            join_cache: Default::default(),
            memory_peak: OnceLock::new(),
        })
    }

    /// Marks the job as made by this library; where the kernel keeps no extended attributes
    /// on cgroups, only its creator will remove it.
    pub(crate) fn mark_made(&self) {
        dir::set_mark(self.primary_fd(), JOB_MARK).ok();
    }

    /// Marks the job as made without a name.
    pub(crate) fn mark_anonymous(&self) {
        dir::set_mark(self.primary_fd(), ANONYMOUS_MARK).ok();
    }

    /// Whether the job was made without a name (where the kernel keeps extended attributes
    /// on cgroups; elsewhere no job says so).
    pub(crate) fn is_anonymous(&self) -> bool {
        dir::has_mark(self.primary_fd(), ANONYMOUS_MARK)
    }

    /// Whether this library made the job (in any process).
    pub(crate) fn made_by_library(&self) -> bool {
        dir::has_mark(self.primary_fd(), JOB_MARK)
    }

    /// Marks the job to stay when closed, for every process.
    pub(crate) fn mark_persistent(&self) {
        dir::set_mark(self.primary_fd(), PERSISTENT_MARK).ok();
    }

    /// Whether the job stays when closed.
    pub(crate) fn is_persistent(&self) -> bool {
        dir::has_mark(self.primary_fd(), PERSISTENT_MARK)
    }

    /// Marks the job to be killed when its last handle anywhere goes, for every process.
    /// Where the kernel keeps no extended attributes on cgroups, only the process that set
    /// it knows.
    pub(crate) fn mark_kill_on_close(&self) {
        dir::set_mark(self.primary_fd(), KILL_ON_CLOSE_MARK).ok();
    }

    /// Whether a process marked the job to be killed when its last handle goes.
    pub(crate) fn is_kill_on_close(&self) -> bool {
        dir::has_mark(self.primary_fd(), KILL_ON_CLOSE_MARK)
    }

    /// Opens the existing job `name` below `parent`.
    pub(crate) fn open(parent: &CgroupParent, name: &str) -> Result<Self, Error> {
        let layout = layout::get()?;
        match Self::find(layout, &parents(layout, parent)?, name) {
            Err(err) if parents_may_be_stale(&err) => {
                Self::find(layout, &fresh_parents(layout, parent)?, name)
            }
            other => other,
        }
    }

    fn find(layout: &'static Layout, parents: &Parents, name: &str) -> Result<Self, Error> {
        let primary = primary_hierarchy(layout);
        let mut dirs = Vec::with_capacity(parents.len());
        let mut primary_fd = None;
        let mut on_demand = Vec::new();
        for (parent, hierarchy) in parents.iter().zip(&layout.hierarchies) {
            let Some(parent_fd) = &parent.fd else {
                let found = OnDemand::find(hierarchy, &parent.path, name);
                on_demand.push(OnDemand::new(hierarchy, parent.path.clone(), found));
                continue;
            };
            let path = parent.path.join(name);
            let missing = |err: io::Error| match err.raw_os_error() {
                Some(libc::ENOTDIR) if dir::is_file(parent_fd.as_fd(), name) => {
                    interface_file(name, &path)
                }
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => Error::NotFound {
                    what: format!("job {name:?} (no {})", path.display()),
                },
                _ => os(name, "open", &path, err),
            };
            let identity = if primary.is_some_and(|p| std::ptr::eq(p, hierarchy)) {
                let fd = dir::open_child(parent_fd.as_fd(), name).map_err(missing)?;
                let identity = dir::identity(fd.as_fd()).map_err(|e| os(name, "stat", &path, e));
                primary_fd = Some(fd);
                identity?
            } else {
                dir::dir_identity_at(parent_fd.as_fd(), name).map_err(missing)?
            };
            dirs.push(CgroupDir::known(hierarchy, path, identity, parent_fd));
        }
        Self::assemble(name, dirs, primary_fd, on_demand, true)
    }
}
