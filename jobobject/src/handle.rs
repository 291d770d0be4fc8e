//! What every backend's handle has in common: the job's state while the handle is open, the
//! handle's notification queue, and `AlreadyClosed` / `NotRegistered` once and for all.

use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

use crate::events::Queue;
use crate::{Error, Notification};

/// An open-or-closed handle to a backend's job state `T`.
///
/// Calls in flight hold an `Arc<T>` of their own, so `close` from another thread never pulls
/// the state from under them; they finish, and every later call sees `AlreadyClosed`.
#[derive(Debug)]
pub(crate) struct Handle<T> {
    open: RwLock<Option<Arc<T>>>,
    queue: Option<Arc<Queue>>,
    /// The queues of calls waiting on this handle (`wait_empty`), which `close` ends too.
    waiters: Mutex<Vec<Weak<Queue>>>,
}

impl<T> Handle<T> {
    /// An open handle on `state`, with its notification queue if it asked for one.
    pub(crate) fn new(state: Arc<T>, queue: Option<Arc<Queue>>) -> Self {
        Handle {
            open: RwLock::new(Some(state)),
            queue,
            waiters: Mutex::default(),
        }
    }

    /// The job's state, or `AlreadyClosed`.
    pub(crate) fn get(&self) -> Result<Arc<T>, Error> {
        self.open
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::AlreadyClosed)
    }

    /// This handle's notification queue, if it asked for notifications.
    // The Linux backend hands each queue to the job's shared state; Windows' event thread
    // made the queue itself.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn queue(&self) -> Option<&Arc<Queue>> {
        self.queue.as_ref()
    }

    /// Blocks for the next notification until `deadline` (`None`: without one):
    /// `AlreadyClosed` after `close`, `NotRegistered` without a queue, `Ok(None)` when the
    /// deadline passed first.
    // Linux waits on the job too (`sys::linux::waiting`).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) fn poll(&self, deadline: Option<Instant>) -> Result<Option<Notification>, Error> {
        self.get()?;
        self.queue
            .as_ref()
            .ok_or(Error::NotRegistered)?
            .pop_until(deadline)
    }

    /// This handle's notification queue, for a task that waits on it: `AlreadyClosed` after
    /// `close`, `NotRegistered` without one.
    #[cfg(feature = "tokio")]
    pub(crate) fn listener(&self) -> Result<Arc<Queue>, Error> {
        self.get()?;
        self.queue.clone().ok_or(Error::NotRegistered)
    }

    /// A queue for one call that waits on the job, which [`close`](Self::close) ends with
    /// `AlreadyClosed`.
    pub(crate) fn waiter(&self) -> Result<Arc<Queue>, Error> {
        let queue = Arc::new(Queue::new());
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(&queue));
        drop(waiters);
        // Closed meanwhile: nobody would end the wait.
        self.get()?;
        Ok(queue)
    }

    /// Closes the handle: takes the state (`AlreadyClosed` the second time) and wakes every
    /// blocked `poll` with `AlreadyClosed`.
    pub(crate) fn close(&self) -> Result<Arc<T>, Error> {
        let state = self
            .open
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(Error::AlreadyClosed)?;
        if let Some(queue) = &self.queue {
            queue.close();
        }
        let waiters =
            std::mem::take(&mut *self.waiters.lock().unwrap_or_else(PoisonError::into_inner));
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            waiter.close();
        }
        Ok(state)
    }
}
