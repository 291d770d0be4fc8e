//! Processes started inside a job: a builder and a child shaped like std's.
//!
//! [`Command::spawn`] starts a program in a [`JobObject`](crate::JobObject) at the cost of a
//! plain spawn, with the child in the job from its first instruction. Use it rather than
//! [`JobObject::spawn`](crate::JobObject::spawn), which takes a `std::process::Command` and
//! must fork the caller on Linux.

mod child;
mod command;
mod stdio;

pub use child::Child;
pub use command::Command;
pub use stdio::Stdio;

pub(crate) use command::{EnvChanges, Parts};
pub(crate) use stdio::Kind as StdioKind;
