//! Jobs and children that a tokio program awaits (feature `tokio`).
//!
//! Every wait here is fed by the crate's one event thread (or, for a child, by the runtime's
//! own reactor: its pidfd on Linux, a registered wait on its handle on Windows): no thread per
//! job, none per waiting task, and no polling but where the sync call polls too (a v1-only
//! Linux host, and [`wait_empty_async`](crate::JobObject::wait_empty_async) on Windows). Each
//! future is cancel-safe: dropping it loses no notification and leaves the child unreaped.
//!
//! - [`JobObject::next_notification`](crate::JobObject::next_notification) and
//!   [`JobObject::notifications`](crate::JobObject::notifications) (a [`Stream`](futures_core::Stream)).
//! - [`JobObject::wait_empty_async`](crate::JobObject::wait_empty_async).
//! - [`Child::wait_async`](crate::process::Child::wait_async) for the library's own children.
//! - [`JobObject::spawn_tokio`](crate::JobObject::spawn_tokio) for a `tokio::process::Command`.

mod child;
mod job;
mod notifications;

pub use notifications::Notifications;
