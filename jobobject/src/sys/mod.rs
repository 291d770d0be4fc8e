//! Platform backends, each with the same shape: a `Job` type that the public
//! [`JobObject`](crate::JobObject) wraps.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::CgroupLayout;
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub(crate) use linux::Listener;
#[cfg(target_os = "linux")]
pub(crate) use linux::{Job, Process};
#[cfg(target_os = "linux")]
pub(crate) use linux::{describe_kill, describe_spawn, facts, keeper_pid, list_jobs};

#[cfg(windows)]
mod windows;
#[cfg(all(windows, feature = "tokio"))]
pub(crate) use windows::Listener;
#[cfg(windows)]
pub(crate) use windows::{Job, Process, describe_kill, describe_spawn, facts};

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!("jobobject supports Linux and Windows only");

/// The Windows backend's decisions that make no system call, tested on every platform.
#[cfg(all(test, not(windows)))]
#[path = "windows/events"]
mod windows_events {
    mod emptying;
}
