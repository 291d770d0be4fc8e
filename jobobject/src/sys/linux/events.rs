//! The one event thread of the process: it watches every job's `cgroup.events` through a
//! single inotify descriptor and tells the job's [`Shared`] state when it changed.
//!
//! Where there is no cgroup v2 (legacy v1 without a unified mount) nothing signals that a
//! cgroup emptied, so the same thread polls those jobs' `cgroup.procs` every
//! [`POLL_INTERVAL`] instead.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::inotify;

use super::shared::Shared;
use crate::Error;

/// How often jobs without a v2 cgroup are polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

type Subscribers = Vec<(u64, Weak<Shared>)>;

struct EventLoop {
    inotify: OwnedFd,
    /// Wakes the thread when the set of polled jobs changes.
    wake: OwnedFd,
    /// inotify watch descriptor -> the jobs it serves (one per registration, as inotify gives
    /// the same descriptor for the same file).
    watched: Mutex<HashMap<i32, Subscribers>>,
    polled: Mutex<Subscribers>,
}

/// A registration with the event thread; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Watch {
    token: u64,
    /// The inotify descriptor, or `None` for a polled job.
    wd: Option<i32>,
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
    let wake = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
        .map_err(|e| format!("eventfd: {e}"))?;
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
        polled: Mutex::default(),
    })
}

/// Starts delivering changes of `job` to [`Shared::changed`].
pub(crate) fn watch(job: &Arc<Shared>) -> Result<Watch, Error> {
    static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);
    let event_loop = event_loop()?;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let subscriber = (token, Arc::downgrade(job));
    let Some(v2) = job.cgroups.v2() else {
        lock(&event_loop.polled).push(subscriber);
        rustix::io::write(&event_loop.wake, &1u64.to_ne_bytes()).ok();
        return Ok(Watch { token, wd: None });
    };
    // The descriptor's magic link resolves to the job's directory itself.
    let path = format!("/proc/self/fd/{}/cgroup.events", v2.fd.as_raw_fd());
    let mut watched = lock(&event_loop.watched);
    let wd = inotify::add_watch(
        &event_loop.inotify,
        path.as_str(),
        inotify::WatchFlags::MODIFY,
    )
    .map_err(|e| super::cgroup::os(job.cgroups.name(), "inotify_add_watch", &v2.path, e.into()))?;
    watched.entry(wd).or_default().push(subscriber);
    Ok(Watch {
        token,
        wd: Some(wd),
    })
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Ok(event_loop) = event_loop() else { return };
        let Some(wd) = self.wd else {
            lock(&event_loop.polled).retain(|(token, _)| *token != self.token);
            return;
        };
        let mut watched = lock(&event_loop.watched);
        if let Some(subscribers) = watched.get_mut(&wd) {
            subscribers.retain(|(token, _)| *token != self.token);
            if subscribers.is_empty() {
                watched.remove(&wd);
                // Fails harmlessly when the cgroup is already gone (the kernel dropped it).
                inotify::remove_watch(&event_loop.inotify, wd).ok();
            }
        }
    }
}

impl EventLoop {
    fn run(&self) -> ! {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let interval = Timespec {
            tv_sec: 0,
            tv_nsec: POLL_INTERVAL.as_nanos() as _,
        };
        loop {
            let polling = !lock(&self.polled).is_empty();
            let mut fds = [
                PollFd::new(&self.inotify, PollFlags::IN),
                PollFd::new(&self.wake, PollFlags::IN),
            ];
            // EINTR and the like: go round again.
            rustix::event::poll(&mut fds, polling.then_some(&interval)).ok();
            if fds[1].revents().contains(PollFlags::IN) {
                let mut count = [0u8; 8];
                rustix::io::read(&self.wake, &mut count).ok();
            }
            if fds[0].revents().contains(PollFlags::IN) {
                self.dispatch_inotify(&mut buffer);
            }
            if polling {
                let subscribers: Subscribers = lock(&self.polled).clone();
                notify(&subscribers);
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

fn notify(subscribers: &Subscribers) {
    for (_, job) in subscribers {
        if let Some(job) = job.upgrade() {
            job.changed();
        }
    }
}
