//! `AllProcessesExited`: when it comes (only once the last descendant is gone), how often
//! (once per emptying), and to whom (every handle that asked); polling with a timeout and
//! `wait_empty`. Windows also reports each process's start and exit; those are checked in
//! `tests/windows.rs`.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobobject::{Error, JobObject, Notification};

use crate::common::*;

/// How many `AllProcessesExited` are among `seen`.
fn emptyings(seen: &[Notification]) -> usize {
    seen.iter()
        .filter(|n| **n == Notification::AllProcessesExited)
        .count()
}

/// Go `TestNoMoreProcessesMessage*`: each emptying is reported once, after the last process
/// exits, also for a process that may exit before `spawn` returns.
#[test]
fn all_processes_exited_once_per_emptying() {
    if !require_jobs("all_processes_exited_once_per_emptying") {
        return;
    }
    let job = create_arc(&options("once-per-emptying").notifications(true));
    let watcher = Watcher::start(&job);
    let mut first = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    let mut second = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    first.child().kill().unwrap();
    first.wait();
    let seen: Vec<_> = std::iter::from_fn(|| watcher.try_next(QUIET)).collect();
    assert_eq!(emptyings(&seen), 0, "one process still runs: {seen:?}");

    second.child().kill().unwrap();
    second.wait();
    let seen = watcher.until_all_exited(TIMEOUT);
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert_eq!(emptyings(&seen), 1, "{seen:?}");

    for round in 0..3 {
        let mut quick = Reap::new(job.spawn(&mut child("exit:0")).unwrap());
        assert!(quick.wait().success());
        let seen = watcher.until_all_exited(TIMEOUT);
        assert_eq!(emptyings(&seen), 1, "round {round}: {seen:?}");
    }
    let rest: Vec<_> = std::iter::from_fn(|| watcher.try_next(QUIET)).collect();
    assert_eq!(emptyings(&rest), 0, "more than one per emptying: {rest:?}");
}

/// The direct child exits at once, leaving a grandchild: the notification waits for it.
#[test]
fn all_processes_exited_waits_for_an_orphaned_grandchild() {
    if !require_jobs("all_processes_exited_waits_for_an_orphaned_grandchild") {
        return;
    }
    let job = create_arc(&options("orphan-notified").notifications(true));
    let watcher = Watcher::start(&job);
    let mut parent = Reap::new(
        job.spawn(child("orphan:1500").stdout(Stdio::piped()))
            .unwrap(),
    );
    let grandchild = grandchild_of(parent.child());
    assert!(parent.wait().success());
    let seen = watcher.until_all_exited(TIMEOUT);
    // Read when it came: the grandchild (asleep for 1.5 s after its parent's exit) is gone.
    assert_eq!(
        job.pids().unwrap(),
        Vec::<u32>::new(),
        "AllProcessesExited came while {grandchild} still ran: {seen:?}"
    );
    assert_eq!(emptyings(&seen), 1, "{seen:?}");
}

/// `terminate` ends every process, the grandchild too, and gives one `AllProcessesExited`.
#[test]
fn terminate_gives_one_all_processes_exited() {
    if !require_jobs("terminate_gives_one_all_processes_exited") {
        return;
    }
    let job = create_arc(&options("terminate-notified").notifications(true));
    let watcher = Watcher::start(&job);
    let mut a = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    let mut b = Reap::new(
        job.spawn(child("grandchild:100000").stdout(Stdio::piped()))
            .unwrap(),
    );
    grandchild_of(b.child());
    assert_eq!(job.pids().unwrap().len(), 3);

    job.terminate(42).unwrap();
    assert_terminated(a.wait(), 42);
    assert_terminated(b.wait(), 42);
    let seen = watcher.until_all_exited(TIMEOUT);
    assert_eq!(job.pids().unwrap(), Vec::<u32>::new());
    assert_eq!(emptyings(&seen), 1, "{seen:?}");
    let rest: Vec<_> = std::iter::from_fn(|| watcher.try_next(QUIET)).collect();
    assert_eq!(emptyings(&rest), 0, "a second AllProcessesExited: {rest:?}");
}

/// Every handle that asked for notifications gets its own copy, also one opened on a busy
/// job; a handle that did not ask gets `NotRegistered`; closing one registered handle does
/// not stop another's, and a handle can register again after all of them left.
#[test]
fn every_registered_handle_gets_the_notification() {
    if !require_jobs("every_registered_handle_gets_the_notification") {
        return;
    }
    let options = options("two-handles").notifications(true);
    let first = create_arc(&options);
    let silent = JobObject::open(&options.clone().notifications(false)).unwrap();
    let mut child = Reap::new(first.spawn(&mut child("sleep:100000")).unwrap());
    // Opened while the job already holds a process.
    let second = Arc::new(JobObject::open(&options).unwrap());
    let first_watcher = Watcher::start(&first);
    let second_watcher = Watcher::start(&second);

    silent.terminate(1).unwrap();
    child.wait();
    assert_eq!(emptyings(&first_watcher.until_all_exited(TIMEOUT)), 1);
    assert_eq!(emptyings(&second_watcher.until_all_exited(TIMEOUT)), 1);
    assert!(matches!(
        silent.poll_notification(),
        Err(Error::NotRegistered)
    ));

    drop(second_watcher);
    let mut again = Reap::new(silent.spawn(&mut crate::common::child("exit:0")).unwrap());
    assert!(again.wait().success());
    assert_eq!(emptyings(&first_watcher.until_all_exited(TIMEOUT)), 1);

    // Every registered handle leaves; a new one registers and hears the next emptying.
    drop(first_watcher);
    let third = Arc::new(JobObject::open(&options).unwrap());
    let third_watcher = Watcher::start(&third);
    let mut last = Reap::new(silent.spawn(&mut crate::common::child("exit:3")).unwrap());
    last.wait();
    assert_eq!(emptyings(&third_watcher.until_all_exited(TIMEOUT)), 1);
}

/// `poll_notification_timeout` returns `None` when nothing came in time and the notification
/// when one did; without notifications it is `NotRegistered`.
#[test]
fn poll_with_a_timeout() {
    if !require_jobs("poll_with_a_timeout") {
        return;
    }
    let job = create_arc(&options("poll-timeout").notifications(true));
    let start = Instant::now();
    assert_eq!(job.poll_notification_timeout(QUIET).unwrap(), None);
    assert!(start.elapsed() >= QUIET);
    let mut child = Reap::new(job.spawn(&mut child("exit:0")).unwrap());
    assert!(child.wait().success());
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match job.poll_notification_timeout(left).unwrap() {
            Some(Notification::AllProcessesExited) => break,
            Some(_) => continue,
            None => panic!("no AllProcessesExited within {TIMEOUT:?}"),
        }
    }
    let plain = create(&options("poll-timeout-plain"));
    let err = plain.poll_notification_timeout(QUIET).unwrap_err();
    assert!(matches!(err, Error::NotRegistered), "{err:?}");
    assert!(matches!(
        plain.poll_notification(),
        Err(Error::NotRegistered)
    ));
}

/// `wait_empty`: at once on an empty job, once the last process is gone otherwise, `false`
/// when it times out; a handle without notifications can wait; `close` from another thread
/// ends the wait.
#[test]
fn wait_empty_waits_for_the_last_process() {
    if !require_jobs("wait_empty_waits_for_the_last_process") {
        return;
    }
    let job = create_arc(&options("wait-empty"));
    assert!(job.wait_empty(Some(Duration::ZERO)).unwrap());
    let mut child = Reap::new(job.spawn(&mut child("sleep:500")).unwrap());
    assert!(!job.wait_empty(Some(Duration::from_millis(50))).unwrap());
    assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    assert!(job.pids().unwrap().is_empty());
    child.wait();

    let _sleeper = Reap::new(job.spawn(&mut crate::common::child("sleep:60000")).unwrap());
    let waiter = {
        let job = Arc::clone(&job);
        std::thread::spawn(move || job.wait_empty(None))
    };
    std::thread::sleep(QUIET);
    job.close().unwrap();
    let result = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::AlreadyClosed)), "{result:?}");
}

/// Emptyings nobody reads yet are queued, none dropped, and none merged: a job emptied 20
/// times before its handle is read reports 20 `AllProcessesExited`, in order.
#[test]
fn emptyings_are_queued_until_read() {
    if !require_jobs("emptyings_are_queued_until_read") {
        return;
    }
    const ROUNDS: usize = 20;
    let job = create_arc(&options("queued").notifications(true));
    for _ in 0..ROUNDS {
        let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
        child.child().kill().unwrap();
        child.wait();
        // Seen empty here: that emptying must be reported, even if the next process comes
        // before the library has noticed it.
        assert!(job.wait_empty(Some(TIMEOUT)).unwrap());
    }
    let watcher = Watcher::start(&job);
    for round in 0..ROUNDS {
        let seen = watcher.until_all_exited(TIMEOUT);
        assert_eq!(
            emptyings(&seen),
            1,
            "emptying {round} of {ROUNDS}: {seen:?}"
        );
    }
    let rest: Vec<_> = std::iter::from_fn(|| watcher.try_next(QUIET)).collect();
    assert_eq!(
        emptyings(&rest),
        0,
        "more emptyings than processes: {rest:?}"
    );
}
