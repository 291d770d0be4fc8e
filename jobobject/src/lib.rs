//! Job objects for Rust, on Linux and Windows.
//!
//! A *job* is a group of processes controlled as one unit: start processes in it (their
//! children and grandchildren stay in), learn when every process in it has exited, and kill
//! all of it at once without leaving an orphan behind.
//!
//! One API, [`JobObject`], over Windows Job Objects and Linux cgroups (the unified v2
//! layout, and the v1 and hybrid ones). It follows the Go package hcsshim
//! `internal/jobobject`.
//!
//! ```
//! use jobobject::process::Command;
//! use jobobject::{JobObject, Options};
//!
//! # fn main() -> Result<(), jobobject::Error> {
//! let job = JobObject::create(&Options::default())?;
//! # #[cfg(unix)]
//! let mut child = Command::new("sh").args(["-c", "sleep 60 & sleep 60"]).spawn(&job)?;
//! # #[cfg(windows)]
//! # let mut child = Command::new("cmd").args(["/C", "ping -n 60 127.0.0.1 >NUL"]).spawn(&job)?;
//! job.terminate(1)?; // the shell and both sleeps
//! child.wait().unwrap();
//! job.wait_empty(None)?; // the sleeps are gone too: closing the job removes it
//! # Ok(())
//! # }
//! ```
//!
//! # Async
//! With the `tokio` feature, a tokio program awaits a job's notifications
//! (`JobObject::next_notification`, or the `Notifications` stream), its emptying
//! (`JobObject::wait_empty_async`) and a child (`process::Child::wait_async`), and spawns a
//! `tokio::process::Command` into a job (`JobObject::spawn_tokio`). The crate's one event
//! thread feeds every wait: no thread per job or per waiting task. Nothing async is compiled
//! without the feature.
//!
//! # Where jobs live on Linux
//! By default in `/jobobject` at the top of every cgroup hierarchy, shared by every process
//! on the host, so that one process can open by name a job that another made. The
//! environment variable `JOBOBJECT_CGROUP_PARENT` changes that default (`self`: below the
//! caller's own cgroups; a path: relative to each hierarchy's root), and
//! [`os::linux::OptionsExt::cgroup_parent`] chooses per job. What only one platform has lives
//! in [`os`], as in std; the crate root is the same everywhere.

#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod asynchronous;
mod capabilities;
pub mod cpu_list;
mod cpu_set;
mod error;
mod events;
mod handle;
mod job;
mod limits;
mod memory;
mod name;
mod notification;
mod options;
pub mod os;
mod pressure;
pub mod process;
mod stats;
mod stop;
mod sys;

#[cfg(feature = "tokio")]
pub use asynchronous::Notifications;
pub use capabilities::{Capabilities, Capability};
pub use cpu_set::CpuSet;
pub use error::{Error, ErrorKind, Result};
pub use job::JobObject;
pub use limits::{CpuLimit, JobLimits, Limit, MAX_CPU_RATE, MAX_CPU_WEIGHT, MAX_IO_BANDWIDTH};
pub use notification::Notification;
pub use options::Options;
pub use pressure::{Pressure, PressureLine, PressureResource, PressureStats, PressureTrigger};
pub use stats::{MemoryStats, ProcessorStats, StorageStats};
pub use stop::Stopped;
