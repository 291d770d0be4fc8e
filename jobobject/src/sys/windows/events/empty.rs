//! Calls waiting for a job to be empty (`wait_empty`, sync or async), served by the event
//! thread.
//!
//! A job that is not associated with the port (no handle of it asked for notifications) tells
//! nothing when it empties, and associating it would take the one port it may have from
//! another process. So the thread reads the job's active process count for each waiting call,
//! 1 ms after it started waiting, then at twice the last interval, up to 50 ms, and pushes
//! [`Notification::AllProcessesExited`] into the call's queue each time it reads 0. The call
//! looks at the count itself on each message, so one that reads a count gone up again goes on
//! waiting.

use std::collections::HashMap;
use std::os::windows::io::OwnedHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::handle::raw;
use super::super::info;
use super::{PORT, lock, port};
use crate::events::Queue;
use crate::{Error, Notification};

const FIRST: Duration = Duration::from_millis(1);
const SLOWEST: Duration = Duration::from_millis(50);

/// Every waiting call's watch, by id.
#[derive(Default)]
pub(super) struct Watches {
    next_id: u64,
    by_id: HashMap<u64, Watch>,
}

struct Watch {
    /// A handle of its own, dropped with the watch (when the call ends).
    job: OwnedHandle,
    queue: Arc<Queue>,
    due: Instant,
    interval: Duration,
}

/// A call's watch on a job; dropping it ends the watch.
#[derive(Debug)]
pub(crate) struct EmptyWatch {
    id: u64,
}

/// Starts watching `job` for `queue`, the queue of a call waiting for it to be empty.
pub(crate) fn watch(
    job: &OwnedHandle,
    queue: &Arc<Queue>,
    label: &str,
) -> Result<EmptyWatch, Error> {
    let own = job
        .try_clone()
        .map_err(|err| super::errors::os(label, "DuplicateHandle", err))?;
    let port = port(label)?;
    let mut watches = lock(&port.empties);
    let id = watches.next_id;
    watches.next_id += 1;
    watches.by_id.insert(
        id,
        Watch {
            job: own,
            queue: Arc::clone(queue),
            due: Instant::now() + FIRST,
            interval: FIRST,
        },
    );
    drop(watches);
    port.wake();
    Ok(EmptyWatch { id })
}

impl Drop for EmptyWatch {
    fn drop(&mut self) {
        if let Some(port) = PORT.get() {
            lock(&port.empties).by_id.remove(&self.id);
        }
    }
}

impl Watches {
    /// When the next watch is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.by_id.values().map(|watch| watch.due).min()
    }

    /// Reads the count of every job whose watch is due.
    pub(super) fn run(&mut self, now: Instant) {
        for watch in self.by_id.values_mut().filter(|watch| watch.due <= now) {
            // A count that cannot be read is read again later; the call's own look says why.
            if info::active_processes(raw(&watch.job)).is_ok_and(|count| count == 0) {
                watch.queue.push(Notification::AllProcessesExited);
            }
            watch.interval = (watch.interval * 2).min(SLOWEST);
            watch.due = now + watch.interval;
        }
    }
}
