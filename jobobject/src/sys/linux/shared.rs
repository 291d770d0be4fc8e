//! The state of one job shared by every handle to it in this process, and the registry that
//! finds it by the job directory's identity.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rustix::fs::FlockOperation;

use super::cgroup::controllers::LimitEvents;
use super::cgroup::{JobCgroups, dir};
use super::events;
use super::limits::Limits;
use crate::events::Queue;
use crate::{Error, Notification, ProcessorStats, StorageStats};

/// How long closing with terminate-on-close waits for the killed processes to be gone.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

type Key = (u64, u64);

/// One job as this process knows it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cgroups: JobCgroups,
    key: Key,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Open handles in this process.
    handles: usize,
    /// This process made the job, so it removes it once closed and empty.
    created: bool,
    terminate_on_close: bool,
    /// Queues of the handles that asked for notifications.
    queues: Vec<Arc<Queue>>,
    /// The inotify watch (or polling entry) of the event thread, while one is needed.
    watch: Option<events::Watch>,
    /// A process entered the job since the last `AllProcessesExited`.
    armed: bool,
    /// Bumped whenever the event thread changes `armed`.
    generation: u64,
    /// Spawns and assigns in flight. Until they settle, the event thread does not count the
    /// job populated on their account: a spawn that fails after its child joined (exec
    /// failed) must not report `AllProcessesExited`.
    entering: usize,
    /// Closed while processes remained: remove it when it empties.
    reap: bool,
    /// Stays in place when closed, even empty (until deleted).
    persistent: bool,
    /// I/O accounting was turned on (`storage_stats` fails until then).
    io_tracking: bool,
    /// Processes this process put in the job (spawned or assigned).
    entered: u32,
    /// Processes killed by `terminate`.
    killed: u32,
    /// The limit counters as last reported, to notify only what is new.
    limit_events: LimitEvents,
}

/// Pushes `count` copies of a message to every queue.
fn broadcast(queues: &[Arc<Queue>], message: Notification, count: u64) {
    for _ in 0..count {
        for queue in queues {
            queue.push(message);
        }
    }
}

fn registry() -> MutexGuard<'static, HashMap<Key, Arc<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Arc<Shared>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a job this process just made, or one it opened, and counts the new handle.
    /// An open of a job that another handle here already holds reuses that job's state.
    pub(crate) fn register(cgroups: JobCgroups, created: bool) -> Result<Arc<Shared>, Error> {
        let primary = cgroups.primary();
        let os = |op: &str, e| super::cgroup::os(cgroups.name(), op, &primary.path, e);
        let key = dir::identity(primary.fd()).map_err(|e| os("stat", e))?;
        // Every process holding a handle keeps a shared lock, so that the last one can know.
        dir::lock(primary.fd(), FlockOperation::LockShared).map_err(|e| os("flock", e))?;
        if !dir::exists(primary.fd(), "cgroup.procs") {
            // Removed by its last holder between our open and our lock.
            return Err(Error::NotFound {
                what: format!("job {:?}", cgroups.name()),
            });
        }
        let mut registry = registry();
        if let Some(existing) = registry.get(&key) {
            let mut state = existing.lock();
            state.handles += 1;
            state.reap = false;
            return Ok(Arc::clone(existing));
        }
        let shared = Arc::new(Shared {
            cgroups,
            key,
            state: Mutex::new(State {
                handles: 1,
                created,
                ..State::default()
            }),
        });
        registry.insert(key, Arc::clone(&shared));
        Ok(shared)
    }

    /// Adds a handle's notification queue, starting the watch if it is the first.
    pub(crate) fn add_queue(self: &Arc<Self>, queue: Arc<Queue>) -> Result<(), Error> {
        let mut state = self.lock();
        if state.watch.is_none() {
            state.limit_events = self.limit_events();
            state.watch = Some(events::watch(self)?);
            state.armed = self.cgroups.populated()?;
        }
        state.queues.push(queue);
        Ok(())
    }

    /// Called before a process enters the job (spawn, assign); returns what `settle` needs.
    ///
    /// A job that emptied since the last `AllProcessesExited`, whose event the event thread
    /// has not read yet, is reported here: once the new process is in, the event thread would
    /// find the job populated and that emptying would be lost.
    pub(crate) fn arm(&self) -> u64 {
        let mut state = self.lock();
        state.entering += 1;
        if state.watch.is_some() && state.armed && self.cgroups.populated().is_ok_and(|p| !p) {
            state.armed = false;
            state.generation += 1;
            broadcast(&state.queues, Notification::AllProcessesExited, 1);
        }
        state.generation
    }

    /// The job's limits and statistics.
    pub(crate) fn limits(&self) -> Limits<'_> {
        Limits::new(&self.cgroups)
    }

    /// CPU times from the job's cgroup, process counts from what this process saw.
    pub(crate) fn processor_stats(&self) -> Result<ProcessorStats, Error> {
        let limits = self.limits();
        let c = limits.controllers();
        let (user_time, kernel_time) = c
            .cpu_times()
            .map_err(|e| limits.map_error("cpuacct", "read CPU times", e))?;
        // Without the memory controller there is no fault count: report none.
        let page_faults = c.page_faults().unwrap_or(0);
        let active = u32::try_from(self.cgroups.pids()?.len()).unwrap_or(u32::MAX);
        let oom_kills = c.limit_events().map(|e| e.oom_kills).unwrap_or(0);
        let state = self.lock();
        Ok(ProcessorStats {
            user_time,
            kernel_time,
            page_faults,
            total_processes: state.entered.max(active),
            active_processes: active,
            terminated_processes: state
                .killed
                .saturating_add(u32::try_from(oom_kills).unwrap_or(u32::MAX)),
        })
    }

    /// Turns on I/O accounting, where the job has an I/O controller.
    pub(crate) fn set_io_tracking(&self) -> Result<(), Error> {
        let limits = self.limits();
        if !limits.controllers().io_accounting() {
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(limits.map_error(limits.io_controller(), "turn on I/O tracking", missing));
        }
        limits.start_io_accounting();
        self.lock().io_tracking = true;
        Ok(())
    }

    pub(crate) fn storage_stats(&self) -> Result<StorageStats, Error> {
        if !self.lock().io_tracking {
            return Err(Error::IoTrackingDisabled);
        }
        let limits = self.limits();
        let usage = limits
            .controllers()
            .io_usage()
            .map_err(|e| limits.map_error(limits.io_controller(), "read I/O statistics", e))?;
        Ok(StorageStats {
            read_operations: usage.read_ios,
            read_bytes: usage.read_bytes,
            write_operations: usage.write_ios,
            write_bytes: usage.write_bytes,
        })
    }

    /// Counts the processes `terminate` is about to kill.
    pub(crate) fn count_killed(&self, count: usize) {
        let mut state = self.lock();
        state.killed = state
            .killed
            .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
    }

    /// After a spawn or assign that succeeded (the process is in, or has been and left): mark
    /// the job populated, or report the emptying if the process has already left and the event
    /// thread did not see it come (inotify coalesces events; `generation` tells whether the
    /// event thread changed `armed` since `arm`).
    /// `entered` is the process that went in, or `None` when the spawn or assign failed.
    pub(crate) fn settle(self: &Arc<Self>, generation: u64, entered: Option<u32>) {
        let mut state = self.lock();
        state.entering -= 1;
        let Some(pid) = entered else {
            return;
        };
        state.entered = state.entered.saturating_add(1);
        let Some(watch) = &state.watch else {
            return;
        };
        // Its exit is then seen at once, not when the kernel's rate-limited inotify event comes.
        events::watch_exit(self, watch, pid);
        let Ok(populated) = self.cgroups.populated() else {
            return;
        };
        self.report_limits(&mut state);
        if populated {
            if !state.armed {
                state.armed = true;
                state.generation += 1;
            }
        } else if state.armed || state.generation == generation {
            state.armed = false;
            state.generation += 1;
            broadcast(&state.queues, Notification::AllProcessesExited, 1);
        }
    }

    /// Called by the event thread when the job's membership may have changed.
    pub(crate) fn changed(self: &Arc<Self>) {
        // Read under the lock, so that two readers cannot apply their views out of order.
        let mut state = self.lock();
        if state.watch.is_none() {
            return;
        }
        let Ok(populated) = self.cgroups.populated() else {
            return;
        };
        self.report_limits(&mut state);
        if populated {
            // While a process is entering, `settle` decides (see `entering`).
            if !state.armed && state.entering == 0 {
                state.armed = true;
                state.generation += 1;
            }
            return;
        }
        if state.armed {
            state.armed = false;
            state.generation += 1;
            broadcast(&state.queues, Notification::AllProcessesExited, 1);
        }
        if state.reap {
            state.reap = false;
            state.watch = None;
            drop(state);
            self.forget();
            // Nobody is left to tell; the job stays, openable by name.
            self.remove_if_unheld().ok();
        }
    }

    /// Called by the event thread every second: a job deleted by someone else (`jobctl delete`,
    /// `rmdir`) ends the notification queues, so no `poll_notification` waits forever.
    pub(crate) fn check_exists(&self) {
        if dir::exists(self.cgroups.primary().fd(), "cgroup.procs") {
            return;
        }
        let mut state = self.lock();
        let what = format!("job {:?} (it was deleted)", self.cgroups.name());
        for queue in &state.queues {
            queue.end(what.clone());
        }
        state.watch = None;
        if std::mem::take(&mut state.reap) {
            drop(state);
            self.forget();
        }
    }

    /// Called by the event thread's slow poll: reports limits only when the v1 process limit
    /// counter moved, which is all that nothing else signals.
    pub(crate) fn process_limit_polled(&self) {
        let mut state = self.lock();
        let limits = self.cgroups.controllers();
        let refused = limits.limit_events().map(|e| e.pids_max).unwrap_or(0);
        if state.watch.is_some() && refused > state.limit_events.pids_max {
            self.report_limits(&mut state);
        }
    }

    /// The limit counters now; zeros where they cannot be read.
    fn limit_events(&self) -> LimitEvents {
        self.cgroups
            .controllers()
            .limit_events()
            .unwrap_or_default()
    }

    /// Notifies what the limit counters gained since last time.
    fn report_limits(&self, state: &mut State) {
        let now = self.limit_events();
        let before = std::mem::replace(&mut state.limit_events, now);
        let gained = |now: u64, before: u64| now.saturating_sub(before);
        if gained(now.memory_max, before.memory_max) > 0 {
            broadcast(&state.queues, Notification::JobMemoryLimit, 1);
        }
        let kills = gained(now.oom_kills, before.oom_kills);
        broadcast(&state.queues, Notification::OutOfMemoryKill, kills);
        if gained(now.pids_max, before.pids_max) > 0 {
            broadcast(&state.queues, Notification::ActiveProcessLimit, 1);
        }
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

    pub(crate) fn set_terminate_on_close(&self) {
        self.lock().terminate_on_close = true;
    }

    /// Drops a handle; the last one here kills the job if asked to, and removes the job once
    /// it is empty if no other process holds it, unless it is persistent or this library did
    /// not make it (a cgroup opened by name that some other tool made).
    pub(crate) fn release(self: &Arc<Self>, queue: Option<&Arc<Queue>>) -> Result<(), Error> {
        let mut registry = registry();
        let mut state = self.lock();
        if let Some(queue) = queue {
            state.queues.retain(|q| !Arc::ptr_eq(q, queue));
        }
        state.handles -= 1;
        if state.handles > 0 {
            if state.queues.is_empty() {
                state.watch = None;
            }
            return Ok(());
        }
        let terminate = state.terminate_on_close;
        let made = state.created || self.cgroups.made_by_library();
        let owned = (made || terminate) && !state.persistent && !self.cgroups.is_persistent();
        drop(state);
        registry.remove(&self.key);
        drop(registry);

        if terminate {
            self.cgroups.kill()?;
            self.cgroups.wait_empty(TERMINATE_WAIT)?;
            if owned {
                // Jobs nested in this one died with it; nobody else would remove them.
                self.cgroups.remove_unheld_nested();
            }
        }
        if !owned || self.cgroups.has_nested() {
            self.lock().watch = None;
            return Ok(());
        }
        if self.cgroups.populated()? {
            return self.reap_later();
        }
        self.lock().watch = None;
        self.remove_if_unheld()
    }

    /// Keeps watching a closed job that still holds processes, to remove it once empty.
    fn reap_later(self: &Arc<Self>) -> Result<(), Error> {
        let mut state = self.lock();
        state.reap = true;
        if state.watch.is_none() {
            state.watch = Some(events::watch(self)?);
        }
        drop(state);
        registry().insert(self.key, Arc::clone(self));
        // It may have emptied before the watch began.
        self.changed();
        Ok(())
    }

    fn forget(&self) {
        let mut registry = registry();
        if registry
            .get(&self.key)
            .is_some_and(|s| std::ptr::eq(&**s, self))
        {
            registry.remove(&self.key);
        }
    }

    /// Removes the job unless a handle in another process holds its lock.
    fn remove_if_unheld(&self) -> Result<(), Error> {
        let primary = self.cgroups.primary().fd.as_fd();
        if dir::lock(primary, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(());
        }
        self.cgroups.remove()
    }
}
