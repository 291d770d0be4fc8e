//! The Windows backend: jobs as Job Objects, through `windows-sys`.
//!
//! - [`object`]: create (`CreateJobObjectW`, or `NtCreateJobObject` for
//!   [`Options::use_nt_variant`](crate::Options::use_nt_variant)) and open by name.
//! - [`job`]: the handle that `JobObject` wraps: membership, terminate, limits, statistics.
//! - [`builder`]: the library's own builder's children, born in the job.
//! - [`spawn`]: std's `Command`s, created suspended, assigned, then resumed.
//! - [`events`]: the one completion port and thread for every job's notifications, and the
//!   waits for a job to be empty.
//! - `exit_wait` (feature `tokio`): an async wait for a child's exit.
//! - `groups`: CPU sets beyond 64 CPUs, as processor group affinities.
//! - [`limits`], [`stats`]: the information classes behind limits and statistics.
//! - `probe`: facts for `Capabilities::probe`.
//! - [`info`], [`process`], [`handle`], [`errors`]: typed queries, single processes, handles
//!   and run-time lookups, and error mapping.
//!
//! Calls that Wine (or an older Windows) lacks are resolved at run time or detected when they
//! fail, and reported as [`Error::Unsupported`](crate::Error::Unsupported), never as a limit
//! set that is not applied.

mod builder;
mod errors;
mod events;
#[cfg(feature = "tokio")]
mod exit_wait;
mod groups;
mod handle;
mod info;
mod job;
mod limits;
mod object;
mod probe;
mod process;
mod spawn;
mod stats;

pub(crate) use builder::Process;
pub(crate) use job::Job;
#[cfg(feature = "tokio")]
pub(crate) use job::Listener;
pub(crate) use probe::{describe_kill, describe_spawn, facts};
