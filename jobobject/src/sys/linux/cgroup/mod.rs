//! The cgroup layer: a job as one directory per hierarchy, made, opened, joined, killed and
//! removed through directory descriptors.

pub(crate) mod controllers;
pub(crate) mod dir;
pub(crate) mod layout;
mod membership;
mod migrate;
mod parent;
pub(crate) mod parse;
mod v1;
mod v2;

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub use layout::CgroupLayout;
pub(crate) use layout::{Hierarchy, Layout, Version};
pub(crate) use membership::is_kernel_thread;
use membership::{collect_pids, signal_until_none_new};
pub(crate) use parent::list;
use parent::open_parents;

use crate::Error;
use crate::os::linux::{CGROUP_PARENT_ENV, CgroupParent};

/// The extended attribute that marks a cgroup as a job this library made (so that whoever
/// closes its last handle may remove it), and the one that keeps it when closed.
const JOB_MARK: &str = "user.jobobject.job";
const PERSISTENT_MARK: &str = "user.jobobject.persistent";

/// One of a job's directories: the job in one hierarchy.
#[derive(Debug)]
pub(crate) struct CgroupDir {
    pub(crate) hierarchy: &'static Hierarchy,
    /// The directory's path, for messages, inotify, and to open it when needed.
    pub(crate) path: PathBuf,
    /// Its device and inode: a directory at `path` with another identity is not this job.
    identity: (u64, u64),
}

impl CgroupDir {
    fn new(hierarchy: &'static Hierarchy, path: PathBuf, fd: BorrowedFd<'_>) -> io::Result<Self> {
        Ok(CgroupDir {
            hierarchy,
            path,
            identity: dir::identity(fd)?,
        })
    }

    /// Opens the directory, for one operation; a directory that took its place since (the job
    /// was removed and another made with its name) is `NotFound`.
    pub(crate) fn open(&self) -> io::Result<OwnedFd> {
        let fd = dir::open_path_nofollow(&self.path)?;
        if dir::identity(fd.as_fd())? != self.identity {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(fd)
    }
}

/// A job directory's descriptor for one operation: the primary one, which the job holds, or
/// another one, opened for the operation.
pub(crate) enum DirFd<'a> {
    Held(BorrowedFd<'a>),
    Opened(OwnedFd),
}

impl AsFd for DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Held(fd) => *fd,
            DirFd::Opened(fd) => fd.as_fd(),
        }
    }
}

/// Something the event thread watches for a job.
pub(crate) enum EventSource<'a> {
    /// A file whose changes inotify reports (`cgroup.events`, `memory.events`, `pids.events`).
    File {
        dir: DirFd<'a>,
        path: &'a Path,
        file: &'static str,
    },
    /// A v1 memory cgroup's OOM notification, through an eventfd.
    OomEventfd { dir: DirFd<'a> },
    /// Nothing signals membership changes: poll.
    Poll,
    /// Nothing signals the v1 process limit's refusals (v1 `pids.events` sends no inotify
    /// event): poll that counter, less often.
    PollProcessLimit,
}

/// A job's cgroups: one directory per hierarchy of the layout, in the layout's order (the v2
/// one first where there is one).
#[derive(Debug)]
pub(crate) struct JobCgroups {
    name: String,
    dirs: Vec<CgroupDir>,
    /// The primary directory (see [`primary`](Self::primary)), by its index in `dirs`, and its
    /// descriptor: the only one a job holds. A process's open files are a budget its caller
    /// shares (often 1024), so the other directories are opened when needed.
    primary: usize,
    primary_fd: OwnedFd,
}

/// The prefixes of cgroup interface files: `cgroup.` and each controller's name, v1 and v2
/// (`memory.max`, `cpu.pressure`, `hugetlb.2MB.max`, ...).
const INTERFACE_PREFIXES: &[&str] = &[
    "cgroup",
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "io",
    "blkio",
    "pids",
    "freezer",
    "devices",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
    "dmem",
    "irq",
    "debug",
];
/// The v1 interface files without a prefix.
const INTERFACE_FILES: &[&str] = &["tasks", "notify_on_release", "release_agent"];

/// Checks a job name: the portable rules, and no name that a cgroup interface file has or may
/// have (a job named `memory.max` or `tasks` would collide with that file of its parent).
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    crate::name::check(name)?;
    let interface = match name.split_once('.') {
        Some((stem, _)) => INTERFACE_PREFIXES.contains(&stem),
        None => INTERFACE_FILES.contains(&name),
    };
    if interface {
        return Err(Error::invalid(format!(
            "a job name may not be that of a cgroup interface file (got {name:?}): the names \
             {} and those starting with `cgroup.` or a controller's name and `.` ({}) are \
             reserved",
            INTERFACE_FILES.join(", "),
            INTERFACE_PREFIXES[1..].join(", ")
        )));
    }
    Ok(())
}

/// Which directory is primary: v2 where mounted, else the v1 freezer's, else the pids one's.
fn primary_index<T>(dirs: &[(CgroupDir, T)]) -> usize {
    let find = |found: &dyn Fn(&CgroupDir) -> bool| dirs.iter().position(|(d, _)| found(d));
    find(&|d| d.hierarchy.version == Version::V2)
        .or_else(|| find(&|d| d.hierarchy.has("freezer")))
        .or_else(|| find(&|d| d.hierarchy.has("pids")))
        .unwrap_or(0)
}

/// A name that a file of the parent cgroup has: an interface file of a controller this crate
/// does not know yet.
fn interface_file(name: &str, path: &Path) -> Error {
    Error::invalid(format!(
        "a job name may not be that of a cgroup interface file (got {name:?}: {} is a file)",
        path.display()
    ))
}

fn anonymous_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("anon-{}-{n}", std::process::id())
}

impl JobCgroups {
    /// Makes the job `name` (or an anonymous one) below `parent` in every hierarchy.
    pub(crate) fn create(parent: &CgroupParent, name: Option<&str>) -> Result<Self, Error> {
        let layout = layout::get()?;
        match name {
            Some(name) => Self::make(layout, open_parents(layout, parent)?, name, name),
            None => loop {
                let name = anonymous_name();
                match Self::make(layout, open_parents(layout, parent)?, &name, &name) {
                    // A directory left by an earlier process with the same pid.
                    Err(Error::AlreadyExists { .. }) => continue,
                    other => break other,
                }
            },
        }
    }

    fn make(
        layout: &'static Layout,
        parents: Vec<(PathBuf, OwnedFd)>,
        name: &str,
        label: &str,
    ) -> Result<Self, Error> {
        let mut made: Vec<(CgroupDir, OwnedFd)> = Vec::with_capacity(parents.len());
        for ((parent_path, parent), hierarchy) in parents.into_iter().zip(&layout.hierarchies) {
            let path = parent_path.join(name);
            match Self::make_one(hierarchy, parent.as_fd(), path, name, label) {
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
        Self::assemble(name, made)
    }

    /// Makes the job's directory in one hierarchy; on failure nothing of it is left.
    fn make_one(
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
    fn assemble(name: &str, dirs: Vec<(CgroupDir, OwnedFd)>) -> Result<Self, Error> {
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
        for ((parent_path, parent), hierarchy) in parents.into_iter().zip(&layout.hierarchies) {
            let path = parent_path.join(name);
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
        Self::assemble(name, dirs)
    }

    /// The job's directory name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The v2 directory, where membership events and `cgroup.kill` live (unified and hybrid).
    pub(crate) fn v2(&self) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy.version == Version::V2)
    }

    /// The v1 directory of the hierarchy carrying `controller`.
    pub(crate) fn v1(&self, controller: &str) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| d.hierarchy.has(controller))
    }

    /// The job's limits and statistics: through v2 on a unified host, else through the v1
    /// hierarchies (on a hybrid host the v2 mount has no controllers).
    pub(crate) fn controllers(&self) -> Box<dyn controllers::Controllers + '_> {
        let v1_dirs = self.dirs.iter().any(|d| d.hierarchy.version == Version::V1);
        match self.v2_fd() {
            Some(fd) if !v1_dirs => Box::new(v2::V2 { dir: fd }),
            _ => {
                let lazy = |controller| self.v1(controller).map(|d| v1::LazyDir::new(self, d));
                Box::new(v1::V1 {
                    cpu: lazy("cpu"),
                    cpuacct: lazy("cpuacct"),
                    cpuset: lazy("cpuset"),
                    memory: lazy("memory"),
                    blkio: lazy("blkio"),
                    pids: lazy("pids"),
                })
            }
        }
    }

    /// What the event thread watches for this job: membership, and the limit counters.
    pub(crate) fn event_sources(&self) -> Vec<EventSource<'_>> {
        let mut sources = Vec::new();
        let v1_dirs = self.dirs.iter().any(|d| d.hierarchy.version == Version::V1);
        match self.v2() {
            Some(d) => {
                let file = |file| EventSource::File {
                    dir: DirFd::Held(self.primary_fd()),
                    path: &d.path,
                    file,
                };
                sources.push(file("cgroup.events"));
                if !v1_dirs {
                    for name in ["memory.events", "pids.events"] {
                        if dir::exists(self.primary_fd(), name) {
                            sources.push(file(name));
                        }
                    }
                }
            }
            None => sources.push(EventSource::Poll),
        }
        let pids_events = self.v1("pids").and_then(|d| self.open_dir(d).ok());
        if pids_events.is_some_and(|fd| dir::exists(fd.as_fd(), "pids.events")) {
            sources.push(EventSource::PollProcessLimit);
        }
        if let Some(d) = self.v1("memory") {
            // Without the directory, the slow poll of the counters reports OOM kills.
            match self.open_dir(d) {
                Ok(dir) => sources.push(EventSource::OomEventfd { dir }),
                Err(_) => sources.push(EventSource::PollProcessLimit),
            }
        }
        sources
    }

    /// The job's directories, one per hierarchy.
    pub(crate) fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Where a controller's files of this job are, for messages.
    pub(crate) fn path_for(&self, controller: &str) -> &Path {
        &self.v1(controller).unwrap_or_else(|| self.primary()).path
    }

    /// The directory whose membership is authoritative: v2 where mounted, else a v1 one.
    pub(crate) fn primary(&self) -> &CgroupDir {
        &self.dirs[self.primary]
    }

    /// The primary directory's descriptor, which the job holds.
    pub(crate) fn primary_fd(&self) -> BorrowedFd<'_> {
        self.primary_fd.as_fd()
    }

    /// The v2 directory's descriptor (the primary one, where there is one).
    fn v2_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2().map(|_| self.primary_fd())
    }

    /// A directory's descriptor for one operation.
    pub(crate) fn open_dir(&self, d: &CgroupDir) -> io::Result<DirFd<'_>> {
        if std::ptr::eq(d, self.primary()) {
            return Ok(DirFd::Held(self.primary_fd()));
        }
        d.open().map(DirFd::Opened)
    }

    /// Every `cgroup.procs` open for writing, for a child to join the job before it execs.
    pub(crate) fn join_files(&self) -> Result<Arc<[OwnedFd]>, Error> {
        let files = self
            .dirs
            .iter()
            .map(|d| {
                self.open_dir(d)
                    .and_then(|fd| dir::open_write(fd.as_fd(), "cgroup.procs"))
                    .map_err(|e| os(&self.name, "open cgroup.procs in", &d.path, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(files.into())
    }

    /// Moves process `pid` (all its threads) into the job, in every hierarchy, with every
    /// child it forks meanwhile; on failure it is where it was.
    pub(crate) fn assign(&self, pid: u32) -> Result<(), Error> {
        migrate::assign(self, pid)
    }

    /// Every process of the job and its nested cgroups, sorted.
    pub(crate) fn pids(&self) -> Result<Vec<u32>, Error> {
        let primary = self.primary();
        let mut pids = BTreeSet::new();
        collect_pids(self.primary_fd(), &mut pids).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) if !self.exists() => Error::NotFound {
                what: format!("job {:?} (it was deleted)", self.name),
            },
            _ => os(&self.name, "read cgroup.procs in", &primary.path, e),
        })?;
        Ok(pids.into_iter().collect())
    }

    /// Whether any process is in the job or its nested cgroups.
    /// A job that has been removed holds none (the kernel removes only empty cgroups).
    pub(crate) fn populated(&self) -> Result<bool, Error> {
        if !self.exists() {
            return Ok(false);
        }
        match self.v2() {
            Some(d) => v2::events(self.primary_fd())
                .map(|e| e.populated)
                .map_err(|e| os(&self.name, "read cgroup.events in", &d.path, e)),
            None => Ok(!self.pids()?.is_empty()),
        }
    }

    /// Whether the job's directory still exists (nobody removed it under its handles).
    pub(crate) fn exists(&self) -> bool {
        dir::exists(self.primary_fd(), "cgroup.procs")
    }

    /// Sends SIGKILL to every process of the job and its nested cgroups, race-free against
    /// forks: `cgroup.kill` where there is one, else freeze, signal, thaw.
    ///
    /// A job removed meanwhile (by whoever saw it empty) holds nothing left to kill.
    pub(crate) fn kill(&self) -> Result<(), Error> {
        match self.kill_inner() {
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) && !self.exists() => Ok(()),
            result => result.map_err(|e| os(&self.name, "terminate", &self.primary().path, e)),
        }
    }

    fn kill_inner(&self) -> io::Result<()> {
        self.signal_all()?;
        // A process frozen by the v1 freezer (by anyone, in the job or a job nested in it)
        // ignores even SIGKILL until thawed: thaw them all, so that they die.
        if let Some(freezer) = self.v1("freezer") {
            v1::thaw_tree(self.open_dir(freezer)?.as_fd())?;
        }
        Ok(())
    }

    /// Sends SIGKILL to every process, race-free against forks.
    fn signal_all(&self) -> io::Result<()> {
        if let Some(fd) = self.v2_fd() {
            if v2::kill(fd)? {
                return Ok(());
            }
            if v2::freeze(fd, true)? {
                let result = signal_until_none_new(fd);
                v2::freeze(fd, false)?;
                return result;
            }
        }
        let primary = self.primary_fd();
        match self.v1("freezer") {
            Some(freezer) => {
                v1::freeze(self.open_dir(freezer)?.as_fd(), true)?;
                signal_until_none_new(primary)
            }
            None => signal_until_none_new(primary),
        }
    }

    /// Waits until the job holds no process, polling, for at most `timeout`.
    pub(crate) fn wait_empty(&self, timeout: Duration) -> Result<bool, Error> {
        let mut outcome = Ok(());
        let empty = wait_until(timeout, || match self.populated() {
            Ok(populated) => Ok(!populated),
            Err(err) => {
                outcome = Err(err);
                Ok(true)
            }
        })
        .unwrap_or(false);
        outcome.map(|()| empty)
    }

    /// Whether a nested cgroup (another job) lives inside this one.
    pub(crate) fn has_nested(&self) -> bool {
        // Jobs are made in every hierarchy at once: the primary one tells.
        dir::subdirectories(self.primary_fd()).is_ok_and(|s| !s.is_empty())
    }

    /// After a kill: removes the cgroups nested in the job (jobs made inside it, whose
    /// creators died with it), deepest first, unless a handle still holds one (its `flock`),
    /// so that the job itself can be removed.
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
            for d in self.dirs.iter().rev() {
                let removed = self
                    .open_dir(d)
                    .and_then(|fd| dir::remove_child_retrying(fd.as_fd(), relative));
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

    /// One `rmdir` of each of the job's directories still there, the primary one first: while
    /// it is busy the job stays whole, and once it is gone nobody can open the job, so the
    /// others are mere leftovers. A busy directory (`EBUSY`) is the error returned.
    pub(crate) fn remove_once(&self) -> Result<(), Error> {
        if self.dirs.is_empty() {
            // A job whose making failed at its first directory.
            return Ok(());
        }
        let primary = self.primary();
        self.remove_dir(primary)?;
        let mut first_error = None;
        for d in self.dirs.iter().filter(|d| !std::ptr::eq(*d, primary)) {
            if let Err(err) = self.remove_dir(d) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Removes one directory if it is still this job's (not one that took its name since).
    fn remove_dir(&self, d: &CgroupDir) -> Result<(), Error> {
        let parent = d.path.parent().unwrap_or(&d.path);
        let removed = dir::open_path(parent).and_then(|parent| {
            if dir::identity_at(parent.as_fd(), &self.name)? != d.identity {
                return Ok(());
            }
            dir::remove_child(parent.as_fd(), &self.name)
        });
        match removed {
            Err(err) if err.raw_os_error() != Some(libc::ENOENT) => {
                Err(os(&self.name, "rmdir", &d.path, err))
            }
            _ => Ok(()),
        }
    }
}

/// Whether an error is the kernel reporting a cgroup busy (`EBUSY`).
pub(crate) fn is_busy(err: &Error) -> bool {
    err.raw_os_error() == Some(libc::EBUSY)
}

/// Polls `done` with a growing delay until it holds or `timeout` passes; returns whether it
/// held.
pub(crate) fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> io::Result<bool>,
) -> io::Result<bool> {
    let start = Instant::now();
    let mut delay = Duration::from_micros(50);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

pub(crate) fn os(job: &str, op: &str, path: &Path, source: io::Error) -> Error {
    Error::Os {
        job: format!("{job:?}"),
        op: op.to_owned(),
        path: Some(path.to_owned()),
        source,
    }
}

/// A failed `mkdir` of a job or its parent, with what to do when it is a permission problem.
pub(super) fn creation_error(job: &str, path: &Path, source: io::Error) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in [
            "a", "build-42", "x.y", "memory", "cpu", "tasks-2", "cpux.max",
        ] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a/b",
            ".hidden",
            "esc\x1b[2J",
            "cgroup.procs",
            "cgroup.kill",
            "tasks",
            "notify_on_release",
            "release_agent",
            "memory.max",
            "memory.oom_control",
            "cpu.pressure",
            "cpuset.cpus",
            "pids.max",
            "io.max",
            "hugetlb.2MB.max",
            "freezer.state",
        ] {
            assert!(
                matches!(check_name(bad), Err(Error::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_are_no_interface_file(name in "[a-z_]{1,12}(\\.[a-z0-9_.]{0,12})?") {
            if check_name(&name).is_ok() {
                let stem = name.split('.').next().unwrap_or_default();
                proptest::prop_assert!(!name.contains('.') || !INTERFACE_PREFIXES.contains(&stem));
                proptest::prop_assert!(!INTERFACE_FILES.contains(&name.as_str()));
            }
        }
    }
}
