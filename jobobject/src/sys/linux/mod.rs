//! The Linux backend: jobs as cgroups, on the unified (v2), hybrid and legacy (v1) layouts.

pub(crate) mod cgroup;
mod errors;
mod events;
mod fd_budget;
mod job;
mod keeper;
mod limits;
mod probe;
mod process;
mod shared;
mod spawn;
mod stats;
mod waiting;

pub use cgroup::CgroupLayout;
pub(crate) use cgroup::list as list_jobs;
pub(crate) use job::Job;
#[cfg(feature = "tokio")]
pub(crate) use job::Listener;
pub(crate) use keeper::keeper_pid;
pub(crate) use probe::{describe_kill, describe_spawn, facts};
pub(crate) use process::Process;
