//! `AllProcessesExited`: when it comes (only once the last descendant is gone), how often
//! (once per emptying, never dropped), and to whom (every handle that asked).
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use jobobject::{Error, JobObject, Notification};

/// The direct child exits at once, leaving a grandchild: the notification waits for the
/// grandchild.
///
/// The grandchild is a `cat` reading a pipe that only this test can close, rather than a
/// `sleep 1`: it exits on its own when told to, so the test knows exactly when "too early"
/// would be, however slow the machine.
#[test]
fn all_processes_exited_waits_for_an_orphaned_grandchild() {
    if !require_cgroups("all_processes_exited_waits_for_an_orphaned_grandchild") {
        return;
    }
    let job = create_arc(&options("orphan").notifications(true));
    let watcher = Watcher::start(&job);
    // A background command's stdin is /dev/null unless redirected: keep the pipe as fd 3.
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec 3<&0; cat <&3 >/dev/null 3<&- & exit 0"])
        .stdin(Stdio::piped());
    let mut shell = Reap::new(job.spawn(&mut command).unwrap());
    let stdin = shell.child().stdin.take().unwrap();
    assert!(shell.wait().success(), "the direct child exits at once");

    let pids = job.pids().unwrap();
    assert_eq!(pids.len(), 1, "the grandchild alone remains: {pids:?}");
    assert_ne!(pids[0], shell.pid);
    let grandchild = pidfd(pids[0]);
    watcher.assert_quiet(QUIET, "while the orphaned grandchild still runs");
    assert!(!has_exited(&grandchild));

    let released = Instant::now();
    drop(stdin);
    let (message, read) = watcher.next(TIMEOUT);
    assert_eq!(message, Notification::AllProcessesExited);
    assert!(read >= released);
    assert!(
        has_exited(&grandchild),
        "AllProcessesExited came before the grandchild exited"
    );
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    watcher.assert_quiet(QUIET, "after AllProcessesExited");
}

/// A job that empties several times reports each time, in order, and a short-lived process
/// (one that may exit before `spawn` returns) is not missed.
#[test]
fn all_processes_exited_each_time_the_job_empties() {
    if !require_cgroups("all_processes_exited_each_time_the_job_empties") {
        return;
    }
    let job = create_arc(&options("each-time").notifications(true));
    for round in 0..5 {
        run_true(&job);
        let message = poll_within(&job, TIMEOUT).unwrap();
        assert_eq!(message, Notification::AllProcessesExited, "round {round}");
    }
    // Several exits, never read, all queued: none dropped.
    const ROUNDS: usize = 20;
    for _ in 0..ROUNDS {
        let mut child = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());
        let fd = pidfd(child.pid);
        sigkill(child.pid);
        child.wait();
        assert!(exited_within(&fd, TIMEOUT));
        // Seen empty here: that emptying must be reported, even if the next process comes
        // before the event thread has read it.
        wait_empty(&job, TIMEOUT);
    }
    let watcher = Watcher::start(&job);
    for round in 0..ROUNDS {
        match watcher.try_next(TIMEOUT) {
            Some(Notification::AllProcessesExited) => {}
            other => panic!("emptying {round} of {ROUNDS}: {other:?}"),
        }
    }
    watcher.assert_quiet(QUIET, "after the last emptying");
}

/// Every handle that asked for notifications gets its own copy; a handle that did not ask
/// gets `NotRegistered`.
#[test]
fn every_registered_handle_gets_the_notification() {
    if !require_cgroups("every_registered_handle_gets_the_notification") {
        return;
    }
    let options = options("two-handles").notifications(true);
    let first = create_arc(&options);
    let second = Arc::new(JobObject::open(&options).unwrap());
    let silent = JobObject::open(&options.clone().notifications(false)).unwrap();
    let first_watcher = Watcher::start(&first);
    let second_watcher = Watcher::start(&second);

    let mut child = Reap::new(first.spawn(Command::new("sleep").arg("100")).unwrap());
    silent.terminate(1).unwrap();
    child.wait();
    assert_eq!(
        first_watcher.next(TIMEOUT).0,
        Notification::AllProcessesExited
    );
    assert_eq!(
        second_watcher.next(TIMEOUT).0,
        Notification::AllProcessesExited
    );
    assert!(matches!(
        silent.poll_notification(),
        Err(Error::NotRegistered)
    ));

    // Closing one registered handle does not stop the other's notifications.
    let (rest, _) = second_watcher.finish();
    assert_eq!(rest, vec![]);
    let mut child = Reap::new(silent.spawn(&mut Command::new("true")).unwrap());
    assert!(child.wait().success());
    assert_eq!(
        first_watcher.next(TIMEOUT).0,
        Notification::AllProcessesExited
    );
    first_watcher.assert_quiet(QUIET, "after the second emptying");
}

/// A handle opened with notifications on a job that already holds processes reports when
/// they are gone.
#[test]
fn opened_handle_reports_processes_started_before_it() {
    if !require_cgroups("opened_handle_reports_processes_started_before_it") {
        return;
    }
    let options = options("open-busy");
    let job = create(&options);
    let mut command = Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = Reap::new(job.spawn(&mut command).unwrap());
    let mut stdin = child.child().stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();

    let opened = Arc::new(JobObject::open(&options.clone().notifications(true)).unwrap());
    let watcher = Watcher::start(&opened);
    watcher.assert_quiet(QUIET, "while the process runs");
    drop(stdin);
    assert!(child.wait().success());
    assert_eq!(watcher.next(TIMEOUT).0, Notification::AllProcessesExited);
}

/// `poll_notification` without `Options::notifications` is `NotRegistered`, at once.
#[test]
fn poll_without_notifications_is_not_registered() {
    if !require_cgroups("poll_without_notifications_is_not_registered") {
        return;
    }
    let job = create(&options("not-registered"));
    let mut child = Reap::new(job.spawn(&mut Command::new("true")).unwrap());
    child.wait();
    assert!(matches!(job.poll_notification(), Err(Error::NotRegistered)));
}

/// A spawn that fails (its child joined the job, then could not exec) started no process:
/// it reports no `AllProcessesExited`, and the next real emptying is reported once.
#[test]
fn failed_spawns_report_nothing() {
    if !require_cgroups("failed_spawns_report_nothing") {
        return;
    }
    let job = create_arc(&options("failed-spawn").notifications(true));
    let watcher = Watcher::start(&job);
    for _ in 0..50 {
        let result = job.spawn(&mut Command::new("/nonexistent/jobobject-test-program"));
        assert!(result.is_err(), "{result:?}");
    }
    watcher.assert_quiet(QUIET, "after spawns that failed");
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());

    run_true(&job);
    assert_eq!(watcher.next(TIMEOUT).0, Notification::AllProcessesExited);
    watcher.assert_quiet(QUIET, "after the one real emptying");
}

/// A job deleted under a handle (another process's `jobctl delete`, here another handle's
/// `delete`) ends that handle's notifications with `NotFound`, after what was queued: no
/// `poll_notification` waits forever for a job that is gone.
#[test]
fn deleting_the_job_ends_a_blocked_poll() {
    use jobobject::os::linux::JobObjectExt;
    if !require_cgroups("deleting_the_job_ends_a_blocked_poll") {
        return;
    }
    let options = options("deleted-under-poll").notifications(true);
    let name = options.name.clone().unwrap();
    let job = create_arc(&options);
    run_true(&job);
    JobObject::open(&options).unwrap().delete().unwrap();
    assert_job_removed(&name);
    assert_eq!(
        poll_within(&job, TIMEOUT).unwrap(),
        Notification::AllProcessesExited
    );
    let err = poll_within(&job, TIMEOUT).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}
