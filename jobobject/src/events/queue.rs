use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::{Error, Notification};

/// An unbounded queue of notifications for one handle, closed once.
///
/// Pushing never blocks and never drops; popping blocks until a message arrives or the queue
/// is closed, which wakes every waiter with [`Error::AlreadyClosed`].
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Notification>,
    closed: bool,
    /// The job itself is gone (deleted by someone else): what to say once the messages
    /// before that are read.
    ended: Option<String>,
    /// Threads that wait on something of their own besides the queue (see
    /// [`Queue::pop_or_register`]), woken by every change.
    wakers: Vec<Arc<dyn Waker>>,
}

/// How a thread that waits on more than this queue is woken (a descriptor it polls).
pub(crate) trait Waker: Send + Sync + std::fmt::Debug {
    /// Makes the waiting thread return; called with the queue locked, so it must not block.
    fn wake(&self);
}

impl Queue {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did: every update is one
        // push, pop or flag store.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a message; after `close` it is dropped, as nobody can read it.
    pub(crate) fn push(&self, message: Notification) {
        let mut state = self.lock();
        if !state.closed {
            state.messages.push_back(message);
            self.ready.notify_one();
            state.wake_all();
        }
    }

    /// Pops the next message without waiting; with none, registers `waker` to be woken by
    /// the next change (until [`unregister`](Self::unregister)), so that no message pushed
    /// between this check and the caller's wait is missed.
    #[cfg_attr(not(any(target_os = "linux", feature = "tokio")), allow(dead_code))]
    pub(crate) fn pop_or_register(
        &self,
        waker: &Arc<dyn Waker>,
    ) -> Result<Option<Notification>, Error> {
        let mut state = self.lock();
        let popped = state.pop()?;
        if popped.is_none() && !state.wakers.iter().any(|w| Arc::ptr_eq(w, waker)) {
            state.wakers.push(Arc::clone(waker));
        }
        Ok(popped)
    }

    /// Stops waking `waker`.
    #[cfg_attr(not(any(target_os = "linux", feature = "tokio")), allow(dead_code))]
    pub(crate) fn unregister(&self, waker: &Arc<dyn Waker>) {
        self.lock().wakers.retain(|w| !Arc::ptr_eq(w, waker));
    }

    /// Blocks for the next message until `deadline` (`None`: without one); `Ok(None)` when
    /// the deadline passed first.
    pub(crate) fn pop_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Notification>, Error> {
        let mut state = self.lock();
        loop {
            if let Some(message) = state.pop()? {
                return Ok(Some(message));
            }
            state = match deadline {
                None => self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Ends the queue because the job is gone: `pop` returns what was queued, then
    /// [`Error::NotFound`] about `what`.
    // Only a Linux job can vanish under a handle.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn end(&self, what: String) {
        let mut state = self.lock();
        state.ended = Some(what);
        self.ready.notify_all();
        state.wake_all();
    }

    /// Closes the queue and wakes every blocked `pop`.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.ready.notify_all();
        state.wake_all();
    }
}

impl State {
    /// The next message; `AlreadyClosed` once closed, `NotFound` once ended and read.
    fn pop(&mut self) -> Result<Option<Notification>, Error> {
        if self.closed {
            return Err(Error::AlreadyClosed);
        }
        if let Some(message) = self.messages.pop_front() {
            return Ok(Some(message));
        }
        if let Some(what) = &self.ended {
            return Err(Error::NotFound { what: what.clone() });
        }
        Ok(None)
    }

    fn wake_all(&self) {
        for waker in &self.wakers {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    impl Queue {
        /// Blocks for the next message, without a deadline.
        pub(crate) fn pop(&self) -> Result<Notification, Error> {
            Ok(self.pop_until(None)?.expect("no deadline, no timeout"))
        }
    }

    #[test]
    fn keeps_order_and_every_message() {
        let queue = Queue::new();
        for _ in 0..10_000 {
            queue.push(Notification::AllProcessesExited);
        }
        queue.push(Notification::JobMemoryLimit);
        for _ in 0..10_000 {
            assert_eq!(queue.pop().unwrap(), Notification::AllProcessesExited);
        }
        assert_eq!(queue.pop().unwrap(), Notification::JobMemoryLimit);
    }

    #[test]
    fn an_ended_queue_gives_its_messages_then_not_found() {
        let queue = Queue::new();
        queue.push(Notification::AllProcessesExited);
        queue.end("job \"x\" (deleted)".into());
        assert_eq!(queue.pop().unwrap(), Notification::AllProcessesExited);
        assert!(matches!(queue.pop(), Err(Error::NotFound { .. })));
        queue.close();
        assert!(matches!(queue.pop(), Err(Error::AlreadyClosed)));
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let queue = Queue::new();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(queue.pop_until(Some(soon)).unwrap(), None);
        assert!(Instant::now() >= soon);
        queue.push(Notification::AllProcessesExited);
        let later = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(
            queue.pop_until(later).unwrap(),
            Some(Notification::AllProcessesExited)
        );
    }

    #[test]
    fn close_wakes_a_blocked_pop() {
        let queue = Arc::new(Queue::new());
        let waiter = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.pop())
        };
        std::thread::sleep(Duration::from_millis(50));
        queue.close();
        assert!(matches!(waiter.join().unwrap(), Err(Error::AlreadyClosed)));
        queue.push(Notification::AllProcessesExited);
        assert!(matches!(queue.pop(), Err(Error::AlreadyClosed)));
    }
}
