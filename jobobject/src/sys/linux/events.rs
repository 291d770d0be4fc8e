//! The one event thread of the process. One epoll set serves every job:
//! - a single inotify descriptor for `cgroup.events` and the v2 `memory.events` and
//!   `pids.events` files;
//! - the eventfds of v1 OOM notifications;
//! - pidfds of the processes the job's handles spawned or assigned: the kernel sends
//!   `cgroup.events` notifications at most every 10 ms and through a workqueue, while a
//!   pidfd is readable the moment its process has left the cgroup, so the common case of a
//!   job whose last process is one we started is reported at once;
//! - polling, for what nothing signals: membership on a legacy v1-only host (every
//!   [`POLL_INTERVAL`]), the v1 process limit's refusals (every 100 ms), and a job deleted by
//!   someone else (every second).
//!
//! It tells the job's [`Shared`] state when something changed.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec};
use rustix::fs::inotify;
use rustix::process::{Pid, PidfdFlags};

use super::cgroup::{EventSource, dir};
use super::shared::Shared;
use crate::Error;

/// How often jobs without a v2 cgroup are polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often (in poll intervals) the v1 process limit counter is polled: every 100 ms.
const PROCESS_LIMIT_TICKS: u32 = 5;
/// How often every watched job is checked for having been deleted: nothing signals it.
const EXISTENCE_INTERVAL: Duration = Duration::from_secs(1);

/// The epoll tokens of the two fixed descriptors; others get tokens from `NEXT_TOKEN`.
const INOTIFY: u64 = 0;
const WAKE: u64 = 1;
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(2);

type Subscriber = (u64, Weak<Shared>);

/// A descriptor in the epoll set that stands for one job: an OOM eventfd, or a pidfd.
struct Source {
    fd: OwnedFd,
    job: Weak<Shared>,
    /// The token of the job's [`Watch`], which removes the source when it drops.
    owner: u64,
    /// A pidfd is read once: its process has exited.
    once: bool,
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
    /// Jobs whose v1 process limit counter is polled.
    limit_polled: Mutex<Vec<Subscriber>>,
    /// Every watched job, checked every [`EXISTENCE_INTERVAL`] for having been deleted.
    jobs: Mutex<Vec<Subscriber>>,
}

/// A job's registration with the event thread; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Watch {
    token: u64,
    wds: Vec<i32>,
    polled: bool,
    limit_polled: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn event_loop() -> Result<&'static EventLoop, Error> {
    static LOOP: OnceLock<Result<EventLoop, String>> = OnceLock::new();
    LOOP.get_or_init(start)
        .as_ref()
        .map_err(|message| Error::Unsupported {
            what: message.clone(),
        })
}

fn start() -> Result<EventLoop, String> {
    let epoll =
        epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll_create1: {e}"))?;
    let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
    let inotify = inotify::init(flags).map_err(|e| format!("inotify_init1: {e}"))?;
    let wake = eventfd().map_err(|e| format!("eventfd: {e}"))?;
    for (fd, token) in [(&inotify, INOTIFY), (&wake, WAKE)] {
        epoll::add(&epoll, fd, EventData::new_u64(token), EventFlags::IN)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
    }
    std::thread::Builder::new()
        .name("jobobject-events".into())
        .spawn(|| {
            // Blocks until `start` has returned: `get_or_init` runs once.
            if let Ok(event_loop) = event_loop() {
                event_loop.run();
            }
        })
        .map_err(|e| format!("cannot start the event thread: {e}"))?;
    Ok(EventLoop {
        epoll,
        inotify,
        wake,
        watched: Mutex::default(),
        sources: Mutex::default(),
        polled: Mutex::default(),
        limit_polled: Mutex::default(),
        jobs: Mutex::default(),
    })
}

fn eventfd() -> rustix::io::Result<OwnedFd> {
    rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
}

/// Starts delivering changes of `job` to [`Shared::changed`].
pub(crate) fn watch(job: &Arc<Shared>) -> Result<Watch, Error> {
    let event_loop = event_loop()?;
    let mut watch = Watch {
        token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
        wds: Vec::new(),
        polled: false,
        limit_polled: false,
    };
    let subscriber = (watch.token, Arc::downgrade(job));
    for source in job.cgroups.event_sources() {
        let added = match source {
            EventSource::File { dir, path, file } => event_loop
                .add_inotify(dir, file, &subscriber)
                .map(|wd| watch.wds.push(wd))
                .map_err(|e| (e, path.join(file))),
            EventSource::OomEventfd { dir, path } => event_loop
                .add_oom_eventfd(dir, &subscriber)
                .map_err(|e| (e, path.join("cgroup.event_control"))),
            EventSource::Poll => {
                event_loop.add_polled(&event_loop.polled, &subscriber);
                watch.polled = true;
                Ok(())
            }
            EventSource::PollProcessLimit => {
                event_loop.add_polled(&event_loop.limit_polled, &subscriber);
                watch.limit_polled = true;
                Ok(())
            }
        };
        // `watch` undoes what was added when it drops.
        added.map_err(|(e, path)| super::cgroup::os(job.cgroups.name(), "watch", &path, e))?;
    }
    event_loop.add_polled(&event_loop.jobs, &subscriber);
    Ok(watch)
}

/// Tells `job`, watched by `watch`, the moment process `pid` exits. Best effort: a process
/// that is already gone, or a kernel without pidfds, leaves it to the job's other sources.
pub(crate) fn watch_exit(job: &Arc<Shared>, watch: &Watch, pid: u32) {
    let (Ok(event_loop), Some(pid)) = (event_loop(), Pid::from_raw(pid as i32)) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else {
        return;
    };
    let source = Source {
        fd,
        job: Arc::downgrade(job),
        owner: watch.token,
        once: true,
    };
    // Best effort, as above.
    event_loop
        .add_source(NEXT_TOKEN.fetch_add(1, Ordering::Relaxed), source)
        .ok();
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

    /// Adds a descriptor to the epoll set under `token`.
    fn add_source(&self, token: u64, source: Source) -> std::io::Result<()> {
        let mut sources = lock(&self.sources);
        epoll::add(
            &self.epoll,
            &source.fd,
            EventData::new_u64(token),
            EventFlags::IN,
        )?;
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
            once: false,
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
        let interval = Timespec {
            tv_sec: 0,
            tv_nsec: POLL_INTERVAL.as_nanos() as _,
        };
        let existence = Timespec {
            tv_sec: EXISTENCE_INTERVAL.as_secs() as _,
            tv_nsec: 0,
        };
        let mut tick = 0u32;
        let mut checked = Instant::now();
        loop {
            let polling = !lock(&self.polled).is_empty() || !lock(&self.limit_polled).is_empty();
            let watching = !lock(&self.jobs).is_empty();
            ready.clear();
            let timeout = if polling {
                Some(&interval)
            } else {
                watching.then_some(&existence)
            };
            // EINTR and the like: go round again.
            epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut ready),
                timeout,
            )
            .ok();
            for event in ready.drain(..) {
                match event.data.u64() {
                    INOTIFY => self.dispatch_inotify(&mut buffer),
                    WAKE => drain(self.wake.as_fd()),
                    token => self.dispatch_source(token),
                }
            }
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
                if tick % PROCESS_LIMIT_TICKS == 0 {
                    let subscribers = lock(&self.limit_polled).clone();
                    for job in subscribers.iter().filter_map(|(_, job)| job.upgrade()) {
                        job.process_limit_polled();
                    }
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
            if source.once {
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
