//! Making a job's cgroups (one directory per hierarchy, all or none) and opening existing ones;
//! the marks that say who made a job and whether it stays when closed.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use super::names::{anonymous_name, interface_file};
use super::on_demand::OnDemand;
use super::parent::{Parent, open_parents};
use super::{CgroupDir, Hierarchy, JobCgroups, Layout, Version, dir, layout, os, v1};
use crate::Error;
use crate::os::linux::{CGROUP_PARENT_ENV, CgroupParent};

/// The extended attribute that marks a cgroup as a job this library made (so that whoever
/// closes its last handle may remove it), and the one that keeps it when closed.
const JOB_MARK: &str = "user.jobobject.job";

const PERSISTENT_MARK: &str = "user.jobobject.persistent";

/// Which directory is primary: v2 where mounted, else the v1 freezer's, else the pids one's.
fn primary_index<T>(dirs: &[(CgroupDir, T)]) -> usize {
    let find = |found: &dyn Fn(&CgroupDir) -> bool| dirs.iter().position(|(d, _)| found(d));
    find(&|d| d.hierarchy.version == Version::V2)
        .or_else(|| find(&|d| d.hierarchy.has("freezer")))
        .or_else(|| find(&|d| d.hierarchy.has("pids")))
        .unwrap_or(0)
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
    /// Makes the job `name` (or an anonymous one) below `parent` in every hierarchy.
    pub(crate) fn create(parent: &CgroupParent, name: Option<&str>) -> Result<Self, Error> {
        let layout = layout::get()?;
        match name {
            Some(name) => Self::make(layout, open_parents(layout, parent)?, name, true),
            None => loop {
                let name = anonymous_name();
                match Self::make(layout, open_parents(layout, parent)?, &name, false) {
                    // A directory left by an earlier process with the same pid.
                    Err(Error::AlreadyExists { .. }) => continue,
                    other => break other,
                }
            },
        }
    }

    fn make(
        layout: &'static Layout,
        parents: Vec<Parent>,
        name: &str,
        named: bool,
    ) -> Result<Self, Error> {
        let mut made: Vec<(CgroupDir, OwnedFd)> = Vec::with_capacity(parents.len());
        let mut on_demand = Vec::new();
        for (parent, hierarchy) in parents.into_iter().zip(&layout.hierarchies) {
            let Some(fd) = parent.fd else {
                on_demand.push(OnDemand::new(hierarchy, parent.path, None));
                continue;
            };
            let path = parent.path.join(name);
            match Self::make_one(hierarchy, fd.as_fd(), path, name, name) {
                Ok(one) => made.push(one),
                Err(err) => {
                    for (d, _) in made.iter().rev() {
                        let parent = d.path.parent().unwrap_or(&d.path);
                        dir::open_path(parent)
                            .and_then(|p| dir::remove_child_retrying(p.as_fd(), name))
                            .ok();
                    }
                    return Err(err);
                }
            }
        }
        Self::assemble(name, made, on_demand, named)
    }

    /// Makes the job's directory in one hierarchy; on failure nothing of it is left.
    pub(super) fn make_one(
        hierarchy: &'static Hierarchy,
        parent: BorrowedFd<'_>,
        path: PathBuf,
        name: &str,
        label: &str,
    ) -> Result<(CgroupDir, OwnedFd), Error> {
        if let Err(err) = dir::make_child(parent, name) {
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) if dir::is_file(parent, name) => interface_file(name, &path),
                Some(libc::EEXIST) => Error::AlreadyExists {
                    job: label.to_owned(),
                },
                _ => creation_error(label, &path, err),
            });
        }
        let ready = dir::open_child(parent, name)
            .map_err(|e| os(label, "open", &path, e))
            .and_then(|fd| {
                if hierarchy.has("cpuset") {
                    v1::init_cpuset(parent, fd.as_fd())
                        .map_err(|e| os(label, "copy cpuset.cpus/mems into", &path, e))?;
                }
                let made = CgroupDir::new(hierarchy, path.clone(), fd.as_fd());
                Ok((made.map_err(|e| os(label, "stat", &path, e))?, fd))
            });
        if ready.is_err() {
            dir::remove_child(parent, name).ok();
        }
        ready
    }

    /// The job from its directories and their descriptors: it keeps the primary one's.
    pub(super) fn assemble(
        name: &str,
        dirs: Vec<(CgroupDir, OwnedFd)>,
        on_demand: Vec<OnDemand>,
        named: bool,
    ) -> Result<Self, Error> {
        let primary = primary_index(&dirs);
        let mut kept = None;
        let mut plain = Vec::with_capacity(dirs.len());
        for (i, (d, fd)) in dirs.into_iter().enumerate() {
            if i == primary {
                kept = Some(fd);
            }
            plain.push(d);
        }
        let Some(primary_fd) = kept else {
            return Err(Error::Unavailable {
                source: None,
                message: "no cgroup hierarchy to hold jobs".into(),
            });
        };
        Ok(JobCgroups {
            name: name.to_owned(),
            dirs: plain,
            primary,
            primary_fd,
            killed: AtomicBool::new(false),
            on_demand,
            named,
        })
    }

    /// Marks the job as made by this library; where the kernel keeps no extended attributes
    /// on cgroups, only its creator will remove it.
    pub(crate) fn mark_made(&self) {
        dir::set_mark(self.primary_fd(), JOB_MARK).ok();
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

    /// Opens the existing job `name` below `parent`.
    pub(crate) fn open(parent: &CgroupParent, name: &str) -> Result<Self, Error> {
        let layout = layout::get()?;
        let parents = open_parents(layout, parent)?;
        let mut dirs = Vec::with_capacity(parents.len());
        let mut on_demand = Vec::new();
        for (parent, hierarchy) in parents.into_iter().zip(&layout.hierarchies) {
            let Some(parent_fd) = parent.fd else {
                let found = OnDemand::find(hierarchy, &parent.path, name);
                on_demand.push(OnDemand::new(hierarchy, parent.path, found));
                continue;
            };
            let (path, parent) = (parent.path.join(name), parent_fd);
            let fd =
                dir::open_child(parent.as_fd(), name).map_err(|err| match err.raw_os_error() {
                    Some(libc::ENOTDIR) if dir::is_file(parent.as_fd(), name) => {
                        interface_file(name, &path)
                    }
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => Error::NotFound {
                        what: format!("job {name:?} (no {})", path.display()),
                    },
                    _ => os(name, "open", &path, err),
                })?;
            let opened = CgroupDir::new(hierarchy, path.clone(), fd.as_fd());
            dirs.push((opened.map_err(|e| os(name, "stat", &path, e))?, fd));
        }
        Self::assemble(name, dirs, on_demand, true)
    }
}
