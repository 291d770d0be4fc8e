//! The cgroup layer: a job as one directory per hierarchy, made, opened, joined, killed and
//! removed through directory descriptors. This file holds the types and what a job does
//! while it lives (join, list, kill, wait); `make.rs` makes and opens jobs, `remove.rs`
//! removes them, `names.rs` checks their names.

pub(crate) mod controllers;
pub(crate) mod dir;
mod freeze;
mod held_files;
mod join_files;
mod kept_parents;
pub(crate) mod layout;
mod make;
mod membership;
mod migrate;
mod names;
mod on_demand;
mod parent;
pub(crate) mod parse;
mod pressure;
mod remove;
mod v1;
mod v2;

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) use held_files::HeldFiles;
use join_files::JoinCache;
pub use layout::CgroupLayout;
pub(crate) use layout::{Hierarchy, Layout, Version};
pub(crate) use make::{JOB_MARK, KILL_ON_CLOSE_MARK, PERSISTENT_MARK, creation_error};
pub(crate) use membership::is_kernel_thread;
use membership::{collect_pids, signal_until_none_new};
pub(crate) use names::check_name;
pub(crate) use parent::list;
pub(crate) use remove::is_busy;

use rustix::process::Signal;

use crate::Error;

/// One of a job's directories: the job in one hierarchy.
#[derive(Debug)]
pub(crate) struct CgroupDir {
    pub(crate) hierarchy: &'static Hierarchy,
    /// The directory's path, for messages, inotify, and to open it when needed.
    pub(crate) path: PathBuf,
    /// Its device and inode: a directory at `path` with another identity is not this job.
    pub(crate) identity: (u64, u64),
    /// Its parent, where this process resolved it (see `parent::parents`): the job is removed
    /// through it. `None` for a directory another process made on demand.
    parent: Option<Arc<OwnedFd>>,
}

impl CgroupDir {
    fn new(hierarchy: &'static Hierarchy, path: PathBuf, fd: BorrowedFd<'_>) -> io::Result<Self> {
        Ok(CgroupDir {
            hierarchy,
            path,
            identity: dir::identity(fd)?,
            parent: None,
        })
    }

    /// A directory whose identity is known, in the open parent `parent`.
    fn known(
        hierarchy: &'static Hierarchy,
        path: PathBuf,
        identity: (u64, u64),
        parent: &Arc<OwnedFd>,
    ) -> Self {
        CgroupDir {
            hierarchy,
            path,
            identity,
            parent: Some(Arc::clone(parent)),
        }
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
    /// `cgroup.kill` was written to the v2 directory (by this process, or seen in a spawn):
    /// children may not be cloned into it any more (see `process`).
    killed: AtomicBool,
    /// The directories in hierarchies used on demand (cpuset, blkio), made when needed.
    on_demand: Vec<on_demand::OnDemand>,
    /// Others may open the job by name (and make its on-demand directories).
    named: bool,
    /// The `cgroup.procs` files its children join through, once it has spawned.
    join_cache: JoinCache,
    /// The v2 `memory.peak`, open once this process reset the peak (the kernel keeps a
    /// reset per open file).
    memory_peak: OnceLock<OwnedFd>,
}

impl JobCgroups {
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

    /// Every directory the job has: those made with it, then those made on demand.
    pub(crate) fn all_dirs(&self) -> impl Iterator<Item = &CgroupDir> {
        self.dirs.iter().chain(self.on_demand_dirs())
    }

    /// The v1 directory of the hierarchy carrying `controller`.
    pub(crate) fn v1(&self, controller: &str) -> Option<&CgroupDir> {
        self.all_dirs().find(|d| d.hierarchy.has(controller))
    }

    /// The job's limits and statistics: through v2 on a unified host, else through the v1
    /// hierarchies (on a hybrid host the v2 mount has no controllers).
    pub(crate) fn controllers(&self) -> Box<dyn controllers::Controllers + '_> {
        let v1_dirs = self.dirs.iter().any(|d| d.hierarchy.version == Version::V1);
        match self.v2_fd() {
            Some(fd) if !v1_dirs => Box::new(v2::V2::with_peak(fd, &self.memory_peak)),
            _ => {
                let lazy = |controller| self.v1(controller).map(|d| v1::LazyDir::new(self, d));
                Box::new(v1::V1 {
                    cpu: lazy("cpu"),
                    cpuacct: lazy("cpuacct"),
                    cpuset: lazy("cpuset"),
                    memory: lazy("memory"),
                    blkio: lazy("blkio"),
                    pids: lazy("pids"),
                    unified: self.v2_fd(),
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
        self.all_dirs().map(|d| d.path.clone()).collect()
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
    pub(crate) fn v2_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2().map(|_| self.primary_fd())
    }

    /// A directory's descriptor for one operation.
    pub(crate) fn open_dir(&self, d: &CgroupDir) -> io::Result<DirFd<'_>> {
        if std::ptr::eq(d, self.primary()) {
            return Ok(DirFd::Held(self.primary_fd()));
        }
        d.open().map(DirFd::Opened)
    }

    /// Whether a child may be cloned straight into the v2 directory.
    pub(crate) fn clone_into_usable(&self) -> bool {
        !self.killed.load(Ordering::Relaxed)
    }

    /// A child cloned into the v2 directory was killed at birth: clone no more into it.
    pub(crate) fn refuse_clone_into(&self) {
        self.killed.store(true, Ordering::Relaxed);
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
        // A v2 freeze lets the kill through; the job is left thawed, as on v1, so that it can
        // take processes again.
        self.thaw_after_kill()?;
        Ok(())
    }

    /// Sends `signal` to every process of the job and of the jobs nested in it, in passes
    /// until one finds no process it has not signalled.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), Error> {
        // The primary directory is the v2 one where there is one; on v1 every hierarchy
        // holds every process of the job.
        signal_until_none_new(self.primary_fd(), signal).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) if !self.exists() => Error::NotFound {
                what: format!("job {:?} (it was deleted)", self.name),
            },
            _ => os(
                &self.name,
                "signal the processes of",
                &self.primary().path,
                e,
            ),
        })
    }

    /// Sends SIGKILL to every process, race-free against forks.
    fn signal_all(&self) -> io::Result<()> {
        if let Some(fd) = self.v2_fd() {
            self.refuse_clone_into();
            if v2::kill(fd)? {
                return Ok(());
            }
            if v2::freeze(fd, true)? {
                let result = signal_until_none_new(fd, Signal::KILL);
                v2::freeze(fd, false)?;
                return result;
            }
        }
        let primary = self.primary_fd();
        match self.v1("freezer") {
            Some(freezer) => {
                v1::freeze(self.open_dir(freezer)?.as_fd(), true)?;
                signal_until_none_new(primary, Signal::KILL)
            }
            None => signal_until_none_new(primary, Signal::KILL),
        }
    }
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
