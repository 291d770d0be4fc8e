//! The one event thread of the process. One epoll set serves every job:
//! - a single inotify descriptor for `cgroup.events` and the v2 `memory.events` and
//!   `pids.events` files;
//! - the eventfds of v1 OOM notifications;
//! - pidfds of the processes the job's handles spawned or assigned: the kernel sends
//!   `cgroup.events` notifications at most every 10 ms and through a workqueue, while a
//!   pidfd is readable the moment its process has left the cgroup, so the common case of a
//!   job whose last process is one we started is reported at once;
//! - polling, for what nothing signals: membership on a legacy v1-only host (every
//!   [`POLL_INTERVAL`]), the v1 limit counters (every 100 ms), and a job deleted by someone else
//!   (every second);
//! - timers for the removal of closed jobs that the kernel still reports busy: nothing on this
//!   thread sleeps or waits, so one job can never delay another's notifications.
//!
//! It tells each job, through the [`Listener`] it registered, when something may have changed;
//! what that means for the job is the listener's to decide.
//!
//! Descriptors are a budget the caller shares: a watched job costs none here but its v1 OOM
//! eventfd, and pidfds are held for at most [`PIDFDS_PER_JOB`] processes per job and a
//! process-wide share of the open-file limit. Where a descriptor cannot be had, the slower
//! source (the inotify watch, or polling) still reports everything.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec};
use rustix::fs::inotify;
use rustix::process::{Pid, PidfdFlags};

use super::cgroup::{EventSource, JobCgroups, dir};
use super::fd_budget::{FdBudget, Reserved};
use crate::{Error, PressureResource};

/// How often jobs without a v2 cgroup are polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often (in poll intervals) the limit counters that nothing signals are polled: every
/// 100 ms.
const LIMIT_POLL_TICKS: u32 = 5;
/// How often every watched job is checked for having been deleted: nothing signals it.
const EXISTENCE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the event thread keeps trying to remove a closed job the kernel reports busy.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(60);
/// The most pidfds held for one job's processes.
const PIDFDS_PER_JOB: usize = 4;
/// The pidfds held in all: at most 256, and a sixteenth of the open-file limit.
static PIDFDS: FdBudget = FdBudget::new(256, 16);

/// The epoll tokens of the two fixed descriptors; others get tokens from `NEXT_TOKEN`.
const INOTIFY: u64 = 0;
const WAKE: u64 = 1;
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(2);

/// A watched job, as the event thread sees it. The thread holds jobs weakly (a job being
/// removed strongly) and calls them from its own thread: each call must be quick, and must not
/// wait for anything that waits for the thread.
pub(crate) trait Listener: Send + Sync {
    /// The job's membership or limit counters may have changed: an inotify event, a pidfd of
    /// one of its processes, an OOM eventfd, or the poll of a job that nothing signals.
    fn changed(self: Arc<Self>);
    /// Called every [`EXISTENCE_INTERVAL`]: the job may have been deleted under its handles,
    /// which nothing signals.
    fn check_exists(&self);
    /// Called every 100 ms for a job whose limit counters nothing signals.
    fn limits_polled(&self);
    /// One attempt at removing the job, closed and empty, given to [`remove_later`].
    fn removal_step(&self) -> Removal;
    /// A pressure trigger of the job, added with [`watch_pressure`], fired.
    fn pressure(&self, resource: PressureResource);
}

/// What one step of a removal on the event thread came to.
pub(crate) enum Removal {
    /// Removed, or not to be removed (held again, or gone).
    Done,
    /// The kernel still reports the cgroup busy: try again a little later.
    Retry,
}

type Subscriber = (u64, Weak<dyn Listener>);

/// A descriptor in the epoll set that stands for one job: an OOM eventfd, or a pidfd.
struct Source {
    fd: OwnedFd,
    job: Weak<dyn Listener>,
    /// The token of the job's [`Watch`], which removes the source when it drops.
    owner: u64,
    /// Set for a pidfd, which is read once (its process has exited) and counts against the
    /// budget.
    pidfd: Option<Reserved>,
    /// Set for a pressure trigger: the file polls with `POLLPRI` each time it fires.
    pressure: Option<PressureResource>,
}

struct EventLoop {
    epoll: OwnedFd,
    inotify: OwnedFd,
    /// Wakes the thread when the set of polled jobs changes.
    wake: OwnedFd,
    /// inotify watch descriptor -> the jobs it serves (inotify gives the same descriptor for
    /// the same file, so one per registration).
    watched: Mutex<HashMap<i32, Vec<Subscriber>>>,
    /// epoll token -> eventfd or pidfd.
    sources: Mutex<HashMap<u64, Source>>,
    polled: Mutex<Vec<Subscriber>>,
    /// Jobs whose limit counters are polled (v1 `pids.events`; v1 OOM kills without an
    /// eventfd).
    limit_polled: Mutex<Vec<Subscriber>>,
    /// Every watched job, checked every [`EXISTENCE_INTERVAL`] for having been deleted.
    jobs: Mutex<Vec<Subscriber>>,
    /// Closed jobs being removed.
    removals: Mutex<Vec<PendingRemoval>>,
}

/// A closed job whose removal the kernel refused as busy, to try again at `due`.
struct PendingRemoval {
    job: Arc<dyn Listener>,
    started: Instant,
    due: Instant,
    delay: Duration,
}

/// A job's registration with the event thread; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Watch {
    token: u64,
    /// The job, for the pidfds of [`watch_exit`].
    job: Weak<dyn Listener>,
    wds: Vec<i32>,
    polled: bool,
    limit_polled: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The event loop, started on first success: a failure (out of descriptors, say) is not kept,
/// so that a later call can start it.
fn event_loop() -> Result<&'static EventLoop, Error> {
    static LOOP: OnceLock<&'static EventLoop> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(event_loop) = LOOP.get() {
        return Ok(event_loop);
    }
    // One caller at a time starts it: exactly one thread runs the loop.
    let _starting = lock(&STARTING);
    if let Some(event_loop) = LOOP.get() {
        return Ok(event_loop);
    }
    let event_loop = start()?;
    Ok(LOOP.get_or_init(|| event_loop))
}

/// Makes the loop's descriptors and starts its thread; the loop then lives as long as the
/// process (its thread never ends).
fn start() -> Result<&'static EventLoop, Error> {
    let unavailable = |what: &str, source: io::Error| Error::Unavailable {
        message: format!("cannot start the event thread: {what}: {source}"),
        source: Some(source),
    };
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
        .map_err(|e| unavailable("epoll_create1", e.into()))?;
    let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
    let inotify = inotify::init(flags).map_err(|e| unavailable("inotify_init1", e.into()))?;
    let wake = eventfd().map_err(|e| unavailable("eventfd", e.into()))?;
    for (fd, token) in [(&inotify, INOTIFY), (&wake, WAKE)] {
        epoll::add(&epoll, fd, EventData::new_u64(token), EventFlags::IN)
            .map_err(|e| unavailable("epoll_ctl", e.into()))?;
    }
    // The thread first, so that a failure to start it leaks nothing; it runs the loop once
    // handed it.
    let (hand_over, handed) = std::sync::mpsc::sync_channel::<&'static EventLoop>(1);
    std::thread::Builder::new()
        .name("jobobject-events".into())
        .spawn(move || {
            if let Ok(event_loop) = handed.recv() {
                event_loop.run();
            }
        })
        .map_err(|e| unavailable("spawn", e))?;
    let event_loop: &'static EventLoop = Box::leak(Box::new(EventLoop {
        epoll,
        inotify,
        wake,
        watched: Mutex::default(),
        sources: Mutex::default(),
        polled: Mutex::default(),
        limit_polled: Mutex::default(),
        jobs: Mutex::default(),
        removals: Mutex::default(),
    }));
    // The thread waits on the other end: the send cannot fail.
    hand_over.send(event_loop).ok();
    Ok(event_loop)
}

fn eventfd() -> rustix::io::Result<OwnedFd> {
    rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
}

/// Starts telling `job`, whose cgroups are `cgroups`, of changes ([`Listener::changed`]).
pub(crate) fn watch(cgroups: &JobCgroups, job: Weak<dyn Listener>) -> Result<Watch, Error> {
    let event_loop = event_loop()?;
    let mut watch = Watch {
        token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
        job,
        wds: Vec::new(),
        polled: false,
        limit_polled: false,
    };
    let subscriber = (watch.token, watch.job.clone());
    for source in cgroups.event_sources() {
        let added = match source {
            EventSource::File { dir, path, file } => event_loop
                .add_inotify(dir.as_fd(), file, &subscriber)
                .map(|wd| watch.wds.push(wd))
                .map_err(|e| (e, path.join(file))),
            EventSource::OomEventfd { dir, .. } => {
                // Without a descriptor to spare, the slow poll of the counters reports OOM
                // kills instead.
                if event_loop
                    .add_oom_eventfd(dir.as_fd(), &subscriber)
                    .is_err()
                    && !watch.limit_polled
                {
                    event_loop.add_polled(&event_loop.limit_polled, &subscriber);
                    watch.limit_polled = true;
                }
                Ok(())
            }
            EventSource::Poll => {
                event_loop.add_polled(&event_loop.polled, &subscriber);
                watch.polled = true;
                Ok(())
            }
            EventSource::PollProcessLimit => {
                if !watch.limit_polled {
                    event_loop.add_polled(&event_loop.limit_polled, &subscriber);
                    watch.limit_polled = true;
                }
                Ok(())
            }
        };
        // `watch` undoes what was added when it drops.
        added.map_err(|(e, path)| super::cgroup::os(cgroups.name(), "watch", &path, e))?;
    }
    event_loop.add_polled(&event_loop.jobs, &subscriber);
    Ok(watch)
}

/// Tells the job of `watch` the moment process `pid` exits. Best effort: a process that is
/// already gone, a kernel without pidfds, or a spent descriptor budget leaves it to the job's
/// other sources.
pub(crate) fn watch_exit(watch: &Watch, pid: u32) {
    let (Ok(event_loop), Some(pid)) = (event_loop(), Pid::from_raw(pid as i32)) else {
        return;
    };
    let Some(reserved) = event_loop.reserve_pidfd(watch.token) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else {
        return;
    };
    let source = Source {
        fd,
        job: watch.job.clone(),
        owner: watch.token,
        pidfd: Some(reserved),
        pressure: None,
    };
    // Best effort, as above.
    event_loop
        .add_source(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed), source)
        .ok();
}

/// Tells the job of `watch` each time the pressure trigger `fd` (on `resource`) fires, for as
/// long as the watch lasts.
pub(crate) fn watch_pressure(
    watch: &Watch,
    fd: OwnedFd,
    resource: PressureResource,
) -> Result<(), Error> {
    let event_loop = event_loop()?;
    let source = Source {
        fd,
        job: watch.job.clone(),
        owner: watch.token,
        pidfd: None,
        pressure: Some(resource),
    };
    event_loop
        .add_source(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed), source)
        .map_err(|e| Error::Os {
            job: String::new(),
            op: "watch a pressure trigger".to_owned(),
            path: None,
            source: e,
        })
}

/// Removes `job` (closed and empty) on the event thread, one [`Listener::removal_step`] at a
/// time, retrying while the kernel reports it busy, for at most [`REMOVAL_PATIENCE`].
pub(crate) fn remove_later(job: Arc<dyn Listener>) {
    let Ok(event_loop) = event_loop() else {
        return;
    };
    let now = Instant::now();
    lock(&event_loop.removals).push(PendingRemoval {
        job,
        started: now,
        due: now,
        delay: Duration::from_millis(1),
    });
    event_loop.wake();
}

impl EventLoop {
    fn wake(&self) {
        // A full counter already wakes the thread.
        rustix::io::write(&self.wake, &1u64.to_ne_bytes()).ok();
    }

    fn add_polled(&self, list: &Mutex<Vec<Subscriber>>, subscriber: &Subscriber) {
        lock(list).push(subscriber.clone());
        self.wake();
    }

    /// Counts a pidfd for the job of `owner` against the budgets, if there is room.
    fn reserve_pidfd(&self, owner: u64) -> Option<Reserved> {
        let sources = lock(&self.sources);
        let for_job = sources
            .values()
            .filter(|s| s.owner == owner && s.pidfd.is_some())
            .count();
        if for_job >= PIDFDS_PER_JOB {
            return None;
        }
        PIDFDS.reserve(1)
    }

    /// Adds a descriptor to the epoll set under `token`.
    fn add_source(&self, token: u64, source: Source) -> std::io::Result<()> {
        let mut sources = lock(&self.sources);
        // A pressure trigger signals with POLLPRI, and reading it is not needed.
        let flags = match source.pressure {
            Some(_) => EventFlags::PRI,
            None => EventFlags::IN,
        };
        epoll::add(&self.epoll, &source.fd, EventData::new_u64(token), flags)?;
        sources.insert(token, source);
        Ok(())
    }

    fn add_inotify(
        &self,
        dir: BorrowedFd<'_>,
        file: &str,
        subscriber: &Subscriber,
    ) -> std::io::Result<i32> {
        // The descriptor's magic link resolves to the job's directory itself.
        let path = format!("/proc/self/fd/{}/{file}", dir.as_raw_fd());
        let mut watched = lock(&self.watched);
        let wd = inotify::add_watch(&self.inotify, path.as_str(), inotify::WatchFlags::MODIFY)?;
        watched.entry(wd).or_default().push(subscriber.clone());
        Ok(wd)
    }

    /// Registers an eventfd for OOM events of a v1 memory cgroup (`cgroup.event_control`).
    fn add_oom_eventfd(
        &self,
        memory: BorrowedFd<'_>,
        subscriber: &Subscriber,
    ) -> std::io::Result<()> {
        let efd = eventfd()?;
        let control = rustix::fs::openat(
            memory,
            "memory.oom_control",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        dir::write(memory, "cgroup.event_control", line.as_bytes())?;
        let source = Source {
            fd: efd,
            job: subscriber.1.clone(),
            owner: subscriber.0,
            pidfd: None,
            pressure: None,
        };
        self.add_source(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed), source)
    }

    /// Removes the sources of a watch; closing an eventfd also ends the kernel's OOM
    /// registration.
    fn remove_sources(&self, owner: u64) {
        lock(&self.sources).retain(|_, source| {
            if source.owner == owner {
                epoll::delete(&self.epoll, &source.fd).ok();
            }
            source.owner != owner
        });
    }

    fn run(&self) -> ! {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut ready = Vec::with_capacity(64);
        let mut tick = 0u32;
        let mut checked = Instant::now();
        loop {
            let polling = !lock(&self.polled).is_empty() || !lock(&self.limit_polled).is_empty();
            let timeout = self.timeout(polling).map(|t| Timespec {
                tv_sec: t.as_secs() as _,
                tv_nsec: t.subsec_nanos() as _,
            });
            ready.clear();
            // EINTR and the like: go round again.
            epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut ready),
                timeout.as_ref(),
            )
            .ok();
            for event in ready.drain(..) {
                match event.data.u64() {
                    INOTIFY => self.dispatch_inotify(&mut buffer),
                    WAKE => drain(self.wake.as_fd()),
                    token => self.dispatch_source(token),
                }
            }
            self.step_removals();
            if checked.elapsed() >= EXISTENCE_INTERVAL {
                checked = Instant::now();
                let jobs = lock(&self.jobs).clone();
                for job in jobs.iter().filter_map(|(_, job)| job.upgrade()) {
                    job.check_exists();
                }
            }
            if polling {
                let subscribers = lock(&self.polled).clone();
                notify(&subscribers);
                tick = tick.wrapping_add(1);
                if tick % LIMIT_POLL_TICKS == 0 {
                    let subscribers = lock(&self.limit_polled).clone();
                    for job in subscribers.iter().filter_map(|(_, job)| job.upgrade()) {
                        job.limits_polled();
                    }
                }
            }
        }
    }

    /// How long the thread may sleep: until the next poll, existence check or removal
    /// attempt; `None` (until woken) when nothing is due.
    fn timeout(&self, polling: bool) -> Option<Duration> {
        let mut timeout = if polling {
            Some(POLL_INTERVAL)
        } else {
            (!lock(&self.jobs).is_empty()).then_some(EXISTENCE_INTERVAL)
        };
        let now = Instant::now();
        if let Some(due) = lock(&self.removals).iter().map(|r| r.due).min() {
            let until = due.saturating_duration_since(now);
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        timeout
    }

    /// Makes the removal attempts that are due, one `rmdir` each.
    fn step_removals(&self) {
        let now = Instant::now();
        let due: Vec<PendingRemoval> = {
            let mut removals = lock(&self.removals);
            let (due, later) = removals.drain(..).partition(|r| r.due <= now);
            *removals = later;
            due
        };
        for mut removal in due {
            match removal.job.removal_step() {
                Removal::Done => {}
                // Someone made a cgroup inside it, or the like: it stays.
                Removal::Retry if removal.started.elapsed() >= REMOVAL_PATIENCE => {}
                Removal::Retry => {
                    removal.due = Instant::now() + removal.delay;
                    removal.delay = (removal.delay * 2).min(Duration::from_secs(1));
                    lock(&self.removals).push(removal);
                }
            }
        }
    }

    fn dispatch_source(&self, token: u64) {
        let job = {
            let mut sources = lock(&self.sources);
            let Some(source) = sources.get(&token) else {
                return;
            };
            let job = source.job.clone();
            if let Some(resource) = source.pressure {
                drop(sources);
                if let Some(job) = job.upgrade() {
                    job.pressure(resource);
                }
                return;
            }
            if source.pidfd.is_some() {
                if let Some(source) = sources.remove(&token) {
                    epoll::delete(&self.epoll, &source.fd).ok();
                }
            } else {
                drain(source.fd.as_fd());
            }
            job
        };
        if let Some(job) = job.upgrade() {
            job.changed();
        }
    }

    fn dispatch_inotify(&self, buffer: &mut [MaybeUninit<u8>]) {
        let mut changed = Vec::new();
        let mut reader = inotify::Reader::new(&self.inotify, buffer);
        while let Ok(event) = reader.next() {
            if event.events().contains(inotify::ReadFlags::MODIFY) && !changed.contains(&event.wd())
            {
                changed.push(event.wd());
            }
        }
        for wd in changed {
            let subscribers = lock(&self.watched).get(&wd).cloned().unwrap_or_default();
            notify(&subscribers);
        }
    }
}

/// Resets an eventfd's counter.
fn drain(fd: BorrowedFd<'_>) {
    let mut count = [0u8; 8];
    rustix::io::read(fd, &mut count).ok();
}

fn notify(subscribers: &[Subscriber]) {
    for (_, job) in subscribers {
        if let Some(job) = job.upgrade() {
            job.changed();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Ok(event_loop) = event_loop() else { return };
        let token = self.token;
        if self.polled {
            lock(&event_loop.polled).retain(|(t, _)| *t != token);
        }
        if self.limit_polled {
            lock(&event_loop.limit_polled).retain(|(t, _)| *t != token);
        }
        lock(&event_loop.jobs).retain(|(t, _)| *t != token);
        event_loop.remove_sources(token);
        let mut watched = lock(&event_loop.watched);
        for wd in &self.wds {
            if let Some(subscribers) = watched.get_mut(wd) {
                subscribers.retain(|(t, _)| *t != token);
                if subscribers.is_empty() {
                    watched.remove(wd);
                    // Fails harmlessly when the cgroup is already gone (the kernel dropped it).
                    inotify::remove_watch(&event_loop.inotify, *wd).ok();
                }
            }
        }
    }
}
