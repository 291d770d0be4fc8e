//! Helpers shared by the integration tests, which run against the real kernel's cgroups.
//!
//! Rules every test follows (the machine's supervisor depends on them):
//! - every job lives below the test process's own cgroups ([`CgroupParent::Own`]), so no
//!   process ever leaves the cgroups the test runner started in except into descendants;
//! - every job is named `jobobject-test-<what>-<pid>` (or is anonymous, `anon-<pid>-<n>`) and
//!   is created through [`create`], which sets terminate-on-last-handle-close, so that the
//!   unwinding drop of a failing test kills its processes and removes the job; the few tests
//!   that must leave the flag off hold a [`Cleanup`] guard instead;
//! - every `Child` is waited for ([`Reap`]), so no zombie is left;
//! - a test that lacks a capability prints `SKIP <test>: <reason>` and returns, except under
//!   `CI=true`, where that is a failure ([`require_cgroups`]).
//!
//! Timeouts are generous (a later harness runs these tests in an emulated VM 7-35x slower
//! than the host), and tests wait on conditions rather than sleeping, except for the short
//! "nothing more happens" windows of negative checks.

#![allow(dead_code)]

mod cgroups;
mod processes;
mod waiting;

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use cgroups::*;
#[allow(unused_imports)]
pub use processes::*;
#[allow(unused_imports)]
pub use waiting::*;

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobobject::os::linux::{CgroupLayout, CgroupParent, OptionsExt};
use jobobject::{JobObject, Options};

/// How long a condition that must come true may take (generous: slow emulated VMs).
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How long a negative check ("no notification yet") watches for something that must not
/// happen. It can only make a test miss a bug, never fail a correct library.
pub const QUIET: Duration = Duration::from_millis(300);

/// The v1 controllers the library puts jobs in; hierarchies with none of them (`devices`,
/// `name=systemd`) are left alone.
pub const USED_V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids",
];

/// Names this test process gives its jobs: `jobobject-test-<what>-<pid>`.
pub fn test_name(what: &str) -> String {
    format!("jobobject-test-{what}-{}", std::process::id())
}

/// Options for a named test job below this process's own cgroups.
pub fn options(what: &str) -> Options {
    Options::new()
        .name(test_name(what))
        .cgroup_parent(CgroupParent::Own)
}

/// Options for an anonymous job below this process's own cgroups.
pub fn anonymous_options() -> Options {
    Options::new().cgroup_parent(CgroupParent::Own)
}

/// Creates a job with `options` (which must have come from [`options`] or
/// [`anonymous_options`]) and sets terminate-on-last-handle-close, so that a failing test's
/// unwinding drop kills what it started and removes the job.
pub fn create(options: &Options) -> JobObject {
    // The parent is private to the library; its Debug form shows it.
    assert!(
        format!("{options:?}").contains("cgroup_parent: Own"),
        "tests use CgroupParent::Own: {options:?}"
    );
    let job = JobObject::create(options).unwrap_or_else(|e| panic!("create {options:?}: {e}"));
    job.set_terminate_on_last_handle_close()
        .expect("set_terminate_on_last_handle_close");
    job
}

/// [`create`] of the named test job `what`, shared (for notification watchers).
pub fn create_arc(options: &Options) -> Arc<JobObject> {
    Arc::new(create(options))
}

// Capabilities

/// Whether the tests can use cgroups here: root, and a cgroup layout the library can use.
///
/// Without them it prints `SKIP <test>: <reason>` and returns `false`; under `CI=true` it
/// panics instead. If `JOBOBJECT_TEST_EXPECT_LAYOUT` (unified, hybrid or legacy) is set, a
/// different detected layout is a failure, so that a harness meant to test one layout never
/// silently tests another.
pub fn require_cgroups(test: &str) -> bool {
    let layout = CgroupLayout::detect();
    if let Some(expected) = std::env::var_os("JOBOBJECT_TEST_EXPECT_LAYOUT") {
        let expected = expected.to_string_lossy().into_owned();
        assert!(
            ["unified", "hybrid", "legacy"].contains(&expected.as_str()),
            "JOBOBJECT_TEST_EXPECT_LAYOUT={expected:?}: expected unified, hybrid or legacy"
        );
        match &layout {
            Ok(found) => assert_eq!(
                found.as_str(),
                expected,
                "{test}: JOBOBJECT_TEST_EXPECT_LAYOUT={expected} but the host's cgroup layout \
                 is {found}"
            ),
            Err(err) => panic!(
                "{test}: JOBOBJECT_TEST_EXPECT_LAYOUT={expected} but no cgroup layout was \
                 detected: {err}"
            ),
        }
    }
    let missing = if !rustix::process::geteuid().is_root() {
        Some("not running as root (creating cgroups needs root or a delegated subtree)".into())
    } else if let Err(err) = &layout {
        Some(format!("no usable cgroups: {err}"))
    } else {
        probe().err()
    };
    let Some(reason) = missing else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason} (CI=true: a missing capability is a failure, not a skip)");
    }
    // Straight to the stderr descriptor: the test harness captures `eprintln!`.
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
    false
}

/// Creates and removes one anonymous job, once per process, to learn whether jobs can be made
/// here at all (root in a container may still lack a writable cgroupfs).
fn probe() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let job = JobObject::create(&anonymous_options())
                .map_err(|e| format!("cannot create a job below this process's cgroups: {e}"))?;
            job.set_terminate_on_last_handle_close()
                .map_err(|e| e.to_string())?;
            job.close().map_err(|e| format!("cannot close a job: {e}"))
        })
        .clone()
}
