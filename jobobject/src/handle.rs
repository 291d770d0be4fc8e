//! What every backend's handle has in common: the job's state while the handle is open, the
//! handle's notification queue, and `AlreadyClosed` / `NotRegistered` once and for all.

use std::sync::{Arc, PoisonError, RwLock};

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
}

impl<T> Handle<T> {
    /// An open handle on `state`, with its notification queue if it asked for one.
    pub(crate) fn new(state: Arc<T>, queue: Option<Arc<Queue>>) -> Self {
        Handle {
            open: RwLock::new(Some(state)),
            queue,
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

    /// Blocks for the next notification: `AlreadyClosed` after `close`, `NotRegistered`
    /// without a queue.
    pub(crate) fn poll(&self) -> Result<Notification, Error> {
        self.get()?;
        self.queue.as_ref().ok_or(Error::NotRegistered)?.pop()
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
        Ok(state)
    }
}
