//! Helpers shared by the integration tests, which run against the real kernel: cgroups on
//! Linux, Job Objects on Windows (or under Wine).
//!
//! Rules every test follows (the machine's supervisor depends on them):
//! - on Linux every job lives below the test process's own cgroups (`CgroupParent::Own`), so
//!   no process ever leaves the cgroups the test runner started in except into descendants;
//! - every job is named `jobobject-test-<what>-<pid>` (or is anonymous) and is created through
//!   [`create`], which sets terminate-on-last-handle-close, so that the unwinding drop of a
//!   failing test kills its processes and removes the job; the few tests that must leave the
//!   flag off hold a [`Cleanup`] guard instead;
//! - every `Child` is waited for ([`Reap`]), so no zombie is left;
//! - a test that lacks a capability prints `SKIP <test>: <reason>` and returns, except under
//!   `CI=true`, where that is a failure ([`require_jobs`]).
//!
//! Timeouts are generous (a later harness runs these tests in an emulated VM 7-35x slower
//! than the host), and tests wait on conditions rather than sleeping, except for the short
//! "nothing more happens" windows of negative checks.

#![allow(dead_code)]

#[cfg(target_os = "linux")]
mod cgroups;
mod children;
mod jobs;
mod processes;
mod waiting;

// Not every test binary uses every helper.
#[cfg(target_os = "linux")]
#[allow(unused_imports)]
pub use cgroups::*;
#[allow(unused_imports)]
pub use children::*;
#[allow(unused_imports)]
pub use jobs::*;
#[allow(unused_imports)]
pub use processes::*;
#[allow(unused_imports)]
pub use waiting::*;

use std::time::Duration;

/// How long a condition that must come true may take (generous: slow emulated VMs).
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How long a negative check ("no notification yet") watches for something that must not
/// happen. It can only make a test miss a bug, never fail a correct library.
pub const QUIET: Duration = Duration::from_millis(300);
