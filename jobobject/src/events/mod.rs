//! The platform-neutral half of the event machinery: the per-handle notification queue.
//!
//! Each platform has one event thread for all jobs (`sys::*::events`); it pushes into these
//! queues, and `poll_notification` pops from them.

mod queue;

pub(crate) use queue::Queue;
#[cfg(target_os = "linux")]
pub(crate) use queue::Waker;
