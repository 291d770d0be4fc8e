//! How a thread blocked on a job (`poll_notification`, `wait_empty`) waits: on the job's
//! queue, and on the job itself.
//!
//! The event thread reads every job when the kernel says it changed, and pushes what it
//! finds into the job's queues; a caller blocked on a queue then wakes in turn. Two threads
//! woken one after the other cost two wake-ups, each dear from an idle CPU. So a waiting
//! caller also polls the `cgroup.events` file its job holds open, which the kernel signals
//! (`POLLPRI`) the moment the job's membership changes, before inotify's workqueue tells the
//! event thread; woken by it, the caller reads the job itself, as the event thread would. Whichever reads first reports; the other finds nothing
//! new ([`Emptying`](super::shared) reports an emptying once).
//!
//! The caller's own wake-up comes through an eventfd of its thread, which the queue writes
//! at every change. Without one (out of descriptors) or without the held file (a legacy v1
//! host, or past the held files' budget), it waits on the queue alone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};

use super::events::Listener;
use super::shared::Shared;
use crate::events::{Queue, Waker};
use crate::{Error, Notification};

/// A thread's eventfd, which wakes it from [`pop_until`].
#[derive(Debug)]
struct ThreadWaker(OwnedFd);

impl Waker for ThreadWaker {
    fn wake(&self) {
        // A full counter wakes the thread as well.
        rustix::io::write(&self.0, &1u64.to_ne_bytes()).ok();
    }
}

thread_local! {
    /// Made on the thread's first wait, kept until it ends; `None` if no eventfd could be had.
    static WAKER: Option<Arc<ThreadWaker>> = rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )
    .ok()
    .map(|fd| Arc::new(ThreadWaker(fd)));
}

/// Blocks for the next message of `queue`, a queue of `job`, until `deadline` (`None`:
/// without one); `Ok(None)` when the deadline passed first.
pub(crate) fn pop_until(
    job: &Arc<Shared>,
    queue: &Queue,
    deadline: Option<Instant>,
) -> Result<Option<Notification>, Error> {
    let Some(own) = WAKER.with(Clone::clone) else {
        return queue.pop_until(deadline);
    };
    let waker: Arc<dyn Waker> = own.clone();
    let popped = wait(job, queue, (&waker, own.0.as_fd()), deadline);
    queue.unregister(&waker);
    popped
}

/// [`pop_until`] with the thread's waker and its eventfd.
fn wait(
    job: &Arc<Shared>,
    queue: &Queue,
    (waker, eventfd): (&Arc<dyn Waker>, BorrowedFd<'_>),
    deadline: Option<Instant>,
) -> Result<Option<Notification>, Error> {
    // Whether to watch the job's `cgroup.events`: not once it cannot be read.
    let mut watch_job = true;
    loop {
        if let Some(message) = queue.pop_or_register(waker)? {
            return Ok(Some(message));
        }
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                // A message pushed meanwhile still counts.
                _ => return queue.pop_or_register(waker),
            },
        };
        let events = job.events_file().filter(|_| watch_job);
        let job_changed = poll(eventfd, events.as_deref().map(AsFd::as_fd), timeout);
        drain(eventfd);
        if job_changed {
            Arc::clone(job).changed();
            if let Some(events) = &events {
                // The kernel signals the file until it is read through this open file;
                // `changed` may have returned before reading it. A file that cannot be read
                // (the job was removed) signals for ever: the queue alone says the rest.
                watch_job = rustix::io::pread(events, &mut [0u8; 64], 0).is_ok();
            }
        }
    }
}

/// Waits until the eventfd is readable or (`true`) the job's `cgroup.events` signals a
/// change, for at most `timeout`.
fn poll(
    eventfd: BorrowedFd<'_>,
    events: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> bool {
    let timeout = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let mut fds = vec![PollFd::from_borrowed_fd(eventfd, PollFlags::IN)];
    if let Some(events) = events {
        fds.push(PollFd::from_borrowed_fd(events, PollFlags::PRI));
    }
    // EINTR: the caller goes round again.
    if rustix::event::poll(&mut fds, timeout.as_ref()).is_err() {
        return false;
    }
    fds.get(1).is_some_and(|f| !f.revents().is_empty())
}

fn drain(eventfd: BorrowedFd<'_>) {
    let mut count = [0u8; 8];
    rustix::io::read(eventfd, &mut count).ok();
}

/// The job's held `cgroup.events`, registered with a tokio reactor: the `Arc` keeps the
/// descriptor open, and the same, for as long as the registration.
#[cfg(feature = "tokio")]
struct HeldEvents(Arc<OwnedFd>);

#[cfg(feature = "tokio")]
impl std::os::fd::AsRawFd for HeldEvents {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// The next message of `queue`, a queue of `job`, for an async task: as [`pop_until`], the
/// task also has the runtime's reactor watch the job's `cgroup.events` (`POLLPRI`), so that
/// the kernel wakes it directly, not through the event thread. One task per job and runtime
/// can: the reactor refuses a descriptor twice, and the others wait on the queue alone.
#[cfg(feature = "tokio")]
pub(crate) async fn next_async(
    job: &Arc<Shared>,
    queue: Arc<Queue>,
) -> Result<Notification, Error> {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    let mut next = crate::events::next(queue);
    let mut watch = job.events_file().and_then(|file| {
        // SAFETY: `HeldEvents` keeps the descriptor open, and the same, while registered.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                HeldEvents(file),
                tokio::io::Interest::PRIORITY,
            )
        }
        .ok()
    });
    loop {
        // The readiness future borrows `watch`, and ends before `watch` may change.
        let step = {
            let changed = async {
                match &watch {
                    Some(file) => file
                        .ready(tokio::io::Interest::PRIORITY)
                        .await
                        .map(|mut ready| ready.clear_ready()),
                    None => std::future::pending().await,
                }
            };
            let mut changed = std::pin::pin!(changed);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(message) = Pin::new(&mut next).poll(cx) {
                    return Poll::Ready(Ok(message));
                }
                changed.as_mut().poll(cx).map(Err)
            })
            .await
        };
        match step {
            Ok(message) => return message,
            Err(Ok(())) => {
                Arc::clone(job).changed();
                if let Some(file) = &watch {
                    // As in `wait`: a file that cannot be read signals for ever.
                    if rustix::io::pread(&*file.get_ref().0, &mut [0u8; 64], 0).is_err() {
                        watch = None;
                    }
                }
            }
            Err(Err(_)) => watch = None,
        }
    }
}
