//! The one event thread of the process. It serves every job through a single inotify
//! descriptor (`cgroup.events`, and the v2 `memory.events` and `pids.events`), the eventfds
//! of v1 OOM notifications, and, for jobs without any of those, polling; and it tells the job's
//! [`Shared`] state when something changed.
//!
//! Where there is no cgroup v2 (legacy v1 without a unified mount) nothing signals that a
//! cgroup emptied, so the same thread polls those jobs' `cgroup.procs` every
//! [`POLL_INTERVAL`] instead.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::inotify;

use super::cgroup::{EventSource, dir};
use super::shared::Shared;
use crate::Error;

/// How often jobs without a v2 cgroup are polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often (in poll intervals) the v1 process limit counter is polled: every 100 ms.
const PROCESS_LIMIT_TICKS: u32 = 5;

type Subscriber = (u64, Weak<Shared>);

struct EventLoop {
    inotify: OwnedFd,
    /// Wakes the thread when the set of polled jobs or eventfds changes.
    wake: OwnedFd,
    /// inotify watch descriptor -> the jobs it serves (inotify gives the same descriptor for
    /// the same file, so one per registration).
    watched: Mutex<HashMap<i32, Vec<Subscriber>>>,
    /// v1 OOM eventfds.
    eventfds: Mutex<Vec<(Arc<OwnedFd>, Subscriber)>>,
    polled: Mutex<Vec<Subscriber>>,
    /// Jobs whose v1 process limit counter is polled.
    limit_polled: Mutex<Vec<Subscriber>>,
}

/// A job's registration with the event thread; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Watch {
    token: u64,
    wds: Vec<i32>,
    eventfd: bool,
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
    let flags = inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK;
    let inotify = inotify::init(flags).map_err(|e| format!("inotify_init1: {e}"))?;
    let wake = eventfd().map_err(|e| format!("eventfd: {e}"))?;
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
        inotify,
        wake,
        watched: Mutex::default(),
        eventfds: Mutex::default(),
        polled: Mutex::default(),
        limit_polled: Mutex::default(),
    })
}

fn eventfd() -> rustix::io::Result<OwnedFd> {
    rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
}

/// Starts delivering changes of `job` to [`Shared::changed`].
pub(crate) fn watch(job: &Arc<Shared>) -> Result<Watch, Error> {
    static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);
    let event_loop = event_loop()?;
    let mut watch = Watch {
        token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
        wds: Vec::new(),
        eventfd: false,
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
                .map(|()| watch.eventfd = true)
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
    Ok(watch)
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
        lock(&self.eventfds).push((Arc::new(efd), subscriber.clone()));
        self.wake();
        Ok(())
    }

    fn run(&self) -> ! {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let interval = Timespec {
            tv_sec: 0,
            tv_nsec: POLL_INTERVAL.as_nanos() as _,
        };
        let mut tick = 0u32;
        loop {
            let polling = !lock(&self.polled).is_empty() || !lock(&self.limit_polled).is_empty();
            let eventfds: Vec<(Arc<OwnedFd>, Subscriber)> = lock(&self.eventfds).clone();
            let mut fds = vec![
                PollFd::new(&self.inotify, PollFlags::IN),
                PollFd::new(&self.wake, PollFlags::IN),
            ];
            fds.extend(
                eventfds
                    .iter()
                    .map(|(fd, _)| PollFd::new(&**fd, PollFlags::IN)),
            );
            // EINTR and the like: go round again.
            rustix::event::poll(&mut fds, polling.then_some(&interval)).ok();
            let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
            drop(fds);
            if ready[1] {
                drain(self.wake.as_fd());
            }
            if ready[0] {
                self.dispatch_inotify(&mut buffer);
            }
            for ((fd, subscriber), _) in eventfds.iter().zip(&ready[2..]).filter(|(_, r)| **r) {
                drain(fd.as_fd());
                notify(std::slice::from_ref(subscriber));
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
        if self.eventfd {
            // Closing the eventfd also ends the kernel's registration.
            lock(&event_loop.eventfds).retain(|(_, (t, _))| *t != token);
            event_loop.wake();
        }
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
