//! The state of one job shared by every handle to it in this process: notifications,
//! counters, and (in [`lifetime`]) who holds the job and when it goes.

mod lifetime;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::cgroup::JobCgroups;
use super::cgroup::controllers::LimitEvents;
use super::events;
use super::limits::Limits;
use crate::events::Queue;
use crate::{Error, Notification, ProcessorStats, StorageStats};

pub(crate) use lifetime::{Holder, Removal};

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
    /// Open handles in this process that hold the job (observers do not).
    handles: usize,
    /// Open observer handles in this process.
    observers: usize,
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

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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
        // A job removed meanwhile reads as empty: the kernel removes only empty cgroups.
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
        self.report_emptied(&mut state);
        if !self.cgroups.exists() {
            self.end(state);
        } else if state.reap {
            state.reap = false;
            state.watch = None;
            drop(state);
            self.remove_closed();
        }
    }

    /// Reports `AllProcessesExited` if a process entered since the last one.
    fn report_emptied(&self, state: &mut State) {
        if state.armed {
            state.armed = false;
            state.generation += 1;
            broadcast(&state.queues, Notification::AllProcessesExited, 1);
        }
    }

    /// Called by the event thread every second: a job deleted by someone else (`jobctl delete`,
    /// `rmdir`) ends the notification queues, so no `poll_notification` waits forever. An
    /// emptying not reported yet comes first: every emptying before a deletion is reported.
    pub(crate) fn check_exists(&self) {
        if self.cgroups.exists() {
            return;
        }
        let mut state = self.lock();
        self.report_emptied(&mut state);
        self.end(state);
    }

    /// The job is gone: its queues end with `NotFound` once read, and nothing is watched.
    fn end(&self, mut state: MutexGuard<'_, State>) {
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

    /// Called by the event thread's slow poll, for the limit counters that nothing signals
    /// (v1 `pids.events`, and v1 OOM kills when no eventfd could be had).
    pub(crate) fn limits_polled(&self) {
        let mut state = self.lock();
        if state.watch.is_some() {
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
}
