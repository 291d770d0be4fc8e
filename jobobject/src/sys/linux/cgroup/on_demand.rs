//! The directories a job makes only once it needs their controller: `cpuset` (CPU affinity)
//! and `blkio` (I/O limits and tracking), where each has a v1 hierarchy of its own. A job that
//! never uses them has no directory there, and its spawns join one hierarchy less each.
//!
//! Made while the job holds processes, such a directory takes them all in, with the children
//! they fork meanwhile: the job is frozen for the move where it can be (v2 `cgroup.freeze` on
//! hybrid, the v1 freezer on legacy) unless someone else froze it, and passes over the job's
//! processes repeat until one finds none it has not moved (a process moved before it forks
//! has its child born inside). A named job's directory may be made by another process that
//! has the job open: this process picks it up before each spawn, assign and removal.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::membership::write_procs;
use super::parent::open_on_demand;
use super::{CgroupDir, Hierarchy, JobCgroups, dir, os, v1, v2};
use crate::Error;

/// How many passes a job whose processes keep forking gets before the move gives up.
const MAX_PASSES: usize = 64;

/// A job's directory in a hierarchy used on demand, once made (or found).
#[derive(Debug)]
pub(crate) struct OnDemand {
    pub(super) hierarchy: &'static Hierarchy,
    /// The job's parent in that hierarchy.
    pub(super) parent: PathBuf,
    pub(super) dir: OnceLock<CgroupDir>,
}

impl OnDemand {
    pub(super) fn new(
        hierarchy: &'static Hierarchy,
        parent: PathBuf,
        found: Option<CgroupDir>,
    ) -> Self {
        let dir = OnceLock::new();
        if let Some(found) = found {
            let _ = dir.set(found);
        }
        OnDemand {
            hierarchy,
            parent,
            dir,
        }
    }

    /// The job `name`'s directory below `parent`, if someone made it.
    pub(super) fn find(
        hierarchy: &'static Hierarchy,
        parent: &Path,
        name: &str,
    ) -> Option<CgroupDir> {
        let path = parent.join(name);
        let fd = dir::open_path_nofollow(&path).ok()?;
        CgroupDir::new(hierarchy, path, fd.as_fd()).ok()
    }
}

/// A freeze this process made for a move, undone when dropped.
enum Frozen<'a> {
    V2(BorrowedFd<'a>),
    V1(OwnedFd),
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        // Best effort: a thaw that fails leaves the job as a `terminate` can still end it.
        let _ = match self {
            Frozen::V2(fd) => v2::freeze(*fd, false).map(drop),
            Frozen::V1(fd) => v1::freeze(fd.as_fd(), false),
        };
    }
}

impl JobCgroups {
    /// The directories made on demand so far.
    pub(super) fn on_demand_dirs(&self) -> impl Iterator<Item = &CgroupDir> {
        self.on_demand.iter().filter_map(|o| o.dir.get())
    }

    /// For a named job, picks up the directories another process made on demand since.
    pub(crate) fn refresh_on_demand(&self) {
        if !self.named {
            return;
        }
        for slot in self.on_demand.iter().filter(|o| o.dir.get().is_none()) {
            if let Some(found) = OnDemand::find(slot.hierarchy, &slot.parent, &self.name) {
                let _ = slot.dir.set(found);
            }
        }
    }

    /// Whether the job has no directory yet for `controller`, which it gets on demand: it
    /// has none of its limits.
    pub(crate) fn lacks(&self, controller: &str) -> bool {
        let slot = self.on_demand.iter().find(|o| o.hierarchy.has(controller));
        slot.is_some_and(|slot| {
            self.refresh_on_demand();
            slot.dir.get().is_none()
        })
    }

    /// Makes sure the job has its directory for `controller`, with all its processes in it.
    pub(crate) fn ensure(&self, controller: &str) -> Result<(), Error> {
        if !self.lacks(controller) {
            return Ok(());
        }
        // One maker at a time in this process; another process making it is found by name.
        static MAKING: Mutex<()> = Mutex::new(());
        let _making = MAKING.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = self.on_demand.iter().find(|o| o.hierarchy.has(controller)) else {
            return Ok(());
        };
        if slot.dir.get().is_some() {
            return Ok(());
        }
        let made = self.make_on_demand(slot)?;
        // Removed meanwhile (its holder closed it while this handle, an observer say, was
        // making the directory): the remover may have looked for on-demand directories
        // before this one was there, so it is this maker's to take back.
        if !self.exists() {
            self.remove_dir(&made)?;
            return Err(Error::NotFound {
                what: format!("job {:?} (it was removed)", self.name),
            });
        }
        // Set before the move, so that spawns from now on join it too.
        let made = slot.dir.get_or_init(|| made);
        self.move_members(made)
    }

    fn make_on_demand(&self, slot: &OnDemand) -> Result<CgroupDir, Error> {
        let parent = Arc::new(open_on_demand(slot.hierarchy, &slot.parent)?);
        let path = slot.parent.join(&self.name);
        match Self::make_one(slot.hierarchy, &parent, path, &self.name, false) {
            Ok((made, _)) => Ok(made),
            // Another process that has the job open made it meanwhile.
            Err(Error::AlreadyExists { .. }) => {
                OnDemand::find(slot.hierarchy, &slot.parent, &self.name).ok_or_else(|| {
                    Error::NotFound {
                        what: format!(
                            "job {:?} (its {} directory)",
                            self.name,
                            slot.hierarchy.mount_point.display()
                        ),
                    }
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Moves every process of the job into `d`, with what they fork meanwhile.
    fn move_members(&self, d: &CgroupDir) -> Result<(), Error> {
        let mut pids = self.pids()?;
        if pids.is_empty() {
            return Ok(());
        }
        let fd = self
            .open_dir(d)
            .map_err(|e| os(&self.name, "open", &d.path, e))?;
        let _frozen = self.hold_still();
        let mut moved = BTreeSet::new();
        for _ in 0..MAX_PASSES {
            let new: Vec<u32> = pids.into_iter().filter(|&pid| moved.insert(pid)).collect();
            if new.is_empty() {
                return Ok(());
            }
            for pid in new {
                match write_procs(fd.as_fd(), pid.to_string().as_bytes()) {
                    Err(err) if err.raw_os_error() != Some(libc::ESRCH) => {
                        return Err(os(&self.name, "write cgroup.procs in", &d.path, err));
                    }
                    _ => {}
                }
            }
            pids = self.pids()?;
        }
        Err(Error::Busy {
            what: format!(
                "the processes of job {:?} kept forking while they were moved into {} \
                 ({MAX_PASSES} passes)",
                self.name,
                d.path.display()
            ),
        })
    }

    /// Freezes the job for a move, unless someone else has frozen it or it cannot be.
    fn hold_still(&self) -> Option<Frozen<'_>> {
        if let Some(fd) = self.v2_fd() {
            let thawed = dir::read(fd, "cgroup.freeze").is_ok_and(|v| v.trim() == "0");
            // `then`, not `then_some`: a `Frozen` made and dropped would thaw the job.
            return (thawed && v2::freeze(fd, true).unwrap_or(false)).then(|| Frozen::V2(fd));
        }
        let freezer = self.v1("freezer")?.open().ok()?;
        let thawed =
            dir::read(freezer.as_fd(), "freezer.state").is_ok_and(|v| v.trim() == "THAWED");
        (thawed && v1::freeze(freezer.as_fd(), true).is_ok()).then(|| Frozen::V1(freezer))
    }
}
