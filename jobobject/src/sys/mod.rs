//! Platform backends, each with the same shape: a `Job` type that the public
//! [`JobObject`](crate::JobObject) wraps.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::CgroupLayout;
#[cfg(target_os = "linux")]
pub(crate) use linux::Job;
#[cfg(target_os = "linux")]
pub(crate) use linux::list_jobs;

#[cfg(not(target_os = "linux"))]
compile_error!("jobobject supports Linux for now; the Windows backend is on its way");
