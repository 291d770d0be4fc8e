//! The state of one job shared by every handle to it in this process: notifications (when
//! it empties is decided in [`emptying`]), counters, and (in [`lifetime`]) who holds the job
//! and when it goes.

mod emptying;
mod lifetime;

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::cgroup::controllers::LimitEvents;
use super::cgroup::{HeldFiles, JobCgroups};
use super::events::{self, Listener, Removal};
use super::keeper;
use super::limits::Limits;
use super::stats::{Counted, Stats};
use crate::events::Queue;
use crate::{Error, Notification, PressureResource, PressureTrigger, ProcessorStats, StorageStats};

use emptying::{Emptying, Entry};
pub(crate) use lifetime::Holder;

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
    watch: Option<Watching>,
    /// When `AllProcessesExited` is due (meaningful while watched).
    emptying: Emptying,
    /// Closed while processes remained: remove it when it empties.
    reap: bool,
    /// Killed at its last close: the jobs nested in it died with it, and are removed with it
    /// (unless a handle holds one).
    remove_nested: bool,
    /// Stays in place when closed, even empty (until deleted).
    persistent: bool,
    /// I/O accounting was turned on (`storage_stats` fails until then).
    io_tracking: bool,
    /// Processes this process put in the job (spawned or assigned).
    entered: u32,
    /// Processes killed by `terminate`.
    killed: u32,
    /// The highest `total_processes` reported: a running total never goes down.
    total_reported: u32,
    /// The limit counters as last reported, to notify only what is new.
    limit_events: LimitEvents,
    /// When the job's own limit last made the OOM killer act (v2): its kill may be read a
    /// moment later.
    own_oom_at: Option<Instant>,
}

/// A job being watched: its registration with the event thread, and the files its
/// notifications are read from, held open while notifications are wanted.
#[derive(Debug)]
struct Watching {
    registration: events::Watch,
    files: Option<HeldFiles>,
}

/// How long after the job's own limit made the OOM killer act a kill is taken for it.
const OWN_OOM_WINDOW: Duration = Duration::from_secs(2);

/// Pushes `count` copies of a message to every queue.
fn broadcast(queues: &[Arc<Queue>], message: Notification, count: u64) {
    for _ in 0..count {
        for queue in queues {
            queue.push(message);
        }
    }
}

impl State {
    /// Reports `AllProcessesExited` if [`Emptying`] said the job emptied.
    fn report_emptied(&self, emptied: bool) {
        broadcast(
            &self.queues,
            Notification::AllProcessesExited,
            u64::from(emptied),
        );
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the job with the event thread; with `notify`, holds the files its
    /// notifications are read from.
    fn watch(self: &Arc<Self>, notify: bool) -> Result<Watching, Error> {
        Ok(Watching {
            registration: events::watch(&self.cgroups, Arc::<Self>::downgrade(self))?,
            files: notify.then(|| self.cgroups.hold_files()).flatten(),
        })
    }

    /// The job's open `cgroup.events`, while it is watched and holds one (see
    /// [`waiting`](super::waiting)).
    pub(crate) fn events_file(&self) -> Option<Arc<OwnedFd>> {
        Self::held(&self.lock()).and_then(HeldFiles::events)
    }

    /// The job's held notification files, while it has some.
    fn held(state: &State) -> Option<&HeldFiles> {
        state.watch.as_ref().and_then(|w| w.files.as_ref())
    }

    /// Adds a handle's notification queue, starting the watch if it is the first.
    pub(crate) fn add_queue(self: &Arc<Self>, queue: Arc<Queue>) -> Result<(), Error> {
        let mut state = self.lock();
        if state.watch.is_none() {
            state.watch = Some(self.watch(true)?);
            state.limit_events = self.limit_events(&state);
            let populated = self.cgroups.populated_held(Self::held(&state))?;
            state.emptying.watch(populated);
        }
        state.queues.push(queue);
        Ok(())
    }

    /// Removes a queue that [`add_queue`](Self::add_queue) added for one call; the watch goes
    /// with the last queue (unless the job is closed and still to be removed).
    pub(crate) fn remove_queue(&self, queue: &Arc<Queue>) {
        let mut state = self.lock();
        state.queues.retain(|q| !Arc::ptr_eq(q, queue));
        if state.queues.is_empty() && !state.reap {
            state.watch = None;
        }
    }

    /// Called before a process enters the job (spawn, assign); returns what `settle` needs.
    /// Reports an emptying that the event thread has not read yet (see [`Emptying::arm`]).
    pub(crate) fn arm(&self) -> Entry {
        let mut guard = self.lock();
        let state = &mut *guard;
        // `None` when not watched.
        let files = state.watch.as_ref().map(|w| w.files.as_ref());
        let (entry, emptied) = state
            .emptying
            .arm(|| files.and_then(|files| self.cgroups.populated_held(files).ok()));
        state.report_emptied(emptied);
        entry
    }

    /// The job's limits.
    pub(crate) fn limits(&self) -> Limits<'_> {
        Limits::new(&self.cgroups)
    }

    /// The job's statistics.
    pub(crate) fn stats(&self) -> Stats<'_> {
        Stats::new(&self.cgroups)
    }

    /// CPU times from the job's cgroups, process totals from what this process saw.
    pub(crate) fn processor_stats(&self) -> Result<ProcessorStats, Error> {
        let counted = {
            let state = self.lock();
            Counted {
                entered: state.entered,
                killed: state.killed,
            }
        };
        let mut stats = self.stats().processor(counted)?;
        let mut state = self.lock();
        state.total_reported = state.total_reported.max(stats.total_processes);
        stats.total_processes = state.total_reported;
        Ok(stats)
    }

    /// Turns on I/O accounting, where the job has an I/O controller.
    pub(crate) fn set_io_tracking(&self) -> Result<(), Error> {
        self.cgroups.ensure(self.stats().io_controller())?;
        keeper::parents_changed(&self.cgroups);
        self.stats().check_io_accounting()?;
        self.limits().start_io_accounting();
        self.lock().io_tracking = true;
        Ok(())
    }

    pub(crate) fn storage_stats(&self) -> Result<StorageStats, Error> {
        if !self.lock().io_tracking {
            return Err(Error::IoTrackingDisabled);
        }
        self.stats().storage()
    }

    /// Counts the processes `terminate` is about to kill.
    pub(crate) fn count_killed(&self, count: usize) {
        let mut state = self.lock();
        state.killed = state
            .killed
            .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
    }

    /// After a spawn or assign: `entered` is the process that went in (and may have left
    /// since), or `None` when it failed. Marks the job populated, or reports the emptying of a
    /// process that came and went unseen (see [`Emptying::settle`]).
    pub(crate) fn settle(&self, entry: Entry, entered: Option<u32>) {
        let mut state = self.lock();
        let Some(pid) = entered else {
            state.emptying.cancel(entry);
            return;
        };
        state.entered = state.entered.saturating_add(1);
        let populated = match &state.watch {
            Some(watch) => {
                // Its exit is then seen at once, not when the kernel's rate-limited inotify
                // event comes.
                events::watch_exit(&watch.registration, pid);
                self.cgroups.populated_held(watch.files.as_ref()).ok()
            }
            None => None,
        };
        if populated.is_some() {
            self.report_limits(&mut state);
        }
        let emptied = state.emptying.settle(entry, populated);
        state.report_emptied(emptied);
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

    /// The limit counters now; zeros where they cannot be read.
    fn limit_events(&self, state: &State) -> LimitEvents {
        self.cgroups.limit_events_held(Self::held(state))
    }

    /// Notifies what the limit counters gained since last time.
    fn report_limits(&self, state: &mut State) {
        let now = self.limit_events(state);
        let before = std::mem::replace(&mut state.limit_events, now);
        let gained = |now: u64, before: u64| now.saturating_sub(before);
        if gained(now.memory_max, before.memory_max) > 0 {
            broadcast(&state.queues, Notification::JobMemoryLimit, 1);
        }
        let group_kills = gained(now.group_kills, before.group_kills);
        broadcast(
            &state.queues,
            Notification::OutOfMemoryGroupKill,
            group_kills,
        );
        // A kill that comes without the job's own limit reached lately (v2 counts both; the
        // two counts may be read a moment apart) was for the host, or for a cgroup above the
        // job; v1 cannot tell.
        if let Some(ooms) = now.limit_ooms {
            if gained(ooms, before.limit_ooms.unwrap_or(0)) > 0 {
                state.own_oom_at = Some(Instant::now());
            }
        }
        let kills = gained(now.oom_kills, before.oom_kills);
        let own_limit = now.limit_ooms.is_none()
            || state
                .own_oom_at
                .is_some_and(|at| at.elapsed() <= OWN_OOM_WINDOW);
        let kind = if own_limit {
            Notification::OutOfMemoryKill
        } else {
            Notification::ExternalOutOfMemoryKill
        };
        broadcast(&state.queues, kind, kills);
        if gained(now.pids_max, before.pids_max) > 0 {
            broadcast(&state.queues, Notification::ActiveProcessLimit, 1);
        }
    }
}

impl Shared {
    /// Sets a pressure trigger on the job, watched while the job's notifications are.
    pub(crate) fn add_pressure_trigger(&self, trigger: &PressureTrigger) -> Result<(), Error> {
        let fd = self.cgroups.pressure_trigger(trigger)?;
        let state = self.lock();
        let watch = state.watch.as_ref().ok_or(Error::NotRegistered)?;
        events::watch_pressure(&watch.registration, fd, trigger.resource)
    }
}

impl Listener for Shared {
    fn pressure(&self, resource: PressureResource) {
        let state = self.lock();
        broadcast(&state.queues, Notification::Pressure { resource }, 1);
    }

    /// Reads the job: reports an emptying and what the limit counters gained; removes a closed
    /// job that has emptied, and ends the notifications of one deleted meanwhile.
    fn changed(self: Arc<Self>) {
        // Read under the lock, so that two readers cannot apply their views out of order.
        let mut state = self.lock();
        if state.watch.is_none() {
            return;
        }
        // A job removed meanwhile reads as empty: the kernel removes only empty cgroups.
        let Ok(populated) = self.cgroups.populated_held(Self::held(&state)) else {
            return;
        };
        self.report_limits(&mut state);
        let emptied = state.emptying.changed(populated);
        state.report_emptied(emptied);
        if populated {
            return;
        }
        if !self.cgroups.exists() {
            self.end(state);
        } else if state.reap {
            state.reap = false;
            state.watch = None;
            drop(state);
            self.remove_closed();
        }
    }

    /// A job deleted by someone else (`jobctl delete`, `rmdir`) ends the notification queues,
    /// so no `poll_notification` waits forever. An emptying not reported yet comes first:
    /// every emptying before a deletion is reported.
    fn check_exists(&self) {
        if self.cgroups.exists() {
            return;
        }
        let mut state = self.lock();
        let emptied = state.emptying.deleted();
        state.report_emptied(emptied);
        self.end(state);
    }

    /// Reports what the limit counters that nothing signals gained (v1 `pids.events`, and v1
    /// OOM kills when no eventfd could be had).
    fn limits_polled(&self) {
        let mut state = self.lock();
        if state.watch.is_some() {
            self.report_limits(&mut state);
        }
    }

    /// See [`lifetime`]: the job's lock is held for the attempt only.
    fn removal_step(&self) -> Removal {
        self.removal_attempt()
    }
}
