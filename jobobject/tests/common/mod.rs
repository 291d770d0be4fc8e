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

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use jobobject::os::linux::{CgroupLayout, CgroupParent, OptionsExt};
use jobobject::{Error, JobObject, Notification, Options};

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

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
// The test process's own cgroups, found independently of the library

/// One cgroup hierarchy and this process's cgroup in it.
#[derive(Debug, Clone)]
pub struct OwnCgroup {
    /// `unified` for v2, else the hierarchy's controllers joined by `,`.
    pub label: String,
    pub v2: bool,
    /// The controllers of a v1 hierarchy, as `/proc/self/cgroup` lists them.
    pub controllers: Vec<String>,
    /// This process's cgroup as `/proc/self/cgroup` prints it (a path inside the hierarchy).
    pub cgroup: String,
    /// The same as a directory in the mounted filesystem.
    pub dir: PathBuf,
    /// Whether jobs get a directory in this hierarchy.
    pub used: bool,
}

/// A line of `/proc/PID/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub id: u32,
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next().unwrap().parse().expect("cgroup id");
            let controllers = parts
                .next()
                .unwrap()
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = parts.next().expect("cgroup path").to_owned();
            CgroupLine {
                id,
                controllers,
                path,
            }
        })
        .collect()
}

/// Every cgroup hierarchy mounted under `/sys/fs/cgroup`, with this process's cgroup in it.
pub fn own_cgroups() -> Vec<OwnCgroup> {
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let own = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v2_point = match layout {
        CgroupLayout::Unified => Some("/sys/fs/cgroup"),
        CgroupLayout::Hybrid => Some("/sys/fs/cgroup/unified"),
        _ => None,
    };
    let mut found: Vec<OwnCgroup> = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields
            .iter()
            .position(|f| *f == "-")
            .expect("mountinfo separator");
        let (root, point) = (fields[3], fields[4]);
        let (fs_type, super_options) = (fields[dash + 1], fields[dash + 3]);
        let entry = match fs_type {
            "cgroup2" if Some(point) == v2_point => own.iter().find(|l| l.id == 0),
            "cgroup" => {
                let options: Vec<&str> = super_options.split(',').collect();
                own.iter().find(|l| {
                    l.id != 0
                        && !l.controllers.is_empty()
                        && l.controllers.iter().all(|c| options.contains(&c.as_str()))
                })
            }
            _ => None,
        };
        let Some(entry) = entry else { continue };
        // A hierarchy mounted twice is listed once.
        if found
            .iter()
            .any(|f| f.v2 == (entry.id == 0) && f.controllers == entry.controllers)
        {
            continue;
        }
        let inside = Path::new(&entry.path)
            .strip_prefix(root)
            .unwrap_or_else(|_| panic!("own cgroup {} outside the mount of {point}", entry.path));
        let v2 = entry.id == 0;
        found.push(OwnCgroup {
            label: if v2 {
                "unified".into()
            } else {
                entry.controllers.join(",")
            },
            v2,
            controllers: entry.controllers.clone(),
            cgroup: entry.path.clone(),
            dir: Path::new(point).join(inside),
            used: v2
                || entry
                    .controllers
                    .iter()
                    .any(|c| USED_V1_CONTROLLERS.contains(&c.as_str())),
        });
    }
    assert!(
        found.iter().any(|f| f.used),
        "no cgroup hierarchy found for layout {layout}"
    );
    found
}

/// The hierarchies a job gets a directory in.
pub fn used_cgroups() -> Vec<OwnCgroup> {
    own_cgroups().into_iter().filter(|c| c.used).collect()
}

/// The job `name`'s directory in every hierarchy jobs use.
pub fn job_dirs(name: &str) -> Vec<PathBuf> {
    used_cgroups().iter().map(|c| c.dir.join(name)).collect()
}

/// Whether the job `name` has a directory in every hierarchy it should.
pub fn job_exists_everywhere(name: &str) -> bool {
    job_dirs(name).iter().all(|d| d.is_dir())
}

/// Panics unless the job `name` has a directory in every hierarchy it should.
pub fn assert_job_exists(name: &str) {
    for dir in job_dirs(name) {
        assert!(dir.is_dir(), "job directory {} is missing", dir.display());
    }
}

/// The job directories of `name` that still exist, in any hierarchy mounted under
/// `/sys/fs/cgroup` (including those jobs should never use).
pub fn remaining_dirs(name: &str) -> Vec<PathBuf> {
    own_cgroups()
        .iter()
        .map(|c| c.dir.join(name))
        .filter(|d| d.exists())
        .collect()
}

/// Panics unless the job `name` is gone from every hierarchy.
pub fn assert_job_removed(name: &str) {
    let left = remaining_dirs(name);
    assert!(
        left.is_empty(),
        "job {name} left directories behind: {left:?}"
    );
}

/// Waits until the job `name` is gone from every hierarchy.
pub fn wait_job_removed(name: &str, timeout: Duration) {
    wait_for(&format!("job {name} to be removed"), timeout, || {
        remaining_dirs(name).is_empty()
    });
    assert_job_removed(name);
}

/// The names in a directory.
pub fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes the job `name` if it still exists when dropped: for the tests that must leave
/// terminate-on-close off, so that even their failure leaves nothing behind. It opens the job
/// by name with terminate-on-close and closes it, which kills what is left and removes it.
pub struct Cleanup {
    pub name: String,
}

impl Cleanup {
    pub fn new(name: &str) -> Self {
        Cleanup { name: name.into() }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if remaining_dirs(&self.name).is_empty() {
            return;
        }
        let options = Options::new()
            .name(self.name.clone())
            .cgroup_parent(CgroupParent::Own);
        if let Ok(job) = JobObject::open(&options) {
            job.set_terminate_on_last_handle_close().ok();
            job.close().ok();
        }
        // What the library could not open (a partial job): remove it by hand, v1 first. An
        // rmdir of a cgroup fails harmlessly while it holds a process or a nested cgroup.
        for dir in remaining_dirs(&self.name).iter().rev() {
            std::fs::remove_dir(dir).ok();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child that is killed and waited for when dropped, unless it was waited for already.
pub struct Reap {
    child: Option<Child>,
    pub pid: u32,
}

impl Reap {
    pub fn new(child: Child) -> Self {
        let pid = child.id();
        Reap {
            child: Some(child),
            pid,
        }
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already waited for")
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let status = self.child().wait().expect("wait");
        self.child = None;
        status
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// Whether the child is still running (not yet exited).
    pub fn running(&mut self) -> bool {
        self.child().try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// Sends SIGKILL to a process.
pub fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}

/// A pidfd of a running process (child or not), to learn race-free when it has exited.
pub fn pidfd(pid: u32) -> OwnedFd {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .unwrap_or_else(|e| panic!("pidfd_open {pid:?}: {e}"))
}

/// Whether the process of `pidfd` has exited, waiting up to `timeout` for it.
pub fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) if fds[0].revents().contains(PollFlags::IN) => return true,
            Ok(_) | Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            Ok(_) => return false,
            Err(err) => panic!("poll pidfd: {err}"),
        }
    }
}

/// Whether the process `pid` has exited already (its pidfd is readable).
pub fn has_exited(pidfd: &OwnedFd) -> bool {
    exited_within(pidfd, Duration::ZERO)
}

/// The signals a process ignores (`SigIgn` of `/proc/PID/status`).
pub fn ignored_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn");
    u64::from_str_radix(line.trim(), 16).unwrap()
}

/// The session id of a process (field 6 of `/proc/PID/stat`).
pub fn session_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name in parentheses may contain spaces: count from its end.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(3).unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `condition` with a growing delay until it holds; panics after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Runs `true` in the job and waits for it: a process that comes and goes.
pub fn run_true(job: &JobObject) {
    let status = job
        .spawn(&mut std::process::Command::new("true"))
        .expect("spawn true")
        .wait()
        .expect("wait true");
    assert!(status.success(), "true: {status}");
}

/// Waits until the job holds exactly `count` processes and returns them.
pub fn wait_pid_count(job: &JobObject, count: usize, timeout: Duration) -> Vec<u32> {
    let mut pids = Vec::new();
    wait_for(&format!("{count} processes in the job"), timeout, || {
        pids = job.pids().expect("pids");
        pids.len() == count
    });
    pids
}

/// Waits until the job holds no process.
pub fn wait_empty(job: &JobObject, timeout: Duration) {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        let pids = job.pids().expect("pids");
        if pids.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "the job still holds {} processes after {timeout:?}: {pids:?}",
            pids.len()
        );
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// A thread that reads every notification of a job, with the time it was read, until the
/// handle is closed. Dropping it closes the job's handle (which ends the thread).
pub struct Watcher {
    job: Arc<JobObject>,
    received: mpsc::Receiver<(Notification, Instant)>,
    thread: Option<thread::JoinHandle<Error>>,
}

impl Watcher {
    pub fn start(job: &Arc<JobObject>) -> Self {
        let (send, received) = mpsc::channel();
        let polled = Arc::clone(job);
        let thread = thread::Builder::new()
            .name("notification-watcher".into())
            .spawn(move || {
                loop {
                    match polled.poll_notification() {
                        Ok(message) => {
                            if send.send((message, Instant::now())).is_err() {
                                polled.close().ok();
                            }
                        }
                        Err(err) => return err,
                    }
                }
            })
            .expect("spawn watcher");
        Watcher {
            job: Arc::clone(job),
            received,
            thread: Some(thread),
        }
    }

    /// The next notification, with the time it was read; panics after `timeout`.
    pub fn next(&self, timeout: Duration) -> (Notification, Instant) {
        match self.received.recv_timeout(timeout) {
            Ok(message) => message,
            Err(err) => {
                // Release the watcher thread before failing, so the job is removed.
                self.job.close().ok();
                panic!("no notification within {timeout:?} ({err})");
            }
        }
    }

    /// The next notification, or `None` after `timeout`.
    pub fn try_next(&self, timeout: Duration) -> Option<Notification> {
        self.received.recv_timeout(timeout).ok().map(|(n, _)| n)
    }

    /// Panics if a notification arrives within `window`.
    pub fn assert_quiet(&self, window: Duration, context: &str) {
        if let Ok((message, _)) = self.received.recv_timeout(window) {
            self.job.close().ok();
            panic!("unexpected notification {message:?} {context}");
        }
    }

    /// Closes the job's handle, waits for the thread, and returns what it read meanwhile and
    /// the error that ended it.
    pub fn finish(mut self) -> (Vec<Notification>, Error) {
        self.job.close().ok();
        let error = self.thread.take().unwrap().join().expect("watcher thread");
        let rest = self.received.try_iter().map(|(n, _)| n).collect();
        (rest, error)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.job.close().ok();
            thread.join().ok();
        }
    }
}

/// `poll_notification` with a timeout: on timeout the handle is closed (releasing the
/// blocked thread) and the test fails.
pub fn poll_within(job: &Arc<JobObject>, timeout: Duration) -> Result<Notification, Error> {
    let (send, receive) = mpsc::channel();
    let polled = Arc::clone(job);
    let thread = thread::spawn(move || {
        send.send(polled.poll_notification()).ok();
    });
    match receive.recv_timeout(timeout) {
        Ok(result) => {
            thread.join().unwrap();
            result
        }
        Err(_) => {
            job.close().ok();
            thread.join().ok();
            panic!("poll_notification did not return within {timeout:?}");
        }
    }
}
