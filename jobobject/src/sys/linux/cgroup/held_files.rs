//! The files a watched job's notifications are read from (`cgroup.events` and the limit
//! counters), held open while the job is watched: the event thread reads them all at every
//! change of the job, and opening a cgroup file (a path walk, an allocation, a close) costs
//! several times a read of an open one. Held, the read between a process's exit and its
//! `AllProcessesExited` is one `pread` per file.
//!
//! Every job together holds at most a share of the open-file limit ([`FdBudget`]); a job past
//! it holds nothing and reads its files by opening them.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::controllers::{CounterFile, LimitEvents};
use super::{JobCgroups, dir, parse};
use crate::Error;
use crate::sys::linux::fd_budget::{FdBudget, Reserved};

/// The held files of every job: at most 256, and a sixteenth of the open-file limit.
static HELD_FILES: FdBudget = FdBudget::new(256, 16);

/// A watched job's open notification files.
#[derive(Debug)]
pub(crate) struct HeldFiles {
    /// The v2 `cgroup.events`, where the job has a v2 directory (shared with the threads
    /// that wait on it, see `waiting`).
    events: Option<Arc<OwnedFd>>,
    counters: Vec<(CounterFile, OwnedFd)>,
    _reserved: Reserved,
}

impl HeldFiles {
    /// The open `cgroup.events`, where there is one.
    pub(crate) fn events(&self) -> Option<Arc<OwnedFd>> {
        self.events.clone()
    }
}

impl JobCgroups {
    /// Opens the job's notification files, if they fit the budget and all open.
    pub(crate) fn hold_files(&self) -> Option<HeldFiles> {
        let controllers = self.controllers();
        let files = controllers.counter_files();
        let reserved = HELD_FILES.reserve(files.len() + usize::from(self.v2().is_some()))?;
        let events = match self.v2_fd() {
            Some(fd) => Some(Arc::new(dir::open_read(fd, "cgroup.events").ok()?)),
            None => None,
        };
        let counters = files
            .into_iter()
            .map(|(dir, file)| Some((file, dir::open_read(dir, file.name()).ok()?)))
            .collect::<Option<Vec<_>>>()?;
        Some(HeldFiles {
            events,
            counters,
            _reserved: reserved,
        })
    }

    /// [`populated`](Self::populated), through the held `cgroup.events` where there is one.
    pub(crate) fn populated_held(&self, held: Option<&HeldFiles>) -> Result<bool, Error> {
        let Some(events) = held.and_then(|h| h.events.as_ref()) else {
            return self.populated();
        };
        match dir::reread_record(events.as_fd(), "cgroup.events") {
            Ok(text) => parse::cgroup_events(&text)
                .map(|e| e.populated)
                .map_err(|e| self.events_error(e.into())),
            // The kernel removed the cgroup, which it does only to an empty one.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(self.events_error(e)),
        }
    }

    fn events_error(&self, e: io::Error) -> Error {
        let path = self.v2().map_or(&self.primary().path, |d| &d.path);
        super::os(&self.name, "read cgroup.events in", path, e)
    }

    /// The limit counters now, through the held files where there are some; zeros for what
    /// cannot be read.
    pub(crate) fn limit_events_held(&self, held: Option<&HeldFiles>) -> LimitEvents {
        let Some(held) = held else {
            return self.controllers().limit_events().unwrap_or_default();
        };
        let mut events = LimitEvents::default();
        for (file, fd) in &held.counters {
            if let Ok(text) = dir::reread_record(fd.as_fd(), file.name()) {
                file.apply(&text, &mut events);
            }
        }
        events
    }
}
