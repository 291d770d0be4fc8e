//! Platform backends, each with the same shape: a `Job` type that the public
//! [`JobObject`](crate::JobObject) wraps.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::CgroupLayout;
#[cfg(target_os = "linux")]
pub(crate) use linux::list_jobs;
#[cfg(target_os = "linux")]
pub(crate) use linux::{Job, Process};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{Job, Process};

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!("jobobject supports Linux and Windows only");
