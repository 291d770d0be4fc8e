//! `AllProcessesExited`: when it comes (only once the last descendant is gone), how often
//! (once per emptying, never dropped), and to whom (every handle that asked).
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Every emptying that happened before a job was deleted is reported, then `NotFound`: 200
/// jobs, each emptied and at once deleted through another handle (it failed about 1 run in
/// 100 when the event thread read a deleted job as unknown rather than empty).
#[test]
fn an_emptying_before_a_deletion_is_always_reported() {
    use jobobject::os::linux::JobObjectExt;
    if !require_cgroups("an_emptying_before_a_deletion_is_always_reported") {
        return;
    }
    // In batches, so that the jobs fit a limit of 1024 open files.
    for batch in 0..8 {
        let jobs: Vec<(Arc<JobObject>, String)> = (0..25)
            .map(|i| {
                let options = options(&format!("deleted-{batch}-{i}")).notifications(true);
                (create_arc(&options), options.name.unwrap())
            })
            .collect();
        for (job, name) in &jobs {
            run_true(job);
            let options = common::options("").name(name.clone());
            JobObject::open(&options).unwrap().delete().unwrap();
        }
        for (job, name) in &jobs {
            assert_eq!(
                poll_within(job, TIMEOUT).unwrap(),
                Notification::AllProcessesExited,
                "{name}"
            );
            let err = poll_within(job, TIMEOUT).unwrap_err();
            assert!(matches!(err, Error::NotFound { .. }), "{name}: {err}");
        }
    }
}

/// A closed job that the kernel keeps refusing to remove (a cgroup someone made inside it)
/// does not hold up another job's notifications: the event thread retries on a timer.
#[test]
fn a_job_stuck_in_removal_delays_no_other_job() {
    if !require_cgroups("a_job_stuck_in_removal_delays_no_other_job") {
        return;
    }
    let stuck_options = options("stuck");
    let stuck_name = stuck_options.name.clone().unwrap();
    let _cleanup = Cleanup::new(&stuck_name);
    let stuck = JobObject::create(&stuck_options).unwrap();
    let mut sleeper = Reap::new(stuck.spawn(Command::new("sleep").arg("60")).unwrap());
    let primary = {
        use jobobject::os::linux::JobObjectExt;
        stuck.cgroup_paths().unwrap()[0].clone()
    };
    // Closed while it holds a process: it is removed once empty, by the event thread.
    stuck.close().unwrap();
    let nested = primary.join("made-by-someone-else");
    std::fs::create_dir(&nested).unwrap();
    let other = create_arc(&options("not-delayed").notifications(true));
    sleeper.child().kill().unwrap();
    sleeper.wait();
    // Give the event thread time to start on the removal, which the kernel refuses (EBUSY).
    std::thread::sleep(std::time::Duration::from_millis(100));

    let start = Instant::now();
    run_true(&other);
    assert_eq!(
        poll_within(&other, TIMEOUT).unwrap(),
        Notification::AllProcessesExited
    );
    let latency = start.elapsed();
    std::fs::remove_dir(&nested).unwrap();
    eprintln!("AllProcessesExited while another job's removal is refused: {latency:?}");
    assert!(
        latency < std::time::Duration::from_secs(1),
        "another job's removal delayed this one's notification by {latency:?}"
    );
    // Its next attempt, once the nested cgroup is gone, removes it.
    wait_job_removed(&stuck_name, TIMEOUT);
}

/// `wait_empty`: at once on an empty job, once the last process is gone otherwise, `false`
/// when it times out; a handle without notifications can wait; `close` from another thread
/// ends the wait.
#[test]
fn wait_empty_waits_for_the_last_process() {
    if !require_cgroups("wait_empty_waits_for_the_last_process") {
        return;
    }
    let job = create_arc(&options("wait-empty"));
    assert!(job.wait_empty(Some(Duration::ZERO)).unwrap());
    let mut child = Reap::new(job.spawn(Command::new("sleep").arg("0.5")).unwrap());
    assert!(!job.wait_empty(Some(Duration::from_millis(50))).unwrap());
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    assert!(job.pids().unwrap().is_empty());
    child.wait();

    let _sleeper = Reap::new(job.spawn(Command::new("sleep").arg("60")).unwrap());
    let waiter = {
        let job = Arc::clone(&job);
        std::thread::spawn(move || job.wait_empty(None))
    };
    std::thread::sleep(QUIET);
    job.close().unwrap();
    let result = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::AlreadyClosed)), "{result:?}");
}

/// `poll_notification_timeout` returns `None` when nothing came in time, and the notification
/// when one did.
#[test]
fn poll_with_a_timeout() {
    if !require_cgroups("poll_with_a_timeout") {
        return;
    }
    let job = create_arc(&options("poll-timeout").notifications(true));
    let start = Instant::now();
    assert_eq!(job.poll_notification_timeout(QUIET).unwrap(), None);
    assert!(start.elapsed() >= QUIET);
    run_true(&job);
    assert_eq!(
        job.poll_notification_timeout(TIMEOUT).unwrap(),
        Some(Notification::AllProcessesExited)
    );
    let plain = create(&options("poll-timeout-plain"));
    let err = plain.poll_notification_timeout(QUIET).unwrap_err();
    assert!(matches!(err, Error::NotRegistered), "{err:?}");
}
