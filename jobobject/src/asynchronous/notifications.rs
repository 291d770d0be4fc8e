//! A job's notifications as a `Stream`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::sys::Listener;
use crate::{Error, Notification, Result};

/// The next notification, while the stream waits for it.
type Pending = Pin<Box<dyn Future<Output = Result<Notification>> + Send>>;

/// The notifications of a job, as a [`Stream`]: made by
/// [`JobObject::notifications`](crate::JobObject::notifications).
///
/// Each item is the next notification, in order, none dropped. The stream ends when the
/// handle is [closed](crate::JobObject::close) (or was already); an error (the job was
/// deleted: [`Error::NotFound`](crate::Error::NotFound); no notifications were asked for:
/// [`Error::NotRegistered`](crate::Error::NotRegistered)) is its last item. Dropping it, or a
/// pending `next()` on it, loses no notification: another stream or
/// [`poll_notification`](crate::JobObject::poll_notification) gets it.
pub struct Notifications {
    state: State,
}

enum State {
    Listening(Listener, Option<Pending>),
    Failed(Error),
    Ended,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Listening(..) => "listening",
            State::Failed(_) => "failed",
            State::Ended => "ended",
        };
        f.debug_struct("Notifications")
            .field("state", &state)
            .finish()
    }
}

impl Notifications {
    pub(crate) fn new(listener: Result<Listener>) -> Self {
        let state = match listener {
            Ok(listener) => State::Listening(listener, None),
            Err(Error::AlreadyClosed) => State::Ended,
            Err(err) => State::Failed(err),
        };
        Notifications { state }
    }
}

impl Stream for Notifications {
    type Item = Result<Notification>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let popped = match &mut this.state {
            State::Ended => return Poll::Ready(None),
            State::Failed(_) => None,
            State::Listening(listener, pending) => {
                // One future for as long as the stream waits, so the queue keeps its waker.
                let next = pending.get_or_insert_with(|| Box::pin(listener.next()));
                match next.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(popped) => {
                        *pending = None;
                        Some(popped)
                    }
                }
            }
        };
        let item = match popped {
            Some(Ok(notification)) => return Poll::Ready(Some(Ok(notification))),
            Some(Err(Error::AlreadyClosed)) => None,
            Some(Err(err)) => Some(Err(err)),
            None => match std::mem::replace(&mut this.state, State::Ended) {
                State::Failed(err) => Some(Err(err)),
                _ => None,
            },
        };
        this.state = State::Ended;
        Poll::Ready(item)
    }
}
