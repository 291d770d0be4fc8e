//! Who holds a job, and when it goes.
//!
//! Every process with a handle that holds a job keeps a shared `flock` on the job's directory
//! (through the directory descriptor of its [`Shared`] state); the last handle anywhere is the
//! one whose process can then take the lock exclusively, and removes the job if this library
//! made it and it is empty. Observer handles take no lock and never remove or kill anything.
//!
//! No other user can interfere: job directories are mode 0711, so only their owner (and root)
//! can open one to lock it. And no lock is ever waited for without bound: an exclusive lock
//! is held only while a process removes the job, so an open waits at most [`LOCK_WAIT`] for it,
//! then fails with [`Error::Busy`] (a job made by another tool, with a mode that lets others
//! lock it, cannot hang this crate either).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::{Key, Shared, State};
use crate::Error;
use crate::events::Queue;
use crate::sys::linux::cgroup::{self, JobCgroups, dir};
use crate::sys::linux::events::{self, Listener, Removal};
use crate::sys::linux::keeper;

/// How long an open waits for a process that holds the job's lock exclusively (it is
/// removing the job, which takes at most [`dir::REMOVE_RETRY`]).
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// What this process knew of the job when its last handle here went.
struct LastHere {
    /// This process asked for kill-on-close.
    terminate: bool,
    /// This library made the job (here, or in any process, by its mark).
    made: bool,
    /// This process made the job persistent.
    persistent: bool,
}

/// What a handle is to its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The handle that made the job.
    Creator,
    /// A handle that opened it by name: it holds the job as the creator's does.
    Opener,
    /// A handle that reads and controls the job without holding it: it keeps nobody from
    /// removing it, and its close neither removes nor kills anything.
    Observer,
}

fn registry() -> MutexGuard<'static, HashMap<Key, Arc<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Arc<Shared>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Takes a shared lock on the job's directory, waiting at most [`LOCK_WAIT`] for a process
/// that holds it exclusively.
fn lock_shared(cgroups: &JobCgroups) -> Result<(), Error> {
    let primary = cgroups.primary();
    let start = Instant::now();
    let mut delay = Duration::from_micros(100);
    loop {
        match dir::try_lock(cgroups.primary_fd(), false) {
            Ok(true) => return Ok(()),
            Ok(false) if start.elapsed() < LOCK_WAIT => {
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Ok(false) => {
                return Err(Error::Busy {
                    what: format!(
                        "job {:?} is locked by another process (removing it?) for more than {}s",
                        cgroups.name(),
                        LOCK_WAIT.as_secs()
                    ),
                });
            }
            Err(e) => return Err(cgroup::os(cgroups.name(), "flock", &primary.path, e)),
        }
    }
}

impl Shared {
    /// Registers a handle to a job this process just made or opened. An open of a job that
    /// another handle here already has reuses that job's state.
    pub(crate) fn register(cgroups: JobCgroups, holder: Holder) -> Result<Arc<Shared>, Error> {
        let key = cgroups.primary().identity;
        if holder != Holder::Observer {
            lock_shared(&cgroups)?;
        }
        // A job made just now cannot have been removed: nobody else could lock it yet.
        if holder != Holder::Creator && !cgroups.exists() {
            // Removed by its last holder between our open and our lock.
            return Err(Error::NotFound {
                what: format!("job {:?}", cgroups.name()),
            });
        }
        let mut registry = registry();
        if let Some(existing) = registry.get(&key) {
            let existing = Arc::clone(existing);
            let holds_again = existing.add_holder(holder)?;
            drop(registry);
            if holds_again {
                keeper::hold(&existing.cgroups);
            }
            return Ok(existing);
        }
        let observer = holder == Holder::Observer;
        let shared = Arc::new(Shared {
            cgroups,
            key,
            state: Mutex::new(State {
                handles: usize::from(!observer),
                observers: usize::from(observer),
                created: holder == Holder::Creator,
                ..State::default()
            }),
        });
        registry.insert(key, Arc::clone(&shared));
        drop(registry);
        if !observer {
            keeper::hold(&shared.cgroups);
        }
        Ok(shared)
    }

    /// Counts one more handle on state that this process already has; returns whether this
    /// process holds the job again (it had only observers, or a closed job being removed).
    fn add_holder(&self, holder: Holder) -> Result<bool, Error> {
        let mut state = self.lock();
        if holder == Holder::Observer {
            state.observers += 1;
            return Ok(false);
        }
        if state.handles == 0 {
            // This state's descriptor holds no lock since its last holder went; the caller's
            // own descriptor got one, so nobody holds the job exclusively now.
            let fd = self.cgroups.primary_fd();
            if !dir::try_lock(fd, false).unwrap_or(false) {
                return Err(Error::Busy {
                    what: format!("job {:?} is being removed", self.cgroups.name()),
                });
            }
        }
        state.handles += 1;
        state.reap = false;
        state.remove_nested = false;
        Ok(state.handles == 1)
    }

    pub(crate) fn set_persistent(&self) {
        self.lock().persistent = true;
        self.cgroups.mark_persistent();
    }

    /// Removes the job now; it must hold no process and no nested job.
    pub(crate) fn delete(&self) -> Result<(), Error> {
        let processes = self.cgroups.pids()?.len();
        if processes > 0 {
            return Err(Error::Busy {
                what: format!(
                    "job {:?} still holds {processes} processes",
                    self.cgroups.name()
                ),
            });
        }
        if self.cgroups.has_nested() {
            return Err(Error::Busy {
                what: format!("job {:?} holds nested jobs", self.cgroups.name()),
            });
        }
        self.cgroups.remove()
    }

    /// Marks the job to be killed when its last handle anywhere goes.
    pub(crate) fn set_terminate_on_close(&self) {
        self.cgroups.mark_kill_on_close();
        self.lock().terminate_on_close = true;
    }

    /// Drops a handle. The last one that holds the job in any process kills it if any process
    /// asked for that, and removes it once it is empty, unless it is persistent or this
    /// library did not make it (a cgroup opened by name that some other tool made).
    pub(crate) fn release(
        self: &Arc<Self>,
        queue: Option<&Arc<Queue>>,
        holder: Holder,
    ) -> Result<(), Error> {
        let mut registry = registry();
        let mut state = self.lock();
        if let Some(queue) = queue {
            state.queues.retain(|q| !Arc::ptr_eq(q, queue));
        }
        if state.queues.is_empty() && !state.reap {
            state.watch = None;
        }
        if holder == Holder::Observer {
            state.observers -= 1;
            if state.handles == 0 && state.observers == 0 && !state.reap {
                registry.remove(&self.key);
            }
            return Ok(());
        }
        state.handles -= 1;
        if state.handles > 0 {
            return Ok(());
        }
        let last_here = LastHere {
            terminate: state.terminate_on_close,
            made: state.created || self.cgroups.made_by_library(),
            persistent: state.persistent,
        };
        if state.observers == 0 {
            registry.remove(&self.key);
        }
        drop(state);
        drop(registry);
        self.last_holder_gone(last_here)
    }

    /// After the last handle here that held the job: if it was the last anywhere, kill the
    /// job if any process asked for it, and remove it now or once empty.
    ///
    /// The last holder anywhere is the process that can take the job's lock exclusively. A
    /// failed attempt also drops this process's shared lock (flock converts by releasing
    /// first), so of two processes closing at once, the later attempt succeeds.
    fn last_holder_gone(self: &Arc<Self>, here: LastHere) -> Result<(), Error> {
        let primary = self.cgroups.primary();
        let last = dir::try_lock(self.cgroups.primary_fd(), true)
            .map_err(|e| cgroup::os(self.cgroups.name(), "flock", &primary.path, e))?;
        if !last {
            keeper::let_go(&self.cgroups);
            return Ok(());
        }
        let terminate = here.terminate || self.cgroups.is_kill_on_close();
        let persistent = here.persistent || self.cgroups.is_persistent();
        let owned = (here.made || terminate) && !persistent;
        if terminate {
            // The kill is sent here; the processes die, and the job goes, off this thread
            // (the event thread removes it once empty), so a close never waits for them.
            self.cgroups.kill()?;
            if owned {
                // Jobs nested in this one die with it; nobody else would remove them.
                self.lock().remove_nested = true;
            }
        }
        if !owned {
            return self.stop_holding();
        }
        self.remove_if_unheld()
    }

    /// Lets other processes see that this one holds the job no more (observers here may
    /// still keep the state, and its descriptor, alive).
    fn stop_holding(&self) -> Result<(), Error> {
        keeper::let_go(&self.cgroups);
        let primary = self.cgroups.primary();
        dir::unlock(self.cgroups.primary_fd())
            .map_err(|e| cgroup::os(self.cgroups.name(), "flock", &primary.path, e))
    }

    /// Keeps watching a closed job that still holds processes, to remove it once empty.
    fn reap_later(self: &Arc<Self>) -> Result<(), Error> {
        let mut state = self.lock();
        state.reap = true;
        if state.watch.is_none() {
            state.watch = Some(self.watch(false)?);
        }
        drop(state);
        registry().insert(self.key, Arc::clone(self));
        // It may have emptied before the watch began.
        Arc::clone(self).changed();
        Ok(())
    }

    /// Drops this state from the registry (if it is still the one there).
    pub(super) fn forget(&self) {
        let mut registry = registry();
        if registry
            .get(&self.key)
            .is_some_and(|s| std::ptr::eq(&**s, self))
        {
            registry.remove(&self.key);
        }
    }

    /// Removes the job now, on the caller's thread, unless a handle in another process holds
    /// it. The removal is tried once: only when the kernel refuses it as busy does this look
    /// why. A job with nested jobs stays (unless it was killed at this close: they died with
    /// it); one that holds processes is removed once they have exited; one that the kernel
    /// still reports busy is left to the event thread, which retries. Nothing here waits.
    fn remove_if_unheld(self: &Arc<Self>) -> Result<(), Error> {
        let primary = self.cgroups.primary();
        let exclusive = dir::try_lock(self.cgroups.primary_fd(), true)
            .map_err(|e| cgroup::os(self.cgroups.name(), "flock", &primary.path, e))?;
        if !exclusive {
            return Ok(());
        }
        let removed = match self.cgroups.remove_once() {
            Err(err) if cgroup::is_busy(&err) => {
                if self.cgroups.has_nested() && !self.lock().remove_nested {
                    return self.stop_holding();
                }
                if self.cgroups.populated()? {
                    // Held again as before, until the event thread removes it.
                    dir::try_lock(self.cgroups.primary_fd(), false).ok();
                    return self.reap_later();
                }
                if self.lock().remove_nested {
                    // Killed and already empty: its nested jobs go first.
                    self.cgroups.remove_unheld_nested();
                    self.cgroups.remove_once()
                } else {
                    // Its last process exited a moment ago: the kernel frees the cgroup soon,
                    // and the event thread retries.
                    Err(err)
                }
            }
            other => other,
        };
        match removed {
            Ok(()) => Ok(()),
            Err(err) if cgroup::is_busy(&err) => {
                // Others may open it meanwhile; this process's keeper keeps its mark, so that
                // it finishes the removal should this process end first.
                dir::unlock(self.cgroups.primary_fd()).ok();
                events::remove_later(Arc::<Self>::clone(self));
                Ok(())
            }
            Err(err) => {
                self.stop_holding().ok();
                Err(err)
            }
        }
    }

    /// A closed job has emptied (the event thread saw it): remove it, without blocking the
    /// event thread, which retries while the kernel reports it busy.
    pub(super) fn remove_closed(self: &Arc<Self>) {
        self.forget();
        events::remove_later(Arc::<Self>::clone(self));
    }

    /// One attempt of the event thread at removing a closed, emptied job. The job's lock is
    /// held for the attempt only, so that others may open it meanwhile (and then hold it).
    pub(super) fn removal_attempt(&self) -> Removal {
        let state = self.lock();
        if state.handles > 0 {
            // Opened again here meanwhile: it is held.
            return Removal::Done;
        }
        let whole = self.cgroups.exists();
        if whole && !dir::try_lock(self.cgroups.primary_fd(), true).unwrap_or(false) {
            // Another process holds it now: it is that process's to remove.
            keeper::let_go(&self.cgroups);
            return Removal::Done;
        }
        if state.remove_nested {
            self.cgroups.remove_unheld_nested();
        }
        let result = self.cgroups.remove_once();
        if whole {
            dir::unlock(self.cgroups.primary_fd()).ok();
        }
        drop(state);
        match result {
            Err(err) if cgroup::is_busy(&err) => Removal::Retry,
            _ => Removal::Done,
        }
    }
}
