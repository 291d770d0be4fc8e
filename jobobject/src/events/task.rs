//! How an async task waits on a [`Queue`]: the queue wakes the task's `std::task::Waker`, so
//! the one event thread that fills the queue is the only thread involved.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use super::{Queue, Waker};
use crate::{Error, Notification};

/// The waker the queue calls: the one of the task that polled last.
#[derive(Debug, Default)]
struct TaskWaker(Mutex<Option<std::task::Waker>>);

impl Waker for TaskWaker {
    fn wake(&self) {
        // Called with the queue locked; `wake_by_ref` only schedules the task.
        if let Some(waker) = &*self.0.lock().unwrap_or_else(PoisonError::into_inner) {
            waker.wake_by_ref();
        }
    }
}

/// The next message of a queue, as a future; see [`next`].
#[derive(Debug)]
pub(crate) struct Next {
    queue: Arc<Queue>,
    waker: Arc<TaskWaker>,
    /// The waker as the queue holds it (registered once, for the future's life).
    registered: Option<Arc<dyn Waker>>,
}

/// The next message of `queue`, or its error (`AlreadyClosed`, `NotFound`) once it has none.
///
/// Cancel-safe: a message leaves the queue only in the poll that returns it, so dropping the
/// future loses nothing; the drop also stops the queue from waking the task.
pub(crate) fn next(queue: Arc<Queue>) -> Next {
    Next {
        queue,
        waker: Arc::default(),
        registered: None,
    }
}

impl Future for Next {
    type Output = Result<Notification, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Stored before the queue is looked at, so that a push after the look wakes this
        // task; never while the queue is locked (its `wake` takes this lock under the
        // queue's).
        {
            let mut current = this.waker.0.lock().unwrap_or_else(PoisonError::into_inner);
            if !current.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *current = Some(cx.waker().clone());
            }
        }
        let registered = this
            .registered
            .get_or_insert_with(|| Arc::clone(&this.waker) as Arc<dyn Waker>);
        match this.queue.pop_or_register(registered) {
            Ok(Some(message)) => Poll::Ready(Ok(message)),
            Ok(None) => Poll::Pending,
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

impl Drop for Next {
    fn drop(&mut self) {
        if let Some(registered) = &self.registered {
            self.queue.unregister(registered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn woken(count: &Arc<Count>) -> usize {
        count.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A queue, and a task's waker that counts its wake-ups.
    fn queue_and_waker() -> (Arc<Queue>, Arc<Count>, std::task::Waker) {
        let count = Arc::new(Count::default());
        let waker = std::task::Waker::from(Arc::clone(&count));
        (Arc::new(Queue::new()), count, waker)
    }

    #[test]
    fn a_push_wakes_the_pending_task_and_the_next_poll_takes_it() {
        let (queue, count, waker) = queue_and_waker();
        let mut cx = Context::from_waker(&waker);
        let mut next = std::pin::pin!(next(Arc::clone(&queue)));
        assert!(next.as_mut().poll(&mut cx).is_pending());
        queue.push(Notification::AllProcessesExited);
        assert_eq!(woken(&count), 1);
        assert!(matches!(
            next.as_mut().poll(&mut cx),
            Poll::Ready(Ok(Notification::AllProcessesExited))
        ));
    }

    #[test]
    fn a_dropped_future_loses_nothing_and_is_woken_no_more() {
        let (queue, count, waker) = queue_and_waker();
        let mut cx = Context::from_waker(&waker);
        let mut pending = Box::pin(next(Arc::clone(&queue)));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        drop(pending);
        queue.push(Notification::JobMemoryLimit);
        assert_eq!(woken(&count), 0);
        let mut again = std::pin::pin!(next(Arc::clone(&queue)));
        assert!(matches!(
            again.as_mut().poll(&mut cx),
            Poll::Ready(Ok(Notification::JobMemoryLimit))
        ));
    }

    #[test]
    fn close_wakes_and_ends_with_already_closed() {
        let (queue, count, waker) = queue_and_waker();
        let mut cx = Context::from_waker(&waker);
        let mut next = std::pin::pin!(next(Arc::clone(&queue)));
        assert!(next.as_mut().poll(&mut cx).is_pending());
        queue.close();
        assert_eq!(woken(&count), 1);
        assert!(matches!(
            next.as_mut().poll(&mut cx),
            Poll::Ready(Err(Error::AlreadyClosed))
        ));
    }
}
