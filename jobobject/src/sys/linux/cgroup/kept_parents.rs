//! What a process's keeper needs to act for a job: the job's parent directory in every
//! hierarchy, opened (see `sys::linux::keeper`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use super::{CgroupDir, JobCgroups, Version, dir, layout};

/// A job's parent in one hierarchy.
pub(crate) struct KeptParent {
    fd: ParentFd,
    /// The hierarchy's index in the layout.
    pub(crate) hierarchy: usize,
    pub(crate) v2: bool,
    pub(crate) freezer: bool,
}

enum ParentFd {
    Kept(Arc<OwnedFd>),
    Opened(OwnedFd),
}

impl AsFd for KeptParent {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            ParentFd::Kept(fd) => fd.as_fd(),
            ParentFd::Opened(fd) => fd.as_fd(),
        }
    }
}

impl JobCgroups {
    /// The primary directory's parent, as this process keeps it open: where the keeper
    /// looks for jobs, and the key under which it has their other parents.
    pub(crate) fn primary_parent(&self) -> Option<&Arc<OwnedFd>> {
        self.primary().parent.as_ref()
    }

    /// Whether the primary directory is in the v2 hierarchy, and whether in the v1 freezer
    /// hierarchy (the primary one on a v1-only host).
    pub(crate) fn primary_kind(&self) -> (bool, bool) {
        let hierarchy = self.primary().hierarchy;
        (hierarchy.version == Version::V2, hierarchy.has("freezer"))
    }

    /// The job's parents in the hierarchies other than the primary one whose index is not in
    /// `known` (a bit per index), where the job has a directory (made with it, or on demand).
    pub(crate) fn kept_parents(&self, known: u64) -> Vec<KeptParent> {
        let Ok(layout) = layout::get() else {
            return Vec::new();
        };
        let index = |d: &CgroupDir| {
            let h = layout
                .hierarchies
                .iter()
                .position(|h| std::ptr::eq(h, d.hierarchy));
            h.unwrap_or(usize::MAX)
        };
        let primary = self.primary();
        let mut parents = Vec::new();
        for d in self.all_dirs().filter(|d| !std::ptr::eq(*d, primary)) {
            let hierarchy = index(d);
            if hierarchy < 64 && known & (1 << hierarchy) != 0 {
                continue;
            }
            let fd = match &d.parent {
                Some(fd) => ParentFd::Kept(Arc::clone(fd)),
                // Made on demand by another process that has the job open.
                None => match open_parent(&d.path) {
                    Some(fd) => ParentFd::Opened(fd),
                    None => continue,
                },
            };
            parents.push(KeptParent {
                fd,
                hierarchy,
                v2: d.hierarchy.version == Version::V2,
                freezer: d.hierarchy.has("freezer"),
            });
        }
        parents
    }
}

fn open_parent(path: &Path) -> Option<OwnedFd> {
    dir::open_path(path.parent()?).ok()
}
