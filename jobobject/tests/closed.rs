//! A closed handle: every method returns `AlreadyClosed`, also a second `close` and a
//! `poll_notification` that was blocked in another thread.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use common::*;
use jobobject::{Error, JobObject};

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
    if !require_cgroups("every_method_after_close_is_already_closed") {
        return;
    }
    for notifications in [false, true] {
        let what = format!("closed-{notifications}");
        let options = options(&what).notifications(notifications);
        let name = options.name.clone().unwrap();
        let keeper = create(&options);
        let mut child = Reap::new(keeper.spawn(Command::new("sleep").arg("100")).unwrap());
        let job = JobObject::open(&options).unwrap();
        job.close().unwrap();

        assert_closed("name", job.name());
        assert_closed("assign", job.assign(child.pid));
        assert_closed("assign(0)", job.assign(0));
        let mut command = Command::new("sh");
        command.args(["-c", "exit 7"]);
        assert_closed("spawn", job.spawn(&mut command));
        assert_closed("pids", job.pids());
        assert_closed("terminate", job.terminate(1));
        assert_closed(
            "set_terminate_on_last_handle_close",
            job.set_terminate_on_last_handle_close(),
        );
        assert_closed("poll_notification", job.poll_notification());
        assert_closed("second close", job.close());
        drop(job);

        // Nothing was done through the closed handle.
        assert!(child.running(), "terminate through a closed handle acted");
        assert_eq!(keeper.pids().unwrap(), vec![child.pid]);
        assert_job_exists(&name);

        keeper.close().unwrap();
        assert!(child.wait_timeout(TIMEOUT).is_some());
        assert_closed("close of the keeper", keeper.close());
        assert_job_removed(&name);
    }
}

/// `close` from another thread wakes a thread blocked in `poll_notification`, which returns
/// `AlreadyClosed`.
#[test]
fn close_wakes_a_blocked_poll() {
    if !require_cgroups("close_wakes_a_blocked_poll") {
        return;
    }
    let options = options("close-wakes").notifications(true);
    let name = options.name.clone().unwrap();
    let job = create_arc(&options);
    let mut child = Reap::new(job.spawn(Command::new("sleep").arg("100")).unwrap());
    let (send, receive) = mpsc::channel();
    let poller = {
        let job = Arc::clone(&job);
        thread::spawn(move || send.send(job.poll_notification()).unwrap())
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
    assert_job_removed(&name);
}

/// Several threads blocked in `poll_notification` on one handle all wake at `close`.
#[test]
fn close_wakes_every_blocked_poll() {
    if !require_cgroups("close_wakes_every_blocked_poll") {
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
