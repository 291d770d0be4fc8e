//! Test jobs: their names and options, creating them, checking that they exist or are gone,
//! and whether this machine can make them at all.

use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::sync::OnceLock;

use jobobject::{JobObject, Options};

use super::TIMEOUT;
#[cfg(target_os = "linux")]
use super::{assert_job_exists, wait_job_removed};

/// Names this test process gives its jobs: `jobobject-test-<what>-<pid>`.
pub fn test_name(what: &str) -> String {
    format!("jobobject-test-{what}-{}", std::process::id())
}

/// Options for a named test job (on Linux below this process's own cgroups).
pub fn options(what: &str) -> Options {
    below_own_cgroups(Options::new().name(test_name(what)))
}

/// Options for the test job named `name` in full (as [`test_name`] makes it), for a child
/// process that opens a job of its parent.
pub fn named_options(name: &str) -> Options {
    below_own_cgroups(Options::new().name(name))
}

/// Options for an anonymous job (on Linux below this process's own cgroups).
pub fn anonymous_options() -> Options {
    below_own_cgroups(Options::new())
}

#[cfg(target_os = "linux")]
fn below_own_cgroups(options: Options) -> Options {
    use jobobject::os::linux::{CgroupParent, OptionsExt};
    options.cgroup_parent(CgroupParent::Own)
}

#[cfg(windows)]
fn below_own_cgroups(options: Options) -> Options {
    options
}

/// Creates a job with `options` (which must have come from [`options`] or
/// [`anonymous_options`]) and sets terminate-on-last-handle-close, so that a failing test's
/// unwinding drop kills what it started and removes the job.
pub fn create(options: &Options) -> JobObject {
    // The parent is private to the library; its Debug form shows it.
    #[cfg(target_os = "linux")]
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

/// Whether this machine can make jobs for the tests: on Linux [`require_cgroups`]; on Windows
/// always (Job Objects need no privilege).
pub fn require_jobs(test: &str) -> bool {
    #[cfg(target_os = "linux")]
    return require_cgroups(test);
    #[cfg(windows)]
    {
        let _ = test;
        true
    }
}

/// Panics unless the named job exists (on Linux: a directory in every hierarchy it uses).
pub fn assert_exists(name: &str) {
    #[cfg(target_os = "linux")]
    assert_job_exists(name);
    #[cfg(windows)]
    if let Err(err) = JobObject::open(&Options::new().name(name)) {
        panic!("job {name} does not exist: {err}");
    }
}

/// Waits until the named job is gone (on Linux: from every hierarchy; on Windows the system
/// frees a job asynchronously once its last handle and process are gone).
pub fn wait_removed(name: &str) {
    #[cfg(target_os = "linux")]
    wait_job_removed(name, TIMEOUT);
    #[cfg(windows)]
    super::wait_for(
        &format!("job {name} to be removed"),
        TIMEOUT,
        || match JobObject::open(&Options::new().name(name)) {
            Err(jobobject::Error::NotFound { .. }) => true,
            Ok(_) => false,
            Err(err) => panic!("open {name}: {err}"),
        },
    );
}

/// Nothing to clean on Windows: a job goes with its last handle and process, and [`Reap`]
/// kills the processes. (Linux's guard removes a job left behind.)
///
/// [`Reap`]: super::Reap
#[cfg(windows)]
pub struct Cleanup;

#[cfg(windows)]
impl Cleanup {
    pub fn new(_name: &str) -> Self {
        Cleanup
    }
}

/// The v1 controllers the library may put jobs in; hierarchies with none of them (`devices`,
/// `name=systemd`) are left alone.
#[cfg(target_os = "linux")]
pub const USED_V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "blkio", "freezer", "pids",
];

/// How a job uses a v1 hierarchy carrying `controllers`, as the library decides it.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Use {
    /// A directory from the job's creation.
    Always,
    /// A directory once the job needs it (cpuset: CPU affinity; blkio: I/O limits, tracking).
    OnDemand,
    /// None: no controller jobs use, or (on hybrid) only cpuacct and freezer, whose work the
    /// v2 hierarchy does.
    Never,
}

#[cfg(target_os = "linux")]
pub fn v1_use(controllers: &[String], layout: jobobject::os::linux::CgroupLayout) -> V1Use {
    let used: Vec<&str> = controllers
        .iter()
        .map(String::as_str)
        .filter(|c| USED_V1_CONTROLLERS.contains(c))
        .collect();
    let all_in = |set: &[&str]| used.iter().all(|c| set.contains(c));
    let hybrid = layout == jobobject::os::linux::CgroupLayout::Hybrid;
    if used.is_empty() || (hybrid && all_in(&["cpuacct", "freezer"])) {
        V1Use::Never
    } else if all_in(&["cpuset", "blkio"]) {
        V1Use::OnDemand
    } else {
        V1Use::Always
    }
}

/// Whether the tests can use cgroups here: root, and a cgroup layout the library can use.
///
/// Without them it prints `SKIP <test>: <reason>` and returns `false`; under `CI=true` it
/// panics instead. If `JOBOBJECT_TEST_EXPECT_LAYOUT` (unified, hybrid or legacy) is set, a
/// different detected layout is a failure, so that a harness meant to test one layout never
/// silently tests another.
#[cfg(target_os = "linux")]
pub fn require_cgroups(test: &str) -> bool {
    use jobobject::os::linux::CgroupLayout;
    use std::io::Write;
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
#[cfg(target_os = "linux")]
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
