//! `AllProcessesExited`: when it comes (only once the last descendant is gone), how often
//! (once per emptying, never dropped), and to whom (every handle that asked).
#![cfg(target_os = "linux")]

mod common;

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

/// A thread blocked in `poll_notification` reads the job itself the moment the kernel
/// signals it, while the event thread reads it too (see `sys::linux::waiting`): each
/// emptying still comes once. 200 rounds of a process killed while the poll waits, some at
/// once and some after the kernel's 10 ms between `cgroup.events` signals; nothing follows.
#[test]
fn a_blocked_poll_and_the_event_thread_report_each_emptying_once() {
    if !require_cgroups("a_blocked_poll_and_the_event_thread_report_each_emptying_once") {
        return;
    }
    let job = create_arc(&options("blocked-poll").notifications(true));
    let (to_killer, killer_gets) = std::sync::mpsc::channel::<(u32, u64)>();
    let killer = std::thread::spawn(move || {
        for (pid, delay_ms) in killer_gets {
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            kill(pid);
        }
    });
    for round in 0..200u64 {
        let mut sleeper = Reap::new(job.spawn(Command::new("sleep").arg("60")).unwrap());
        to_killer.send((sleeper.pid, round % 3 * 7)).unwrap();
        let message = job.poll_notification_timeout(TIMEOUT).unwrap();
        assert_eq!(
            message,
            Some(Notification::AllProcessesExited),
            "round {round}"
        );
        sleeper.wait();
    }
    drop(to_killer);
    killer.join().unwrap();
    assert_eq!(job.poll_notification_timeout(QUIET).unwrap(), None);
}

fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}
