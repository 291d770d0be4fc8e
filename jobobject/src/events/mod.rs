//! The platform-neutral half of the event machinery: the per-handle notification queue.
//!
//! Each platform has one event thread for all jobs (`sys::*::events`); it pushes into these
//! queues, and `poll_notification` pops from them (with the `tokio` feature, an async task too:
//! [`next`]).

mod queue;
#[cfg(feature = "tokio")]
mod task;

pub(crate) use queue::Queue;
#[cfg(any(target_os = "linux", feature = "tokio"))]
pub(crate) use queue::Waker;
#[cfg(feature = "tokio")]
pub(crate) use task::next;
