//! A closed handle: every method returns `AlreadyClosed` and does nothing, also a second
//! `close` and a `poll_notification` that was blocked in another thread.

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use jobobject::{CpuLimit, Error, JobLimits, JobObject};

use crate::common::*;

fn assert_closed<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Err(Error::AlreadyClosed) => {}
        other => panic!("{what} after close: {other:?} (expected AlreadyClosed)"),
    }
}

/// Every method of a closed handle is `AlreadyClosed`, with and without notifications, and
/// none of them acts (no process is started, the other handle's job is untouched).
#[test]
fn every_method_after_close_is_already_closed() {
    if !require_jobs("every_method_after_close_is_already_closed") {
        return;
    }
    for notifications in [false, true] {
        let what = format!("closed-{notifications}");
        let options = options(&what).notifications(notifications);
        let name = options.name.clone().unwrap();
        let keeper = create(&options);
        let mut child = Reap::new(keeper.spawn(&mut child("sleep:100000")).unwrap());
        let job = JobObject::open(&options).unwrap();
        job.close().unwrap();

        assert_closed("name", job.name());
        assert_closed("assign", job.assign(child.pid));
        assert_closed("assign(0)", job.assign(0));
        assert_closed("spawn", job.spawn(&mut crate::common::child("exit:7")));
        assert_closed("pids", job.pids());
        assert_closed("terminate", job.terminate(1));
        assert_closed(
            "set_terminate_on_last_handle_close",
            job.set_terminate_on_last_handle_close(),
        );
        assert_closed("poll_notification", job.poll_notification());
        assert_closed(
            "poll_notification_timeout",
            job.poll_notification_timeout(Duration::ZERO),
        );
        assert_closed("wait_empty", job.wait_empty(Some(Duration::ZERO)));
        assert_closed_limits(&job);
        assert_closed("second close", job.close());
        drop(job);

        // Nothing was done through the closed handle.
        assert!(child.running(), "terminate through a closed handle acted");
        assert_eq!(keeper.pids().unwrap(), vec![child.pid]);
        assert_exists(&name);

        keeper.close().unwrap();
        assert!(child.wait_timeout(TIMEOUT).is_some());
        assert_closed("close of the keeper", keeper.close());
        wait_removed(&name);
    }
}

/// The limit, statistic and tracking methods of a closed handle.
fn assert_closed_limits(job: &JobObject) {
    assert_closed(
        "set_cpu_limit",
        job.set_cpu_limit(Some(CpuLimit::Weight(3))),
    );
    assert_closed("cpu_limit", job.cpu_limit());
    assert_closed("set_cpu_affinity", job.set_cpu_affinity(Some(1)));
    assert_closed("cpu_affinity", job.cpu_affinity());
    assert_closed("set_memory_limit", job.set_memory_limit(Some(1 << 20)));
    assert_closed("memory_limit", job.memory_limit());
    assert_closed("set_io_limit", job.set_io_limit(Some(1 << 20), None));
    assert_closed("io_max_bandwidth_limit", job.io_max_bandwidth_limit());
    assert_closed("io_max_iops_limit", job.io_max_iops_limit());
    assert_closed("set_max_processes", job.set_max_processes(Some(3)));
    assert_closed("max_processes", job.max_processes());
    assert_closed(
        "set_resource_limits",
        job.set_resource_limits(&JobLimits::default()),
    );
    assert_closed("memory_stats", job.memory_stats());
    assert_closed("processor_stats", job.processor_stats());
    assert_closed("storage_stats", job.storage_stats());
    assert_closed("private_working_set", job.private_working_set());
    assert_closed("set_io_tracking", job.set_io_tracking());
}

/// `close` from another thread wakes a thread blocked in `poll_notification`, which returns
/// `AlreadyClosed`.
#[test]
fn close_wakes_a_blocked_poll() {
    if !require_jobs("close_wakes_a_blocked_poll") {
        return;
    }
    let options = options("close-wakes").notifications(true);
    let name = options.name.clone().unwrap();
    let job = create_arc(&options);
    let mut child = Reap::new(job.spawn(&mut child("sleep:100000")).unwrap());
    let (send, receive) = mpsc::channel();
    let poller = {
        let job = Arc::clone(&job);
        // Windows reports the process's start first: read on until the poll fails.
        thread::spawn(move || {
            let end = loop {
                if let Err(err) = job.poll_notification() {
                    break err;
                }
            };
            send.send(Err::<(), _>(end)).unwrap()
        })
    };
    // Give the poller time to block; if it has not yet, it finds the handle closed instead,
    // which the test accepts as well.
    thread::sleep(Duration::from_millis(200));
    assert!(
        receive.try_recv().is_err(),
        "poll_notification returned early"
    );

    job.close().unwrap();
    match receive.recv_timeout(TIMEOUT) {
        Ok(result) => assert_closed("blocked poll_notification", result),
        Err(_) => panic!("close did not wake the blocked poll_notification"),
    }
    poller.join().unwrap();
    assert_closed("poll_notification", job.poll_notification());
    // Terminate-on-close killed the process at that close.
    assert!(child.wait_timeout(TIMEOUT).is_some());
    wait_removed(&name);
}

/// Several threads blocked in `poll_notification` on one handle all wake at `close`.
#[test]
fn close_wakes_every_blocked_poll() {
    if !require_jobs("close_wakes_every_blocked_poll") {
        return;
    }
    let job = create_arc(&options("close-wakes-all").notifications(true));
    let (send, receive) = mpsc::channel();
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let job = Arc::clone(&job);
            let send = send.clone();
            thread::spawn(move || send.send(job.poll_notification()).unwrap())
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    job.close().unwrap();
    for _ in &pollers {
        match receive.recv_timeout(TIMEOUT) {
            Ok(result) => assert_closed("blocked poll_notification", result),
            Err(_) => panic!("close did not wake every blocked poll_notification"),
        }
    }
    for poller in pollers {
        poller.join().unwrap();
    }
}
